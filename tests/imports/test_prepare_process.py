"""Large background imports prepare their rows in a process of their own: the result is the
one the in-thread preparation gives, failures come back to the batch, and an import that
stops early leaves no process behind."""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.service import actor_for_user
from leadflow.config import Settings
from leadflow.imports import prepare
from leadflow.imports.jobs import run_job
from leadflow.imports.options import ImportOptions
from leadflow.imports.parsing import FileProblem
from leadflow.imports.rows import Source, load_context, open_rows
from leadflow.models.lead import Lead
from leadflow.worker.jobs import JobContext
from tests.fixtures.factories import Factory, Member

CSV = (
    "Vorname;Nachname;E-Mail;Status;Letzter Kontakt\n"
    "Lea;Kramer;lea@example.com;offen;03.02.2026\n"
    "Jonas;Weber;jonas@example.com;Angebot verschickt;\n"
    "Mia;Fischer;kaputt@;offen;\n"
    "Lea;Kramer;lea@example.com;offen;\n"  # a duplicate of row 2
    "Felix;Wagner;felix@example.com;Ganz neu;01.01.2026\n"  # a status the pipeline lacks
    "Paul;Meyer;paul@example.com;;\n"
    "Emma;Schmidt;emma@example.com;gewonnen;\n"
)


async def _run(
    client: httpx.AsyncClient, jobs: JobContext, member: Member, *, in_process: bool
) -> dict[str, Any]:
    jobs.settings.import_prepare_process_min_bytes = 0 if in_process else 1 << 40
    r = await client.post(
        "/api/v1/leads/import",
        content=CSV.encode(),
        headers={**member.headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 202, r.text
    batch_id = r.json()["import_batch_id"]
    assert await run_job(jobs, batch_id) == "completed"
    detail: dict[str, Any] = (
        await client.get(f"/api/v1/imports/{batch_id}", headers=member.headers)
    ).json()
    return detail


async def _leads(session: AsyncSession, org: uuid.UUID) -> list[tuple[Any, ...]]:
    rows = await session.execute(
        select(Lead.email, Lead.full_name, Lead.status, Lead.needs_action, Lead.score)
        .where(Lead.organization_id == org)
        .order_by(Lead.email)
    )
    return [tuple(r) for r in rows]


_COMPARED = (
    "total_rows",
    "imported_count",
    "skipped_count",
    "error_count",
    "needs_action_count",
    "without_last_contact_count",
)


async def test_a_process_prepares_what_a_thread_prepares(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prepare, "CHUNK_ROWS", 2)  # several chunks through the pipe
    app.state.settings.import_sync_max_rows = 2  # background, as a large file would be
    started: list[prepare.ProcessReader] = []
    original = prepare.ProcessReader.__init__

    def spy(self: prepare.ProcessReader, *args: Any, **kwargs: Any) -> None:
        started.append(self)
        original(self, *args, **kwargs)

    monkeypatch.setattr(prepare.ProcessReader, "__init__", spy)
    results = {}
    for in_process in (True, False):
        org = await factory.org()
        admin = await factory.member(org)
        detail = await _run(client, jobs, admin, in_process=in_process)
        results[in_process] = (detail, await _leads(session, org.id))
    assert len(started) == 1  # only the first run used a process
    (by_process, leads_p), (by_thread, leads_t) = results[True], results[False]
    assert {k: by_process[k] for k in _COMPARED} == {k: by_thread[k] for k in _COMPARED}
    assert (by_process["imported_count"], by_process["skipped_count"]) == (5, 1)
    assert by_process["error_count"] == 1
    assert [(e, s) for e, _, s, _, _ in leads_p] == [(e, s) for e, _, s, _, _ in leads_t]
    assert leads_p == leads_t
    assert all(r._proc is not None and r._proc.returncode is not None for r in started)


async def _reader(
    session: AsyncSession,
    member: Member,
    settings: Settings,
    path: Path,
    fmt: str,
    header: list[str] | None = None,
) -> prepare.ProcessReader:
    actor = actor_for_user(member.user)
    source = Source(fmt=fmt, chunks=lambda: iter([path.read_bytes()]), path=path)  # type: ignore[arg-type]
    options = ImportOptions(analyze=False)
    ctx = await load_context(session, actor, settings, options, header or ["Name", "E-Mail"])
    return prepare.ProcessReader(ctx, source, path, skip=0)


async def test_statuses_read_in_the_process_come_back_with_the_last_chunk(
    session: AsyncSession,
    factory: Factory,
    settings: Settings,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    path = tmp_path / "leads.csv"
    path.write_text(CSV)
    header = CSV.splitlines()[0].split(";")
    reader = await _reader(session, admin, settings, path, "csv", header)
    caplog.set_level(logging.INFO, logger="leadflow.imports")
    try:
        rows = 0
        while (chunk := await reader.next()) is not None:
            rows += chunk.size
    finally:
        await reader.close()
    assert (rows, reader.total_rows) == (7, 7)
    # The process reports its own peak memory (not the parent's image it had before exec).
    peaks = [getattr(r, "prepare_peak_rss_mb", None) for r in caplog.records]
    assert any(p is not None and 10 < p < 400 for p in peaks), peaks
    # The same file read in this process's thread reads every status the same way.
    ctx = await load_context(
        session, actor_for_user(admin.user), settings, ImportOptions(analyze=False), header
    )
    _, lines = open_rows(Source(fmt="csv", chunks=lambda: iter([path.read_bytes()])), settings)
    here = prepare.ThreadReader(ctx, lines, skip=0)
    while await here.next() is not None:
        pass
    expected = {k: (c.stage, c.rule) for k, c in here.stage_choices().items()}
    assert sorted(expected) == ["Angebot verschickt", "Ganz neu", "gewonnen", "offen"]
    assert {k: (c.stage, c.rule) for k, c in reader.stage_choices().items()} == expected


async def test_a_failure_in_the_process_is_raised_in_the_import(
    session: AsyncSession, factory: Factory, settings: Settings, tmp_path: Path
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    path = tmp_path / "not-a-workbook.xlsx"
    path.write_bytes(b"Name;E-Mail\nLea;lea@example.com\n")
    with pytest.raises(FileProblem):
        open_rows(Source(fmt="xlsx", chunks=lambda: iter([path.read_bytes()])), settings)
    reader = await _reader(session, admin, settings, path, "xlsx")
    try:
        with pytest.raises(FileProblem):
            await reader.next()
    finally:
        await reader.close()


async def _big_file_reader(
    session: AsyncSession, factory: Factory, settings: Settings, tmp_path: Path, rows: int
) -> prepare.ProcessReader:
    admin = await factory.member(await factory.org())
    path = tmp_path / "leads.csv"
    path.write_text(
        "Name;E-Mail\n" + "".join(f"Person {i};p{i}@example.com\n" for i in range(rows))
    )
    return await _reader(session, admin, settings, path, "csv")


async def test_a_killed_process_leaves_the_import_to_resume_and_close_leaves_none(
    session: AsyncSession, factory: Factory, settings: Settings, tmp_path: Path
) -> None:
    reader = await _big_file_reader(session, factory, settings, tmp_path, 20_000)
    try:
        first = await reader.next()
        assert first is not None and first.size == prepare.CHUNK_ROWS
        assert reader._proc is not None
        reader._proc.kill()
        await reader._proc.wait()
        with pytest.raises(prepare.PreparingProcessDied, match="preparing process exited"):
            # The chunks already in the pipe arrive first; then the process's end.
            for _ in range(20_000 // prepare.CHUNK_ROWS + 1):
                await reader.next()
    finally:
        await reader.close()
    assert reader._proc.returncode is not None


async def test_an_import_that_stops_early_stops_its_process(
    session: AsyncSession, factory: Factory, settings: Settings, tmp_path: Path
) -> None:
    reader = await _big_file_reader(session, factory, settings, tmp_path, 50_000)
    assert await reader.next() is not None
    proc = reader._proc
    assert proc is not None and proc.returncode is None  # mid-file, waiting on the pipe
    await asyncio.wait_for(reader.close(), timeout=30)
    assert proc.returncode is not None


async def test_the_process_ignores_a_terminate_sent_to_the_whole_group(
    session: AsyncSession, factory: Factory, settings: Settings, tmp_path: Path
) -> None:
    """A service manager's SIGTERM (or a Ctrl-C) reaches every process of the worker; the
    worker lets its running import finish, so the preparing process must too."""
    reader = await _big_file_reader(session, factory, settings, tmp_path, 10_000)
    try:
        assert await reader.next() is not None
        assert reader._proc is not None
        reader._proc.send_signal(signal.SIGTERM)
        reader._proc.send_signal(signal.SIGINT)
        rows = prepare.CHUNK_ROWS
        while (chunk := await reader.next()) is not None:
            rows += chunk.size
    finally:
        await reader.close()
    assert (rows, reader.total_rows) == (10_000, 10_000)


async def test_a_failure_in_the_process_carries_its_traceback(
    session: AsyncSession, factory: Factory, settings: Settings, tmp_path: Path
) -> None:
    admin = await factory.member(await factory.org())
    path = tmp_path / "not-a-workbook.xlsx"
    path.write_bytes(b"Name;E-Mail\n")
    reader = await _reader(session, admin, settings, path, "xlsx")
    try:
        with pytest.raises(FileProblem) as caught:
            await reader.next()
    finally:
        await reader.close()
    # Where in the other process it was raised, for the log of the failed import.
    assert "Traceback" in str(caught.value.__cause__)
    assert "open_rows" in str(caught.value.__cause__)
