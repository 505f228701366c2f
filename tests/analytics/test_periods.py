"""Periods and buckets in the organisation's time zone, and the local-date expression of
db.dialect on both engines (exact across DST changes and for zones off by a quarter hour)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import literal, select, union_all
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.analytics import periods
from leadflow.analytics.errors import InvalidPeriod
from leadflow.db.dialect import local_date, utc_offset_segments
from leadflow.db.types import UTCDateTime

NOW = datetime(2026, 4, 10, 12, 0, tzinfo=UTC)


def test_a_period_is_whole_local_days_as_utc_instants() -> None:
    p = periods.resolve(date(2026, 3, 1), date(2026, 3, 31), timezone="Europe/Berlin", now=NOW)
    assert p.start == datetime(2026, 2, 28, 23, 0, tzinfo=UTC)  # midnight CET
    assert p.end == datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # midnight CEST
    # The default: the 30 days up to today in the zone (already the 11th in Tokyo at 12:00 UTC
    # would be wrong: 21:00 there is still the 10th).
    d = periods.resolve(None, None, timezone="Asia/Tokyo", now=NOW)
    assert (d.date_from, d.date_to) == (date(2026, 3, 12), date(2026, 4, 10))
    late = periods.resolve(None, None, timezone="Asia/Tokyo", now=NOW + timedelta(hours=3))
    assert late.date_to == date(2026, 4, 11)
    only_from = periods.resolve(date(2026, 1, 1), None, timezone="UTC", now=NOW)
    assert only_from.date_to == date(2026, 4, 10)
    only_to = periods.resolve(None, date(2026, 1, 30), timezone="UTC", now=NOW)
    assert only_to.date_from == date(2026, 1, 1)


@pytest.mark.parametrize(
    ("date_from", "date_to", "parameter"),
    [
        (date(2026, 3, 2), date(2026, 3, 1), "date_from"),
        (date(2016, 1, 1), date(2026, 1, 9), "date_to"),  # 3662 days
        (date(1899, 12, 31), date(1900, 1, 1), "date_from"),
        (date(2999, 12, 31), date(3000, 1, 1), "date_to"),
        (date(2026, 5, 1), None, "date_from"),  # after today
    ],
)
def test_invalid_periods(date_from: date, date_to: date | None, parameter: str) -> None:
    with pytest.raises(InvalidPeriod) as caught:
        periods.resolve(date_from, date_to, timezone="Europe/Berlin", now=NOW)
    assert caught.value.extra["errors"][0]["loc"] == ["query", parameter]


def test_the_longest_period_is_allowed() -> None:
    p = periods.resolve(date(2016, 1, 1), date(2026, 1, 7), timezone="UTC", now=NOW)
    assert (p.date_to - p.date_from).days + 1 == periods.MAX_DAYS


def test_iso_weeks_across_a_year_end_and_months() -> None:
    p = periods.resolve(date(2026, 12, 27), date(2027, 1, 11), timezone="UTC", now=NOW)
    # 2027-01-01 is a Friday: its ISO week (2026-W53) began on Monday 2026-12-28.
    assert periods.buckets(p, "week") == [
        date(2026, 12, 21),
        date(2026, 12, 28),
        date(2027, 1, 4),
        date(2027, 1, 11),
    ]
    assert periods.buckets(p, "month") == [date(2026, 12, 1), date(2027, 1, 1)]
    assert len(periods.buckets(p, "day")) == 16
    folded = periods.fold(
        [(date(2026, 12, 27), 1), (date(2027, 1, 1), 2), (date(2027, 1, 3), 3)], p, "week"
    )
    assert folded == [
        (date(2026, 12, 21), 1),
        (date(2026, 12, 28), 5),
        (date(2027, 1, 4), 0),
        (date(2027, 1, 11), 0),
    ]


def test_offset_segments() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    end = datetime(2027, 1, 1, tzinfo=UTC)
    assert utc_offset_segments("Europe/Berlin", start, end) == [
        (datetime(2026, 3, 29, 1, 0, tzinfo=UTC), 60),
        (datetime(2026, 10, 25, 1, 0, tzinfo=UTC), 120),
        (None, 60),
    ]
    assert utc_offset_segments("Asia/Kathmandu", start, end) == [(None, 345)]


ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu", "UTC"]


def _instants() -> list[datetime]:
    """Every 15 minutes from 12 hours before to 12 hours after the 2026 DST changes above."""
    around = [
        datetime(2026, 3, 29, 1, 0, tzinfo=UTC),  # Berlin, spring
        datetime(2026, 10, 25, 1, 0, tzinfo=UTC),  # Berlin, autumn
        datetime(2026, 3, 8, 7, 0, tzinfo=UTC),  # New York, spring
        datetime(2026, 11, 1, 6, 0, tzinfo=UTC),  # New York, autumn
        datetime(2026, 4, 4, 15, 0, tzinfo=UTC),  # Lord Howe (30 minutes), autumn
        datetime(2026, 10, 3, 15, 30, tzinfo=UTC),  # Lord Howe, spring
    ]
    out = []
    for at in around:
        out += [at + timedelta(minutes=15 * k) for k in range(-48, 49)]
    return out


@pytest.mark.parametrize("zone", ZONES)
async def test_local_date_matches_zoneinfo(session: AsyncSession, dialect: str, zone: str) -> None:
    instants = _instants()
    start, end = min(instants), max(instants) + timedelta(seconds=1)
    # Statements of 200 literals each (a UNION ALL of SELECTs), evaluated by the database.
    got = []
    for i in range(0, len(instants), 200):
        chunk = [
            select(local_date(literal(at, UTCDateTime), zone, start, end, dialect))
            for at in instants[i : i + 200]
        ]
        got += [row[0] for row in (await session.execute(union_all(*chunk))).all()]
    want = [at.astimezone(ZoneInfo(zone)).date() for at in instants]
    assert got == want
