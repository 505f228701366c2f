"""A long background import keeps the planner statistics of `leads` in step with the rows it
writes (PostgreSQL): without them the duplicate lookup of every chunk scans the organisation's
leads instead of probing the email and phone indexes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db.dialect import is_postgres
from leadflow.imports import pipeline, prepare, repository
from leadflow.imports.jobs import run_job
from leadflow.worker.jobs import JobContext
from tests.fixtures.factories import Factory, Member

ROWS = 40


@pytest.fixture(autouse=True)
def _small_chunks(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 4 rows in the background, statistics refreshed from 8 leads on."""
    monkeypatch.setattr(prepare, "CHUNK_ROWS", 4)
    monkeypatch.setattr(pipeline, "ANALYZE_AFTER_ROWS", 8)
    app.state.settings.import_sync_max_rows = 2


async def _background_import(client: httpx.AsyncClient, jobs: JobContext, admin: Member) -> str:
    """Import ROWS new leads through the worker's path; the batch id."""
    body = "Name;E-Mail\n" + "".join(f"P {i};p{i}@example.com\n" for i in range(ROWS))
    r = await client.post(
        "/api/v1/leads/import",
        content=body.encode(),
        headers={**admin.headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 202, r.text
    batch_id = str(r.json()["import_batch_id"])
    assert await run_job(jobs, batch_id) == "completed"
    return batch_id


async def test_statistics_are_refreshed_as_the_import_grows_the_table(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    analysed_at: list[int] = []
    original = repository.analyze_lead_table

    async def counting(s: AsyncSession, **kwargs: Any) -> None:
        analysed_at.append(await repository.lead_table_rows(s))
        await original(s, **kwargs)

    monkeypatch.setattr(repository, "analyze_lead_table", counting)
    admin = await factory.member(await factory.org())
    if is_postgres(session):
        await session.execute(text("ANALYZE leads"))  # statistics of the empty table to start
    await _background_import(client, jobs, admin)
    if not is_postgres(session):
        assert analysed_at == []  # SQLite's planner keeps no such statistics
        return
    # After 8 leads, then each time the import wrote as many as the statistics counted:
    # at 8, 16 and 32 of the 40 (the batch is too small for the analysis at its end).
    assert analysed_at == [0, 8, 16], analysed_at
    rows: Any = await session.scalar(text("SELECT reltuples FROM pg_class WHERE relname = 'leads'"))
    assert rows == 32  # the last analysis, at 32 leads written


async def test_a_busy_table_does_not_hold_the_import(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An ANALYZE that fails (its lock timeout while a VACUUM or an index build holds the
    table) is skipped; the import goes on."""
    tried: list[int] = []

    async def busy(s: AsyncSession, *, lock_timeout_ms: int = 0, **_: Any) -> None:
        tried.append(lock_timeout_ms)
        await s.execute(text("SELECT 1/0"))  # an error from the database itself

    admin = await factory.member(await factory.org())
    if is_postgres(session):
        await session.execute(text("ANALYZE leads"))  # statistics of the empty table to start
    monkeypatch.setattr(repository, "analyze_lead_table", busy)
    batch_id = await _background_import(client, jobs, admin)
    detail = (await client.get(f"/api/v1/imports/{batch_id}", headers=admin.headers)).json()
    assert detail["imported_count"] == ROWS
    if is_postgres(session):
        # Tried again at each threshold (8, 16, … 40 leads): the statistics never moved.
        assert tried == [pipeline.ANALYZE_LOCK_MS] * 5, tried
    else:
        assert tried == []
