"""Maintenance windows: open or not, and the next start, in the stack's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from ai_moderator_operator.maintenance import Window, parse_duration

# Thursday 26 November 2026.
THU_NOON = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_a_nightly_window_is_open_only_for_its_duration() -> None:
    window = Window.of("0 2 * * *", "2h", None)
    assert window.is_open(datetime(2026, 11, 26, 2, 0, tzinfo=UTC))
    assert window.is_open(datetime(2026, 11, 26, 3, 59, tzinfo=UTC))
    assert not window.is_open(datetime(2026, 11, 26, 4, 0, tzinfo=UTC))
    assert not window.is_open(THU_NOON)
    assert window.next_start(THU_NOON) == datetime(2026, 11, 27, 2, 0, tzinfo=UTC)


def test_a_window_across_midnight_in_a_time_zone() -> None:
    window = Window.of("30 23 * * SAT", "3h", "Europe/Berlin")  # UTC+1 in November
    assert window.next_start(THU_NOON) == datetime(2026, 11, 28, 22, 30, tzinfo=UTC)
    assert window.is_open(datetime(2026, 11, 29, 1, 0, tzinfo=UTC)), "Sunday 02:00 in Berlin"
    assert not window.is_open(datetime(2026, 11, 29, 1, 31, tzinfo=UTC))


@pytest.mark.parametrize(("schedule", "next_start"), [
    ("*/15 * * * *", datetime(2026, 11, 26, 12, 15, tzinfo=UTC)),
    ("0 9-17/4 * * MON-FRI", datetime(2026, 11, 26, 13, 0, tzinfo=UTC)),
    ("@monthly", datetime(2026, 12, 1, 0, 0, tzinfo=UTC)),
    ("0 4 1 * 0", datetime(2026, 11, 29, 4, 0, tzinfo=UTC)),  # day 1 or any Sunday, as cron reads it
    ("0 0 29 2 *", datetime(2028, 2, 29, 0, 0, tzinfo=UTC)),
])
def test_next_starts(schedule: str, next_start: datetime | None) -> None:
    assert Window.of(schedule, "1h", None).next_start(THU_NOON) == next_start


def test_durations() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90) and parse_duration("45m") == timedelta(minutes=45)
    for bad in ("", "90", "1d", "h"):
        with pytest.raises(ValueError):
            parse_duration(bad)
