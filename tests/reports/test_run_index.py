"""The worker's scans for runs left `running` read the partial index of running runs, not the
whole run history."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db.engine import Database
from leadflow.reports import repository
from tests.fixtures.sql import plan_of, sent_statements

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

SCANS: dict[str, Callable[[AsyncSession], Awaitable[Any]]] = {
    "stale scheduled runs": lambda s: repository.stale_scheduled_runs(s, NOW, 100),
    "fail stale runs": lambda s: repository.fail_stale_runs(s, NOW, NOW),
}


@pytest.mark.parametrize("scan", sorted(SCANS))
async def test_the_stale_run_scans_use_the_index_of_running_runs(
    session: AsyncSession, database: Database, scan: str
) -> None:
    with sent_statements(database) as sent:
        await SCANS[scan](session)
    statement, params = next((s, p) for s, p in sent if "report_runs" in s)
    # The table is empty here: the question is whether the index can answer the scan.
    plan = await plan_of(await session.connection(), statement, params)
    assert "ix_report_runs_running" in plan, plan
