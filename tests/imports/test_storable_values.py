"""Values a row check must catch or clean before the write, because the database refuses them
— and one refused value used to refuse the whole chunk's COPY on PostgreSQL (the synchronous
import answered 422 for the file, a background import failed with nothing imported):

- NUL characters (legacy exports pad fields with them) are dropped from every cell and header;
- an email address longer than SMTP allows (the column holds 320 characters), a number
  field's "1e999" (a float, but no JSON number) and a score of "1e999" or "nan" are the row's
  error, and the other rows are imported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db.engine import Database
from leadflow.models.import_batch import ImportBatch
from leadflow.models.lead import Lead
from tests.fixtures.factories import Factory, background_batch, run_batch, sync_import

BODY = (
    "Name,E-Mail\x00,Notizen\n"
    "Anna\x00 Berg,anna@example.com,ruft zur\x00\x00ück\n"
    "Carl Dorn,carl@exam\x00ple.com,\x00\n"
    "Eva Fuchs,eva@example.com,ok\n"
    f"Gert Haas,gert@{'h' * 60}.{'i' * 60}.{'j' * 60}.{'k' * 60}.{'l' * 60}.de,lang\n"
)
EXPECTED = {
    "anna@example.com": ("Anna", "Berg", "ruft zurück"),
    "carl@example.com": ("Carl", "Dorn", None),
    "eva@example.com": ("Eva", "Fuchs", "ok"),
}


async def _stored(session: AsyncSession) -> dict[str | None, tuple[str | None, ...]]:
    leads = await session.scalars(select(Lead))
    return {lead.email: (lead.first_name, lead.last_name, lead.notes) for lead in leads}


async def test_a_background_import_drops_nul_characters(
    committed_db: Database, tmp_path: Path
) -> None:
    async with committed_db.sessionmaker() as session:
        batch_id = await background_batch(session, BODY.encode())
    assert await run_batch(committed_db, batch_id, tmp_path / "data") == "completed"
    async with committed_db.sessionmaker() as s:
        batch = await s.scalar(select(ImportBatch))
        assert batch is not None
        assert (batch.imported_count, batch.error_count) == (3, 1)
        assert batch.headers == ["Name", "E-Mail", "Notizen"]
        assert await _stored(s) == EXPECTED


async def _sync_import(
    client: httpx.AsyncClient, factory: Factory, body: str, *, fields: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The synchronous import's response for `body`, by the admin of a new organisation that
    has a number custom field for each of `fields`."""
    admin = await factory.member(await factory.org())
    for key in fields:
        spec = {"key": key, "label": key.title(), "type": "number"}
        created = await client.post("/api/v1/custom-fields", headers=admin.headers, json=spec)
        assert created.status_code == 201, created.text
    return await sync_import(client, admin.headers, body)


async def test_a_synchronous_import_drops_nul_characters(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    out = await _sync_import(client, factory, BODY)
    assert (out["imported_count"], out["error_count"]) == (3, 1)
    assert out["errors"][0]["row"] == 5 and out["errors"][0]["column"] == "E-Mail"
    assert await _stored(session) == EXPECTED


async def test_a_number_that_is_no_json_number_is_the_rows_error(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    body = (
        "Name,E-Mail,Budget,Score\n"
        "Anna Berg,anna@example.com,1e999,10\n"
        "Carl Dorn,carl@example.com,1200,20\n"
        "Eva Fuchs,eva@example.com,1,1e999\n"
        "Gert Haas,gert@example.com,2,nan\n"
    )
    out = await _sync_import(client, factory, body, fields=("budget",))
    assert (out["imported_count"], out["error_count"]) == (1, 3)
    assert [(e["row"], e["column"]) for e in out["errors"]] == [
        (2, "budget"),
        (4, "Score"),
        (5, "Score"),
    ]
    assert "finite" in out["errors"][0]["message"]
    carl = await session.scalar(select(Lead).where(Lead.email == "carl@example.com"))
    assert carl is not None and carl.custom == {"budget": 1200}
