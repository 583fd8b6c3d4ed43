"""Time, decided once: what "now" is and how a time is stored.

Every stored time is an RFC 3339 string in UTC with microseconds (`2024-05-01T09:30:00.000000+00:00`):
strings of one width, so they sort as the times they name. Where a store query ranges over a
time it reads a number of Unix seconds instead (a range over date strings runs on a slow path
on the embedded store): `epoch`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

NO_DEADLINE = "9999-12-31T23:59:59.999999+00:00"
"""Sort key of something without a deadline: after every real one. A string that compares as a
time (the embedded store sorts a missing or null value first)."""


def now() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """`moment` in the stored form (RFC 3339, UTC, microseconds); a naive time is taken as UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="microseconds")


def now_iso() -> str:
    """The current time in the stored form."""
    return iso(now())


def parse(moment: str) -> datetime:
    """An RFC 3339 time back as an aware datetime in UTC; one without an offset is taken as UTC.
    Raises ValueError when `moment` is not a time."""
    parsed = datetime.fromisoformat(moment)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def epoch(moment: str) -> float:
    """A stored time as Unix seconds."""
    return parse(moment).timestamp()


def epoch_now() -> float:
    """The current time as Unix seconds."""
    return time.time()


def later(moment: str, seconds: float) -> str:
    """The stored time `seconds` after the stored time `moment`."""
    return iso(parse(moment) + timedelta(seconds=seconds))
