"""New leads are written grouped by surname (`leads.repository.layout_key`), so a text
search for a name finds its matches on a few shared table pages; ids, timestamps and the
order of everything else stay the input's. The rows are checked as handed to the database
(and on SQLite by rowid, which follows the order rows come in)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db.dialect import bulk_insert
from leadflow.leads import repository
from leadflow.models.lead import Lead
from tests.fixtures.factories import Factory

NAMES = [
    ("Lea", "Zimmer"),
    ("Ben", "adler"),
    ("Mia", "Kramer"),
    ("Paul", "Berg"),
    ("Emma", "Kramer"),
    ("Max", "Ützel"),
    ("Anna", "Adler"),
    ("Jonas", "Kramer"),
]


async def test_an_import_writes_its_leads_grouped_by_surname(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    dialect: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    handed: list[str] = []

    async def watched(session: AsyncSession, model: Any, rows: Any, **kw: Any) -> None:
        if model is Lead:
            handed.extend(row["last_name"] for row in rows)
        await bulk_insert(session, model, rows, **kw)

    monkeypatch.setattr(repository, "bulk_insert", watched)
    rows = [
        {"Vorname": first, "Nachname": last, "E-Mail": f"{first}.{i}@example.com"}
        for i, (first, last) in enumerate(NAMES)
    ]
    r = await client.post("/api/v1/leads/import?analyze=false", headers=admin.headers, json=rows)
    assert r.status_code == 200, r.text
    assert r.json()["imported_count"] == len(NAMES)
    by_surname = sorted((last for _, last in NAMES), key=str.casefold)
    assert handed == by_surname  # the order the rows are written in
    org_key = {"org": org.id if dialect == "postgresql" else org.id.hex}
    if dialect == "sqlite":
        # SQLite numbers new rows in the order they come. (PostgreSQL may put a row on any
        # page with room, so its ctid order is not asserted in a shared test database.)
        written = await session.execute(
            text("SELECT last_name FROM leads WHERE organization_id = :org ORDER BY rowid"),
            org_key,
        )
        assert [last for (last,) in written] == by_surname
    # The ids still follow the file.
    by_id = await session.execute(
        text("SELECT first_name FROM leads WHERE organization_id = :org ORDER BY id"), org_key
    )
    assert [first for (first,) in by_id] == [first for first, _ in NAMES]
