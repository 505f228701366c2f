"""POST /reports/export: CSV, XLSX and PDF read back; signed links; history; retention."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import httpx
import openpyxl
import pytest
from fastapi import FastAPI
from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.clock import clock, utcnow
from leadflow.models.report import ReportFileChunk
from leadflow.models.user import User
from leadflow.organizations import repository as org_repo
from leadflow.reports import files, links
from leadflow.reports.jobs import cleanup_files_job
from leadflow.worker.jobs import JobContext
from tests.fixtures.factories import Factory, Member
from tests.reports.conftest import Data
from tests.reports.test_build import FORMULA_NAME, build, template

DETAIL = {
    "fields": ["full_name", "first_name", "last_name", "score", "source"],
    "sorting": [{"field": "full_name", "direction": "asc"}],
}


async def export(
    client: httpx.AsyncClient, who: Member, report_id: str, fmt: str, status: int = 200
) -> dict[str, Any]:
    """Export a report; the answer (asserting its status)."""
    r = await client.post(
        "/api/v1/reports/export", headers=who.headers, json={"report_id": report_id, "format": fmt}
    )
    assert r.status_code == status, r.text
    out: dict[str, Any] = r.json()
    return out


async def download(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """GET a download link without any credentials."""
    return await client.get(urlsplit(url).path)


async def test_csv_is_formula_safe_and_needs_no_token(
    client: httpx.AsyncClient, data: Data
) -> None:
    report = await build(client, data.admin, DETAIL)
    out = await export(client, data.admin, report["report_id"], "csv")
    assert out["row_count"] == 5
    assert out["file_name"].endswith(".csv") and out["file_name"].startswith("test-")
    assert out["download_url"].startswith("http://127.0.0.1:8000/api/v1/reports/downloads/")
    r = await download(client, out["download_url"])
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(r.content.decode())))
    assert rows == [
        ["Name", "First name", "Last name", "Score", "Source"],
        ["'" + FORMULA_NAME, "'" + '=HYPERLINK("http://evil.example","x")', "'+1", "0", "web"],
        ["Anna Alt", "Anna", "Alt", "10", "web"],
        ["Ben Bau", "Ben", "Bau", "30", "web"],
        ["Cara Chen", "Cara", "Chen", "50", "fair"],
        ["Dora Dahl", "Dora", "Dahl", "70", "fair"],
    ]


async def test_xlsx_reads_back(client: httpx.AsyncClient, data: Data) -> None:
    report = await build(
        client, data.admin, await template(client, data.admin, "counselor_activity")
    )
    out = await export(client, data.admin, report["report_id"], "xlsx")
    r = await download(client, out["download_url"])
    assert r.status_code == 200
    book = openpyxl.load_workbook(io.BytesIO(r.content), read_only=True)
    rows = [list(row) for row in book.active.iter_rows(values_only=True)]
    assert rows == [
        ["Assignee", "Count", "Sum of Interactions", "Sum of Won", "Sum of SLA breached"],
        ["Otto Other", 2, 1, 1, 0],
        ["Rita Rep", 2, 3, 1, 1],
        ["", 1, 0, 0, 0],
    ]
    detail = await build(client, data.admin, DETAIL)
    out = await export(client, data.admin, detail["report_id"], "xlsx")
    book = openpyxl.load_workbook(io.BytesIO((await download(client, out["download_url"])).content))
    cell = book.active["A2"]
    assert cell.value == "'" + FORMULA_NAME and cell.data_type == "s"  # text, not a formula


@pytest.mark.parametrize(
    ("name", "sheet"), [("'Q1'", "Q1"), ("Report'", "Report"), ("'", "Report"), ("[Q2]", "Q2")]
)
async def test_xlsx_sheet_names_excel_accepts(
    client: httpx.AsyncClient, data: Data, name: str, sheet: str
) -> None:
    report = await build(client, data.admin, {**DETAIL, "name": name})
    out = await export(client, data.admin, report["report_id"], "xlsx")
    book = openpyxl.load_workbook(io.BytesIO((await download(client, out["download_url"])).content))
    assert book.sheetnames == [sheet]


async def test_pdf_has_title_chart_and_table(client: httpx.AsyncClient, data: Data) -> None:
    report = await build(
        client,
        data.admin,
        {**await template(client, data.admin, "pipeline_by_stage"), "name": "Pipeline März"},
    )
    out = await export(client, data.admin, report["report_id"], "pdf")
    r = await download(client, out["download_url"])
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(r.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Pipeline März" in text
    assert "Chart: Count by Stage" in text
    for phrase in ("Stage", "Avg of Score", "Qualified", "50.0", "Lost", "0.0", "4 rows"):
        assert phrase in text, phrase
    assert reader.metadata is not None and reader.metadata.title == "Pipeline März"


async def test_pdf_table_is_capped(app: FastAPI, client: httpx.AsyncClient, data: Data) -> None:
    app.state.settings.report_pdf_max_rows = 2
    report = await build(client, data.admin, DETAIL)
    out = await export(client, data.admin, report["report_id"], "pdf")
    assert out["row_count"] == 5
    reader = PdfReader(io.BytesIO((await download(client, out["download_url"])).content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Showing the first 2 of 5 rows" in text
    assert "Anna Alt" in text and "Cara Chen" not in text
    assert "Chart: Score by Name" in text


async def test_counselor_export_holds_own_leads(client: httpx.AsyncClient, data: Data) -> None:
    report = await build(client, data.rep, DETAIL)
    out = await export(client, data.rep, report["report_id"], "csv")
    rows = list(csv.reader(io.StringIO((await download(client, out["download_url"])).text)))
    assert [r[0] for r in rows[1:]] == ["Anna Alt", "Ben Bau"]


async def test_expired_and_tampered_links_are_403(
    client: httpx.AsyncClient, data: Data, factory: Factory, app: FastAPI
) -> None:
    clock.freeze(utcnow())
    admin = await factory.relogin(data.admin)
    report = await build(client, admin, DETAIL)
    out = await export(client, admin, report["report_id"], "csv")
    path = urlsplit(out["download_url"]).path
    token = path.rsplit("/", 1)[1]
    run_hex, expiry, mac = token.split(".")
    prefix = path.rsplit("/", 1)[0]
    assert int(expiry) == int((utcnow() + timedelta(hours=24)).timestamp())
    other_run = uuid.uuid4().hex
    forged = [
        f"{other_run}.{expiry}.{mac}",  # another run
        f"{run_hex}.{int(expiry) + 3600}.{mac}",  # a later expiry
        f"{run_hex}.{expiry}.{mac[:-2]}AA",  # another signature
        f"{run_hex}.{expiry}",
        "not-a-token",
        # Signed with another key.
        links.sign("another-secret-key", uuid.UUID(hex=run_hex), utcnow() + timedelta(hours=1)),
    ]
    for bad in forged:
        r = await client.get(f"{prefix}/{bad}")
        assert r.status_code == 403, bad
        assert r.json()["code"] == "invalid_download_link"
    assert (await client.get(path)).status_code == 200
    clock.advance(timedelta(hours=24))
    r = await client.get(path)
    assert r.status_code == 403 and r.json()["code"] == "download_link_expired"
    # History hands out a fresh link while the file is kept (7 days).
    hist = await client.get(
        "/api/v1/reports/history", headers=(await factory.relogin(admin)).headers
    )
    [run] = hist.json()["items"]
    assert run["download_url"] != out["download_url"]
    assert (await download(client, run["download_url"])).status_code == 200
    assert app.state.settings.report_link_hours == 24


async def test_history_and_retention(
    client: httpx.AsyncClient,
    data: Data,
    factory: Factory,
    jobs: JobContext,
    session: AsyncSession,
) -> None:
    clock.freeze(utcnow())
    admin = await factory.relogin(data.admin)
    report = await build(client, admin, DETAIL)
    csv_out = await export(client, admin, report["report_id"], "csv")
    clock.advance(timedelta(minutes=1))
    pdf_out = await export(client, admin, report["report_id"], "pdf")
    r = await client.get(
        "/api/v1/reports/history",
        headers=admin.headers,
        params={"report_id": report["report_id"], "limit": 1, "offset": 0},
    )
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == 2 and page["limit"] == 1
    [newest] = page["items"]
    assert newest["id"] == pdf_out["run_id"] and newest["format"] == "pdf"
    assert newest["status"] == "succeeded" and newest["trigger"] == "export"
    assert newest["row_count"] == 5 and newest["error"] is None
    assert isinstance(newest["duration_ms"], int) and newest["duration_ms"] >= 0
    assert newest["download_url"] is not None
    # Past the retention (7 days) the cleanup job drops the files; the runs stay.
    clock.advance(timedelta(days=7, minutes=1))
    assert await cleanup_files_job(jobs) == {"files": 2, "interrupted": 0}
    assert await session.scalar(select(func.count()).select_from(ReportFileChunk)) == 0
    admin = await factory.relogin(admin)
    items = (await client.get("/api/v1/reports/history", headers=admin.headers)).json()["items"]
    assert [(i["status"], i["download_url"]) for i in items] == [("succeeded", None)] * 2
    # A link that is still valid on its face finds no file any more.
    token = links.sign(
        jobs.settings.resolved_secret_key(),
        uuid.UUID(csv_out["run_id"]),
        utcnow() + timedelta(hours=1),
    )
    r = await client.get(f"/api/v1/reports/downloads/{token}")
    assert r.status_code == 404


async def test_sheets_needs_an_integration_and_size_is_bounded(
    app: FastAPI, client: httpx.AsyncClient, data: Data
) -> None:
    report = await build(client, data.admin, DETAIL)
    out = await export(client, data.admin, report["report_id"], "sheets", status=422)
    assert out["code"] == "integration_required"
    out = await export(client, data.admin, report["report_id"], "docx", status=422)
    assert out["code"] == "validation_error"
    app.state.settings.report_max_rows = 4
    out = await export(client, data.admin, report["report_id"], "csv", status=422)
    assert out["code"] == "report_too_large"
    assert (out["row_count"], out["max_rows"]) == (5, 4)
    hist = await client.get("/api/v1/reports/history", headers=data.admin.headers)
    assert hist.json()["total"] == 0  # a refused export leaves no run


@pytest.mark.parametrize("fmt", ["csv", "pdf"])
async def test_another_users_report_cannot_be_exported(
    client: httpx.AsyncClient, data: Data, factory: Factory, fmt: str
) -> None:
    report = await build(client, data.admin, DETAIL)
    stranger = await factory.member(await factory.org())
    for who in (data.manager, stranger):
        out = await export(client, who, report["report_id"], fmt, status=404)
        assert out["code"] == "not_found"
        r = await client.get(
            "/api/v1/reports/history",
            headers=who.headers,
            params={"report_id": report["report_id"]},
        )
        assert r.status_code == 404


async def test_links_stop_working_when_the_owner_may_no_longer_export(
    client: httpx.AsyncClient, data: Data, session: AsyncSession
) -> None:
    report = await build(client, data.rep, DETAIL)
    out = await export(client, data.rep, report["report_id"], "csv")
    assert (await download(client, out["download_url"])).status_code == 200
    user = await session.get(User, data.rep.user.id)
    assert user is not None
    user.status = "inactive"
    await session.commit()
    r = await download(client, out["download_url"])
    assert r.status_code == 403 and r.json()["code"] == "download_not_allowed"
    user.status = "active"
    role = await org_repo.get_role_by_name(session, data.org.id, "counselor")
    assert role is not None
    role.permissions = [p for p in role.permissions if p != "reports:read"]
    await session.commit()
    r = await download(client, out["download_url"])
    assert r.status_code == 403 and r.json()["code"] == "download_not_allowed"


async def test_finished_at_is_when_the_file_was_stored(
    client: httpx.AsyncClient, data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock.freeze(utcnow())
    started = utcnow()
    write_csv = files.write_csv

    async def slow(*args: Any) -> files.Written:
        clock.advance(timedelta(minutes=5))
        return await write_csv(*args)

    monkeypatch.setattr(files, "write_csv", slow)
    report = await build(client, data.admin, DETAIL)
    await export(client, data.admin, report["report_id"], "csv")
    [run] = (await client.get("/api/v1/reports/history", headers=data.admin.headers)).json()[
        "items"
    ]
    assert run["created_at"] == started.isoformat().replace("+00:00", "Z")
    assert run["finished_at"] == (started + timedelta(minutes=5)).isoformat().replace("+00:00", "Z")


async def test_pdf_reads_only_the_rows_its_table_shows(
    app: FastAPI, client: httpx.AsyncClient, data: Data, monkeypatch: pytest.MonkeyPatch
) -> None:
    app.state.settings.report_pdf_max_rows = 2
    write_pdf = files.write_pdf
    read: list[int] = []

    async def counting(columns: Any, batches: Any, **kw: Any) -> files.Written:
        rows = [row async for batch in batches for row in batch]
        read.append(len(rows))

        async def again() -> Any:
            yield rows

        return await write_pdf(columns, again(), **kw)

    monkeypatch.setattr(files, "write_pdf", counting)
    report = await build(client, data.admin, DETAIL)
    out = await export(client, data.admin, report["report_id"], "pdf")
    assert read == [2]
    assert out["row_count"] == 5  # the report's rows, not the table's
    pdf = PdfReader(io.BytesIO((await download(client, out["download_url"])).content))
    text = "".join(page.extract_text() for page in pdf.pages)
    assert "Showing the first 2 of 5 rows" in text
