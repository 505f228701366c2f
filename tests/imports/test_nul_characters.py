"""NUL characters in an imported file (legacy exports pad fields with them) are dropped from
every cell and header: PostgreSQL cannot store them in text, and one used to refuse the whole
chunk — the synchronous import answered 422 for the file, a background import failed with
nothing imported."""

from __future__ import annotations

from pathlib import Path

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db.engine import Database
from leadflow.imports.jobs import run_job
from leadflow.models.import_batch import ImportBatch
from leadflow.models.lead import Lead
from leadflow.worker.jobs import JobContext
from tests.fixtures.factories import Factory, background_batch, make_settings

BODY = (
    "Name,E-Mail\x00,Notizen\n"
    "Anna\x00 Berg,anna@example.com,ruft zur\x00\x00ück\n"
    "Carl Dorn,carl@exam\x00ple.com,\x00\n"
    "Eva Fuchs,eva@example.com,ok\n"
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
    settings = make_settings(committed_db.url, tmp_path / "data")
    jobs = JobContext(settings=settings, session_factory=committed_db.sessionmaker)
    assert await run_job(jobs, batch_id) == "completed"
    async with committed_db.sessionmaker() as s:
        batch = await s.scalar(select(ImportBatch))
        assert batch is not None
        assert (batch.imported_count, batch.error_count) == (3, 0)
        assert batch.headers == ["Name", "E-Mail", "Notizen"]
        assert await _stored(s) == EXPECTED


async def test_a_synchronous_import_drops_nul_characters(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        "/import/leads",
        headers={**admin.headers, "Content-Type": "text/csv"},
        content=BODY.encode(),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["imported_count"], r.json()["errors"]) == (3, [])
    assert await _stored(session) == EXPECTED
