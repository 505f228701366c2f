"""Reporting periods: dates in the organisation's time zone, as half-open UTC intervals, and
the day/week/month buckets of a time series."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from leadflow.analytics.errors import InvalidPeriod

Granularity = Literal["day", "week", "month"]

DEFAULT_DAYS = 30
# Ten years of daily points is the longest series an answer carries.
MAX_DAYS = 3660
# Dates outside these years are typing mistakes, and far enough from datetime's limits that
# converting them between time zones cannot overflow.
FIRST_YEAR, LAST_YEAR = 1900, 2999


@dataclass(frozen=True, slots=True)
class Period:
    """Whole local days `date_from`..`date_to` (inclusive) in `timezone`; `start`/`end` are
    the UTC instants of the first day's midnight and of the midnight after the last day."""

    date_from: date
    date_to: date
    timezone: str
    start: datetime
    end: datetime


def local_midnight(day: date, zone: ZoneInfo) -> datetime:
    """The UTC instant at which `day` begins in `zone`."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def today(now: datetime, timezone: str) -> date:
    """The local date of `now` in `timezone`."""
    return now.astimezone(ZoneInfo(timezone)).date()


def resolve(
    date_from: date | None, date_to: date | None, *, timezone: str, now: datetime
) -> Period:
    """The period asked for. `date_to` defaults to today (local), `date_from` to 29 days
    before `date_to` (30 days in all). 422 `invalid_period` for a reversed range, one longer
    than ten years, or a year outside 1900-2999."""
    zone = ZoneInfo(timezone)
    for name, value in (("date_from", date_from), ("date_to", date_to)):
        if value is not None and not FIRST_YEAR <= value.year <= LAST_YEAR:
            raise InvalidPeriod(
                f"{name} must lie between {FIRST_YEAR} and {LAST_YEAR}", parameter=name
            )
    end_day = date_to or today(now, timezone)
    start_day = date_from or end_day - timedelta(days=DEFAULT_DAYS - 1)
    if start_day > end_day:
        raise InvalidPeriod("date_from is after date_to", parameter="date_from")
    if (end_day - start_day).days + 1 > MAX_DAYS:
        raise InvalidPeriod(f"the period is longer than {MAX_DAYS} days", parameter="date_to")
    return Period(
        date_from=start_day,
        date_to=end_day,
        timezone=timezone,
        start=local_midnight(start_day, zone),
        end=local_midnight(end_day + timedelta(days=1), zone),
    )


def bucket_of(day: date, granularity: Granularity) -> date:
    """The first day of the bucket holding `day`: itself, its ISO week's Monday, or the 1st."""
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    if granularity == "month":
        return day.replace(day=1)
    return day


def _next_bucket(start: date, granularity: Granularity) -> date:
    if granularity == "week":
        return start + timedelta(days=7)
    if granularity == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start + timedelta(days=1)


def buckets(period: Period, granularity: Granularity) -> list[date]:
    """Every bucket the period touches, in order (the first and last may be partial)."""
    out = []
    at = bucket_of(period.date_from, granularity)
    while at <= period.date_to:
        out.append(at)
        at = _next_bucket(at, granularity)
    return out


def fold(
    per_day: Mapping[date, int] | Iterable[tuple[date, int]],
    period: Period,
    granularity: Granularity,
) -> list[tuple[date, int]]:
    """Daily counts summed into the period's buckets; a bucket without counts holds 0."""
    totals = dict.fromkeys(buckets(period, granularity), 0)
    items = per_day.items() if isinstance(per_day, Mapping) else per_day
    for day, count in items:
        key = bucket_of(day, granularity)
        if key in totals:
            totals[key] += count
    return list(totals.items())
