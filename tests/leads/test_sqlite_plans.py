"""SQLite plans of the lead list: the text search tests its index (`sqx_leads_search`,
migration 0029), and a capped count reads no table row.

SQLite has no substring index; without this one the search walked an organisation index and
read every lead's table row to test its search_text. The plans are SQLite's own choice for
the statements the endpoint sends (captured as sent, explained with their parameters).
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection

from leadflow.db.engine import Database
from tests.fixtures.factories import Factory
from tests.fixtures.sql import plan_of, sent_statements

pytestmark = pytest.mark.parametrize("database", ["sqlite"], indirect=True)


async def _reads_lead_rows(conn: AsyncConnection, statement: str, params: Any) -> bool:
    """Whether the statement's program reads a column from a `leads` table row (an index
    entry is not a row: its cursor opens another root page)."""
    root = (
        await conn.exec_driver_sql("SELECT rootpage FROM sqlite_master WHERE name = 'leads'")
    ).scalar_one()
    result = await conn.exec_driver_sql("EXPLAIN " + statement, params)
    program: list[tuple[Any, ...]] = [tuple(r) for r in result]
    # (addr, opcode, p1, p2, ...): OpenRead p1 = cursor, p2 = root page; Column p1 = cursor.
    table_cursors = {r[2] for r in program if r[1] == "OpenRead" and r[3] == root}
    return any(r[1] == "Column" and r[2] in table_cursors for r in program)


async def test_the_search_tests_its_index(
    client: httpx.AsyncClient, factory: Factory, database: Database, conn: AsyncConnection
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    for i in range(30):
        await factory.lead(org, first_name=f"Kramer{i}" if i % 3 == 0 else f"Lea{i}")
    with sent_statements(database) as seen:
        r = await client.get("/api/v1/leads", headers=admin.headers, params={"q": "kramer"})
    assert r.status_code == 200, r.text
    assert r.json()["total"] == 10 and r.json()["total_is_estimate"] is False
    searches = [(sql, params) for sql, params in seen if "LIKE" in sql]
    assert len(searches) == 1, seen
    plan = await plan_of(conn, *searches[0])
    assert re.search(r"USING (COVERING )?INDEX sqx_leads_search\b", plan), plan


async def test_a_capped_count_reads_no_lead_row(
    client: httpx.AsyncClient, factory: Factory, database: Database, conn: AsyncConnection
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    for i in range(6):
        await factory.lead(org, status="contacted" if i % 2 else "new")
    with sent_statements(database) as seen:
        r = await client.get(
            "/api/v1/leads", headers=admin.headers, params={"status": "contacted", "limit": "2"}
        )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 3 and body["total_is_estimate"] is False  # counted, not a short page
    counts = [(sql, params) for sql, params in seen if "count(" in sql]
    assert len(counts) == 1, seen
    assert "ix_leads_org_status_created" in await plan_of(conn, *counts[0])
    assert not await _reads_lead_rows(conn, *counts[0]), counts[0][0]
