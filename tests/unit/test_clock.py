"""shared.clock: the one place that says what "now" is and how a time is stored."""

from datetime import UTC, datetime, timedelta, timezone

from shared import clock


def test_stored_times_are_rfc3339_utc_with_microseconds_so_they_sort_as_times() -> None:
    stored = clock.iso(datetime(2025, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=1))))
    assert stored == "2025-03-01T11:00:00.000000+00:00"
    assert clock.iso(datetime(2025, 3, 1, 11, 0)) == stored  # a naive time is UTC
    assert len(clock.now_iso()) == len(stored)
    assert clock.now().tzinfo is UTC


def test_a_stored_time_reads_back_as_the_same_instant_in_utc() -> None:
    assert clock.parse("2025-03-01T12:00:00+01:00") == datetime(2025, 3, 1, 11, 0, tzinfo=UTC)
    assert clock.parse("2025-03-01T11:00:00").tzinfo is UTC
    assert clock.epoch("1970-01-01T00:01:00.000000+00:00") == 60.0
    assert clock.later("2025-03-01T11:00:00.000000+00:00", 90) == "2025-03-01T11:01:30.000000+00:00"
    assert clock.now_iso() < clock.NO_DEADLINE
