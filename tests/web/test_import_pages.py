"""The import wizard: preview, dry run, import (inline and in the background), errors.csv and
undo through the imports services, with the API's permission and scope."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.imports.jobs import run_job
from leadflow.models.import_batch import ImportBatch
from leadflow.models.lead import Lead
from leadflow.models.organization import Organization
from leadflow.worker.jobs import JobContext
from tests.fixtures.factories import Factory
from tests.web.helpers import HTMX, Browser, browser

CSV = (
    "Name;E-Mail;Status;Firma\n"
    "Lea Kramer;lea@example.com;offen;Kramer Coaching\n"
    "Jonas Becker;jonas@example.com;gewonnen;Becker GmbH\n"
    "Mia Schulz;not-an-email;offen;\n"
)


async def _post(
    client: httpx.AsyncClient,
    who: Browser,
    url: str,
    data: dict[str, Any] | None = None,
    *,
    content: str = CSV,
    csrf: bool = True,
) -> httpx.Response:
    """A wizard step: the form with the file, as htmx sends it (token in the header)."""
    headers = who.headers(HTMX)
    if csrf:
        headers["X-CSRF-Token"] = who.csrf
    files = {"file": ("leads.csv", content.encode(), "text/csv")}
    return await client.post(url, data=data or {}, files=files, headers=headers)


async def _count(session: AsyncSession, org: Organization) -> int:
    stmt = select(func.count()).select_from(Lead)
    stmt = stmt.where(Lead.organization_id == org.id, Lead.deleted_at.is_(None))
    return int(await session.scalar(stmt) or 0)


async def test_preview_proposes_and_the_edits_reach_the_dry_run(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    page = await me.get(client, "/crm/import")
    assert page.status_code == 200 and 'name="file"' in page.text
    shown = await _post(client, me, "/crm/import/preview", {"fresh": "1"})
    assert shown.status_code == 200, shown.text
    assert 'data-testid="import-preview"' in shown.text
    # The proposal: the name and email columns and the stage of "gewonnen".
    assert re.search(r'data-column="E-Mail">.*?<option value="email" selected', shown.text, re.S)
    assert 'name="sv_0"' in shown.text and 'value="won" selected' in shown.text
    dry = await _post(
        client,
        me,
        "/crm/import/dry-run",
        {"column_0": "Name", "target_0": "name", "column_1": "E-Mail", "target_1": "email"},
    )
    assert dry.status_code == 200, dry.text
    assert 'data-testid="dry-imported">2<' in dry.text and 'data-testid="dry-errors">1<' in dry.text
    assert "not-an-email" in dry.text
    # The edited mapping counts: with the email column ignored, the bad address is no error.
    edited = await _post(
        client,
        me,
        "/crm/import/dry-run",
        {"column_0": "Name", "target_0": "name", "column_1": "E-Mail", "target_1": "ignore"},
    )
    assert 'data-testid="dry-imported">3<' in edited.text
    assert await _count(session, org) == 0  # a dry run writes nothing
    # Without scripts the step comes inside the wizard's page (token in the form).
    plain = await client.post(
        "/crm/import/preview",
        data={"csrf_token": me.csrf},
        files={"file": ("leads.csv", CSV.encode(), "text/csv")},
        headers=me.cookie,
    )
    assert plain.status_code == 200 and "<html" in plain.text
    assert 'data-testid="import-preview"' in plain.text


async def test_whole_file_problems_and_bad_options_are_shown_in_the_step(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    empty = await _post(client, me, "/crm/import/dry-run", content="Name;E-Mail\n")
    assert empty.status_code == 422 and 'data-testid="import-problem"' in empty.text
    bad = await _post(client, me, "/crm/import/run", {"on_duplicate": "merge"})
    assert bad.status_code == 422 and "on_duplicate" in bad.text
    headers = me.headers({**HTMX, "X-CSRF-Token": me.csrf})
    none = await client.post("/crm/import/preview", data={"x": "1"}, headers=headers)
    assert none.status_code == 422 and "Choose a CSV or XLSX file" in none.text
    assert await _count(session, org) == 0


async def test_import_shows_the_result_errors_csv_and_undo(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    ran = await _post(client, me, "/crm/import/run")
    assert ran.status_code == 204, ran.text
    target = ran.headers["hx-redirect"]
    batch_id = uuid.UUID(target.rsplit("/", 1)[1])
    assert await _count(session, org) == 2
    page = await me.get(client, target)
    assert page.status_code == 200 and 'data-status="completed"' in page.text
    assert 'data-testid="batch-imported">2<' in page.text and "hx-trigger" not in page.text
    errors = await me.get(client, f"{target}/errors.csv")
    assert errors.status_code == 200 and "not-an-email" in errors.text
    assert (await _post(client, me, f"{target}/undo", csrf=False)).status_code == 403
    undone = await me.post(client, f"{target}/undo")
    assert undone.status_code == 303 and await _count(session, org) == 0
    batch = await session.get(ImportBatch, batch_id, populate_existing=True)
    assert batch is not None and batch.status == "undone"


async def test_a_large_file_runs_in_the_background_and_the_page_polls(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
) -> None:
    app.state.settings.import_sync_max_rows = 2
    org = await factory.org()
    me = await browser(factory, org)
    ran = await _post(client, me, "/crm/import/run")
    batch_id = ran.headers["hx-redirect"].rsplit("/", 1)[1]
    pending = await me.get(client, f"/crm/import/{batch_id}/progress", headers=HTMX)
    assert 'data-status="pending"' in pending.text and 'hx-trigger="every 1s"' in pending.text
    assert await run_job(jobs, batch_id) == "completed"
    done = await me.get(client, f"/crm/import/{batch_id}/progress", headers=HTMX)
    assert 'data-status="completed"' in done.text and "hx-trigger" not in done.text
    assert await _count(session, org) == 2


async def test_permission_and_organisation(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org, other = await factory.org(), await factory.org()
    viewer = await browser(factory, org, "viewer")
    assert (await viewer.get(client, "/crm/import")).status_code == 403
    assert (await _post(client, viewer, "/crm/import/run")).status_code == 403
    assert await _count(session, org) == 0
    stranger = await browser(factory, other)
    me = await browser(factory, org)
    ran = await _post(client, me, "/crm/import/run")
    target = ran.headers["hx-redirect"]
    assert (await stranger.get(client, target)).status_code == 404
    assert (await stranger.get(client, f"{target}/errors.csv")).status_code == 404
    assert (await stranger.post(client, f"{target}/undo")).status_code == 404
    assert (await _post(client, me, "/crm/import/run", csrf=False)).status_code == 403
    assert await _count(session, org) == 2


async def test_a_nul_in_the_wizards_options_is_shown_and_nothing_imported(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    """The wizard's multipart fields reach the import's options, which refuse a NUL on both
    engines (PostgreSQL could not store the batch; SQLite would keep it)."""
    org = await factory.org()
    me = await browser(factory, org)
    for fields in (
        {"column_0": "Na\x00me", "target_0": "name"},
        {"column_0": "Name", "target_0": "name", "sv_0": "offen", "stage_0": "n\x00ew"},
        {"default_status": "n\x00ew"},
    ):
        ran = await _post(client, me, "/crm/import/run", fields)
        assert ran.status_code == 422, (fields, ran.text)
        assert 'data-testid="import-problem"' in ran.text
        assert "NUL character" in ran.text
    assert await _count(session, org) == 0
    batches = select(func.count()).select_from(ImportBatch)
    assert await session.scalar(batches.where(ImportBatch.organization_id == org.id)) == 0
