"""Bounded import input and output: spooled uploads, XLSX limits, capped row errors,
streamed errors.csv and the retention of stored files."""

from __future__ import annotations

import csv
import io
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.datastructures import UploadFile

from leadflow.imports import batches, prepare, repository
from leadflow.imports.jobs import cleanup_files_job, run_job
from leadflow.kit.clock import clock
from leadflow.models.import_batch import ImportBatch, ImportFileChunk, ImportRowError
from leadflow.models.lead import Lead
from leadflow.worker.jobs import JobContext, RecordingQueue
from tests.fixtures.factories import Factory, Member

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def _xlsx(rows: int, *, width: int = 2) -> bytes:
    book = Workbook(write_only=True)
    sheet = book.create_sheet()
    extra = [f"Extra {c}" for c in range(width - 2)]
    sheet.append(["Name", "E-Mail", *extra])
    for i in range(rows):
        sheet.append([f"Person {i}", f"p{i}@example.com", *(["x"] * (width - 2))])
    buf = io.BytesIO()
    book.save(buf)
    return buf.getvalue()


def _bomb(xlsx: bytes, padding: int) -> bytes:
    """A valid workbook whose worksheet ends in `padding` bytes of whitespace (legal XML):
    tiny compressed, huge unpacked."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(xlsx)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "xl/worksheets/sheet1.xml":
                data += b" " * padding
            dst.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    return out.getvalue()


async def _upload(
    client: httpx.AsyncClient, member: Member, content: bytes, name: str, ctype: str
) -> httpx.Response:
    return await client.post(
        "/api/v1/leads/import",
        headers=member.headers,
        files={"file": (name, content, ctype)},
        data={"analyze": "false"},
    )


async def _count(session: AsyncSession, model: Any, *conds: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*conds)) or 0)


async def test_uploads_are_never_read_whole_into_memory(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The upload is read from its spool file in pieces (`UploadFile.read()` is never called),
    and a multipart CSV over the sync limit is stored for the worker from that file."""

    async def whole_read(self: UploadFile, size: int = -1) -> bytes:
        raise AssertionError("the whole upload was read into memory")

    monkeypatch.setattr(UploadFile, "read", whole_read)
    app.state.settings.import_sync_max_rows = 5
    org = await factory.org()
    admin = await factory.member(org)
    text = "Name,E-Mail\n" + "".join(f"Person {i},p{i}@example.com\n" for i in range(12))
    r = await _upload(client, admin, text.encode(), "kunden.csv", "text/csv")
    assert r.status_code == 202, r.text
    assert await run_job(jobs, r.json()["import_batch_id"]) == "completed"
    assert await _count(session, Lead, Lead.organization_id == org.id) == 12
    r = await _upload(client, admin, text.encode().replace(b"p1", b"q1"), "k.csv", "text/csv")
    assert r.status_code == 202, r.text


async def test_big_xlsx_goes_to_background(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    queue: RecordingQueue,
    jobs: JobContext,
) -> None:
    app.state.settings.import_sync_max_rows = 5
    org = await factory.org()
    admin = await factory.member(org)
    r = await _upload(client, admin, _xlsx(12), "kunden.xlsx", XLSX)
    assert r.status_code == 202, r.text
    assert [name for name, *_ in queue.items] == ["imports.run"]
    assert await _count(session, Lead, Lead.organization_id == org.id) == 0
    assert await run_job(jobs, r.json()["import_batch_id"]) == "completed"
    done = (await client.get(r.json()["status_url"], headers=admin.headers)).json()
    assert (done["status"], done["total_rows"], done["imported_count"]) == ("completed", 12, 12)
    # At or below the limit the same workbook is imported in the request.
    r = await _upload(client, admin, _xlsx(5), "klein.xlsx", XLSX)
    assert r.status_code == 200 and r.json()["total_rows"] == 5


@pytest.mark.parametrize("case", ["ratio", "total"])
async def test_xlsx_zip_bomb_is_rejected_before_opening(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, session: AsyncSession, case: str
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    if case == "ratio":
        content = _bomb(_xlsx(3), 20 * 1024 * 1024)
        assert len(content) < 200 * 1024  # ~1000:1
    else:
        app.state.settings.import_xlsx_max_uncompressed_bytes = 10_000
        content = _xlsx(200)
    r = await _upload(client, admin, content, "bombe.xlsx", XLSX)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == "xlsx_too_large"
    assert await _count(session, ImportBatch, ImportBatch.organization_id == org.id) == 0
    assert await _count(session, Lead, Lead.organization_id == org.id) == 0


@pytest.mark.parametrize("sync_max", [1_000, 5])
async def test_xlsx_with_too_many_cells_is_rejected(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    queue: RecordingQueue,
    sync_max: int,
) -> None:
    app.state.settings.import_sync_max_rows = sync_max
    app.state.settings.import_xlsx_max_cells = 40
    org = await factory.org()
    admin = await factory.member(org)
    r = await _upload(client, admin, _xlsx(20, width=3), "breit.xlsx", XLSX)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "xlsx_too_large" and "40 cells" in r.json()["detail"]
    assert await _count(session, ImportBatch, ImportBatch.organization_id == org.id) == 0
    assert await _count(session, Lead, Lead.organization_id == org.id) == 0
    assert queue.items == []
    # Within the limit the same shape imports.
    r = await _upload(client, admin, _xlsx(5, width=3), "schmal.xlsx", XLSX)
    assert r.status_code in (200, 202), r.text


def _bad_rows_csv(good: int, bad: int) -> bytes:
    lines = ["Name,E-Mail"]
    lines += [f"Gut {i},gut{i}@example.com" for i in range(good)]
    lines += [f"Schlecht {i},kaputt{i}@" for i in range(bad)]
    return ("\n".join(lines) + "\n").encode()


async def test_stored_row_errors_are_capped_and_counted(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
) -> None:
    app.state.settings.import_max_stored_errors = 3
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        "/api/v1/leads/import",
        content=_bad_rows_csv(2, 7),
        headers={**admin.headers, "Content-Type": "text/csv"},
    )
    body = r.json()
    assert r.status_code == 200, r.text
    assert (body["imported_count"], body["error_count"], body["errors_not_stored"]) == (2, 7, 4)
    batch_id = uuid.UUID(body["import_batch_id"])
    assert await _count(session, ImportRowError, ImportRowError.batch_id == batch_id) == 3
    detail = (await client.get(f"/api/v1/imports/{batch_id}", headers=admin.headers)).json()
    assert detail["error_count"] == 7 and len(detail["errors"]) == 3
    assert (detail["errors_stored"], detail["errors_not_stored"]) == (3, 4)
    assert detail["errors_truncated"] is True
    listed = (await client.get("/api/v1/imports", headers=admin.headers)).json()["items"][0]
    assert (listed["errors_stored"], listed["errors_not_stored"]) == (3, 4)
    r = await client.get(f"/api/v1/imports/{batch_id}/errors.csv", headers=admin.headers)
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row[0] for row in rows[1:]] == ["Schlecht 0", "Schlecht 1", "Schlecht 2"]


async def test_background_import_caps_stored_errors_across_chunks(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(prepare, "CHUNK_ROWS", 2)
    app.state.settings.import_max_stored_errors = 3
    app.state.settings.import_sync_max_rows = 4
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        "/api/v1/leads/import",
        content=_bad_rows_csv(1, 8),
        headers={**admin.headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 202, r.text
    batch_id = r.json()["import_batch_id"]
    assert await run_job(jobs, batch_id) == "completed"
    detail = (await client.get(f"/api/v1/imports/{batch_id}", headers=admin.headers)).json()
    assert (detail["error_count"], detail["errors_stored"], detail["errors_not_stored"]) == (
        8,
        3,
        5,
    )
    stored = await _count(session, ImportRowError, ImportRowError.batch_id == uuid.UUID(batch_id))
    assert stored == 3


async def test_errors_csv_streams_formula_safe_rows(
    client: httpx.AsyncClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(batches, "ERRORS_CSV_BATCH", 2)  # several batches from the database
    org = await factory.org()
    admin = await factory.member(org)
    data = (
        "Name,E-Mail,=cmd|' /C calc'!A0\n"
        "Gut,gut@example.com,a\n"
        'Böse,=HYPERLINK("http://x"),b\n'
        "@Summe,kaputt@,c\n"
        "Drei,drei@,d\n"
        "Vier,vier@,e\n"
    )
    r = await client.post(
        "/api/v1/leads/import",
        content=data.encode(),
        headers={**admin.headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 200 and r.json()["error_count"] == 4, r.text
    batch_id = r.json()["import_batch_id"]
    r = await client.get(f"/api/v1/imports/{batch_id}/errors.csv", headers=admin.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["Name", "E-Mail", "'=cmd|' /C calc'!A0", "error"]
    assert rows[1][:3] == ["Böse", '\'=HYPERLINK("http://x")', "b"]
    assert rows[1][3].startswith("row 3:")
    assert rows[2][:2] == ["'@Summe", "kaputt@"]
    assert [row[0] for row in rows[3:]] == ["Drei", "Vier"]


async def test_finished_batch_file_is_deleted_after_retention_running_one_kept(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
) -> None:
    clock.freeze(NOW)
    app.state.settings.import_sync_max_rows = 3
    app.state.settings.import_file_retention_hours = 24
    org = await factory.org()
    admin = await factory.member(org)
    ids: list[uuid.UUID] = []
    for _ in range(2):
        r = await client.post(
            "/api/v1/leads/import",
            content=_bad_rows_csv(4, 2),
            headers={**admin.headers, "Content-Type": "text/csv"},
        )
        assert r.status_code == 202, r.text
        ids.append(uuid.UUID(r.json()["import_batch_id"]))
    finished, running = ids
    assert await run_job(jobs, str(finished)) == "completed"
    # The other one was claimed by a worker that is still at it.
    assert await repository.claim_batch(session, running, NOW, timedelta(minutes=2))
    await session.commit()

    async def chunks(batch_id: uuid.UUID) -> int:
        return await _count(session, ImportFileChunk, ImportFileChunk.batch_id == batch_id)

    assert await chunks(finished) > 0 and await chunks(running) > 0
    clock.advance(timedelta(hours=23, minutes=59))
    assert await cleanup_files_job(jobs) == 0
    assert await chunks(finished) > 0

    clock.advance(timedelta(minutes=2))
    assert await cleanup_files_job(jobs) == 1
    assert await chunks(finished) == 0
    assert await chunks(running) > 0
    assert await cleanup_files_job(jobs) == 0

    # errors.csv reads the stored errors, not the file.
    viewer = await factory.member(org)
    r = await client.get(f"/api/v1/imports/{finished}/errors.csv", headers=viewer.headers)
    assert r.status_code == 200, r.text
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert [row[0] for row in rows] == ["Name", "Schlecht 0", "Schlecht 1"]
