"""New leads are written grouped by surname (`leads.repository.layout_key`), so a text
search for a name finds its matches on a few shared table pages; ids, timestamps and the
order of everything else stay the input's."""

from __future__ import annotations

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

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
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, dialect: str
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rows = [
        {"Vorname": first, "Nachname": last, "E-Mail": f"{first}.{i}@example.com"}
        for i, (first, last) in enumerate(NAMES)
    ]
    r = await client.post("/api/v1/leads/import?analyze=false", headers=admin.headers, json=rows)
    assert r.status_code == 200, r.text
    assert r.json()["imported_count"] == len(NAMES)
    position = "ctid" if dialect == "postgresql" else "rowid"
    org_key = {"org": org.id if dialect == "postgresql" else org.id.hex}
    written = await session.execute(
        text(
            "SELECT first_name, last_name FROM leads WHERE organization_id = :org"
            f" ORDER BY {position}"
        ),
        org_key,
    )
    physical = [tuple(row) for row in written]
    assert [last for _, last in physical] == sorted((last for _, last in NAMES), key=str.casefold)
    # The three Kramers are neighbours; the ids still follow the file.
    by_id = await session.execute(
        text("SELECT first_name FROM leads WHERE organization_id = :org ORDER BY id"), org_key
    )
    assert [first for (first,) in by_id] == [first for first, _ in NAMES]
