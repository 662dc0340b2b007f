"""Maintenance windows: whether a window (a cron schedule's start plus a
duration, in a time zone) is open now, and when the next one starts. The
cron expressions are the ones the CRD admits (api.CRON_REGEX)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
_WEEKDAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"]
_NAMES: tuple[dict[str, int], ...] = ({}, {}, {}, {m: i for i, m in enumerate(_MONTHS, 1)},
                                      {d: i for i, d in enumerate(_WEEKDAYS)})
# Windows are looked for this far around now: four years, so even a leap-day schedule has one.
SEARCH_DAYS = 4 * 366
DURATION_REGEX = r"^(?:([0-9]+)h)?(?:([0-9]+)m)?$"


def parse_duration(value: str) -> timedelta:
    """"2h", "45m" or "1h30m"."""
    match = re.match(DURATION_REGEX, value)
    if not match or not any(match.groups()):
        raise ValueError(f"{value!r} is not a duration such as 2h, 45m or 1h30m")
    hours, minutes = (int(g or 0) for g in match.groups())
    return timedelta(hours=hours, minutes=minutes)


def _field(text: str, index: int) -> frozenset[int]:
    low, high = _BOUNDS[index]
    names = _NAMES[index]

    def number(token: str) -> int:
        return names[token.upper()] if token.upper() in names else int(token)

    values: set[int] = set()
    for part in text.split(","):
        base, _, step = part.partition("/")
        if base in ("*", "?"):
            start, end = low, high
        elif "-" in base:
            first, last = base.split("-", 1)
            start, end = number(first), number(last)
        else:
            start = number(base)
            end = high if step else start
        values.update(range(start, end + 1, int(step) if step else 1))
    return frozenset(values)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    any_day: bool
    any_weekday: bool

    @classmethod
    def parse(cls, expression: str) -> Cron:
        fields = MACROS.get(expression.strip(), expression).split()
        minute, hour, day, month, weekday = (_field(f, i) for i, f in enumerate(fields))
        return cls(minute, hour, day, month, frozenset(d % 7 for d in weekday),
                   fields[2] in ("*", "?"), fields[4] in ("*", "?"))

    def fires_on(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        by_date, by_weekday = day.day in self.days, (day.weekday() + 1) % 7 in self.weekdays
        # Cron's rule: with both day fields restricted, either one matching will do.
        if not self.any_day and not self.any_weekday:
            return by_date or by_weekday
        return by_date and by_weekday

    def times(self) -> list[time]:
        return sorted(time(h, m) for h in self.hours for m in self.minutes)


@dataclass(frozen=True)
class Window:
    cron: Cron
    duration: timedelta
    zone: ZoneInfo

    @classmethod
    def of(cls, schedule: str, duration: str, time_zone: str | None) -> Window:
        return cls(Cron.parse(schedule), parse_duration(duration), ZoneInfo(time_zone or "UTC"))

    def _starts(self, now: datetime, step: int) -> datetime | None:
        """The latest start at or before now (step -1) or the first after it (step 1)."""
        today = now.astimezone(self.zone).date()
        times = self.cron.times()
        for offset in range(SEARCH_DAYS):
            day = today + timedelta(days=step * offset)
            if not self.cron.fires_on(day):
                continue
            for moment in (reversed(times) if step < 0 else times):
                start = datetime.combine(day, moment, self.zone)
                if (start <= now) if step < 0 else (start > now):
                    return start
        return None

    def is_open(self, now: datetime) -> bool:
        last = self._starts(now, -1)
        return last is not None and now < last + self.duration

    def next_start(self, now: datetime) -> datetime | None:
        return self._starts(now, 1)
