"""The worker's scans for runs left `running` read the partial index of running runs, not the
whole run history."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db.dialect import is_postgres
from leadflow.reports import repository

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

SCANS: dict[str, Callable[[AsyncSession], Awaitable[Any]]] = {
    "stale scheduled runs": lambda s: repository.stale_scheduled_runs(s, NOW, 100),
    "fail stale runs": lambda s: repository.fail_stale_runs(s, NOW, NOW),
}


@pytest.mark.parametrize("scan", sorted(SCANS))
async def test_the_stale_run_scans_use_the_index_of_running_runs(
    session: AsyncSession, scan: str
) -> None:
    sent: list[tuple[str, Any]] = []

    def grab(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        sent.append((statement, params))

    conn = await session.connection()
    event.listen(conn.sync_connection, "before_cursor_execute", grab)
    try:
        await SCANS[scan](session)
    finally:
        event.remove(conn.sync_connection, "before_cursor_execute", grab)
    statement, params = next((s, p) for s, p in sent if "report_runs" in s)
    if is_postgres(session):
        # The table is empty here: the question is whether the index can answer the scan.
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            row[0] for row in await conn.exec_driver_sql("EXPLAIN " + statement, params)
        )
    else:
        plan = "\n".join(
            str(row[-1])
            for row in await conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, params)
        )
    assert "ix_report_runs_running" in plan, plan
