"""`db.dialect.local_time_text`: a UTC timestamp's local day and month, DST included, on both
engines (SQLite through the function registered on every connection)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db.dialect import LocalPart, local_time_text
from leadflow.db.types import UTCDateTime
from tests.reports.conftest import at


@pytest.mark.parametrize(
    ("instant", "tz", "part", "expected"),
    [
        (at(2026, 1, 31, 22, 59), "Europe/Berlin", "date", "2026-01-31"),  # 23:59 CET
        (at(2026, 1, 31, 23, 0), "Europe/Berlin", "month", "2026-02"),  # 00:00 CET
        (at(2026, 3, 29, 21, 59), "Europe/Berlin", "date", "2026-03-29"),  # 23:59 CEST
        (at(2026, 3, 29, 22, 0), "Europe/Berlin", "date", "2026-03-30"),  # 00:00 CEST
        (at(2026, 10, 31, 23, 30), "Europe/Berlin", "month", "2026-11"),  # 00:30 CET
        (at(2026, 3, 1, 3, 0), "America/New_York", "date", "2026-02-28"),  # 22:00 EST
        (at(2026, 12, 31, 23, 59), "UTC", "month", "2026-12"),
    ],
)
async def test_local_time_text(
    session: AsyncSession,
    dialect: str,
    instant: datetime,
    tz: str,
    part: LocalPart,
    expected: str,
) -> None:
    expr = local_time_text(literal(instant, UTCDateTime()), tz, part, dialect)
    assert await session.scalar(select(expr)) == expected


async def test_null_stays_null(session: AsyncSession, dialect: str) -> None:
    expr = local_time_text(literal(None, UTCDateTime()), "Europe/Berlin", "date", dialect)
    assert await session.scalar(select(expr)) is None
