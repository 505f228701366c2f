"""When a schedule is due next: a local wall-clock time in the schedule's time zone.

Daily runs every day, weekly on `day_of_week` (1 = Monday … 7 = Sunday), monthly on
`day_of_month` (on the month's last day when the month is shorter). A local time that daylight
saving skips runs as the same UTC instant the offset before the change gives (02:30 on the
spring-forward day in Berlin runs at 03:30 CEST); a time that occurs twice runs once, at its
first occurrence.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_MAX_DAYS = 400  # more than any gap between two due days


def valid_timezone(name: str) -> bool:
    """Whether `name` is an IANA time zone this system knows."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def next_run(
    *,
    frequency: str,
    time_of_day: str,
    timezone: str,
    day_of_week: int | None,
    day_of_month: int | None,
    after: datetime,
) -> datetime:
    """The first due time strictly after `after`, in UTC."""
    zone = ZoneInfo(timezone)
    hour, minute = (int(p) for p in time_of_day.split(":"))
    day = after.astimezone(zone).date()
    for _ in range(_MAX_DAYS):
        if frequency == "daily":
            due = True
        elif frequency == "weekly":
            due = day.isoweekday() == (day_of_week or 1)
        else:
            last = calendar.monthrange(day.year, day.month)[1]
            due = day.day == min(day_of_month or 1, last)
        if due:
            at = datetime.combine(day, time(hour, minute), tzinfo=zone).astimezone(UTC)
            if at > after:
                return at
        day += timedelta(days=1)
    raise ValueError(f"no due time within {_MAX_DAYS} days")  # unreachable for valid input
