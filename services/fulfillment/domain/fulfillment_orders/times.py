"""Times as the fulfillment order keeps them: RFC 3339 strings in UTC with microseconds, which
sort as they compare (the store's listings and the sweep rely on it)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def at(moment: str) -> datetime:
    """A stored time as an aware datetime (one stored without a zone is UTC)."""
    parsed = datetime.fromisoformat(moment)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def later(now: str, seconds: float) -> str:
    return (at(now) + timedelta(seconds=seconds)).astimezone(UTC).isoformat(timespec="microseconds")


def epoch(moment: str) -> float:
    return at(moment).timestamp()


def normalise_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, like every stored time: strings then sort as times."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")
