"""POST /api/v1/leads/import, batches, errors.csv, undo, needs-action."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from openpyxl import Workbook
from sqlalchemy import func, select
from sqlalchemy import text as sql_text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.imports.jobs import run_job
from leadflow.kit.clock import clock
from leadflow.models.import_batch import ImportBatch
from leadflow.models.lead import Lead
from leadflow.worker.jobs import JobContext, RecordingQueue
from tests.fixtures.factories import Factory

SAMPLE = Path(__file__).resolve().parents[2] / "sample_data" / "import_example.csv"
NOW = datetime(2024, 11, 25, 9, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


async def _leads(session: AsyncSession, org_id: object) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Lead)
            .where(Lead.organization_id == org_id, Lead.deleted_at.is_(None))
        )
        or 0
    )


async def test_seed_sample_gives_the_documented_response(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    clock.freeze(NOW)
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        "/import/leads",
        headers={**admin.headers, "Content-Type": "text/csv"},
        content=SAMPLE.read_bytes(),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert {
        k: body[k]
        for k in (
            "total_rows",
            "imported_count",
            "needs_action_count",
            "without_last_contact_count",
            "errors",
        )
    } == {
        "total_rows": 12,
        "imported_count": 12,
        "needs_action_count": 5,
        "without_last_contact_count": 2,
        "errors": [],
    }
    assert body["import_batch_id"]
    assert await _leads(session, org.id) == 12
    lea = await session.scalar(select(Lead).where(Lead.email == "lea.kramer@example.com"))
    assert lea is not None
    assert lea.first_name == "Lea" and lea.last_name == "Kramer"
    assert lea.phone == "+4915123456789" and lea.status == "new"
    assert lea.needs_action is True and lea.next_action_description == "Angebot senden"
    # A date without an offset is the organisation's day (default zone Europe/Berlin).
    assert lea.last_contacted_at == datetime(2024, 11, 20, tzinfo=BERLIN)
    assert str(lea.import_batch_id) == body["import_batch_id"]
    timeline = (
        await client.get(
            f"/api/v1/leads/{lea.id}/timeline", headers=admin.headers, params={"kind": "imported"}
        )
    ).json()
    assert [i["kind"] for i in timeline["items"]] == ["imported"]
    assert timeline["items"][0]["data"]["import_batch_id"] == body["import_batch_id"]
    felix = await session.scalar(select(Lead).where(Lead.email == "felix.wagner@example.com"))
    assert felix is not None and felix.status == "won"
    sidebar = (
        await client.get("/leads/needs-action", headers=admin.headers, params={"limit": 8})
    ).json()
    names = [x["name"] for x in sidebar["leads"]]
    assert len(names) == 5 and "Lea Kramer" in names and "Felix Wagner" not in names
    assert set(sidebar["leads"][0]) == {
        "id",
        "name",
        "email",
        "phone",
        "status",
        "next_action_at",
        "next_action_description",
    }


async def test_dry_run_writes_nothing_and_counts_the_same(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    clock.freeze(NOW)
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        "/api/v1/leads/import?dry_run=true",
        headers={**admin.headers, "Content-Type": "text/csv"},
        content=SAMPLE.read_bytes(),
    )
    body = r.json()
    assert r.status_code == 200 and body["dry_run"] is True and body["import_batch_id"] is None
    assert body["imported_count"] == 12 and body["needs_action_count"] == 5
    assert await _leads(session, org.id) == 0
    assert await session.scalar(select(func.count()).select_from(ImportBatch)) == 0


async def test_json_bodies_and_duplicates(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await factory.lead(org, email="known@example.com", first_name="Known", company="Alt GmbH")
    rows = [
        {"Vorname": "Neu", "Nachname": "Eins", "E-Mail": "neu1@example.com"},
        {"Vorname": "Neu", "Nachname": "Doppelt", "E-Mail": "NEU1@example.com"},  # in file
        {"Vorname": "Known", "Firma": "Neu GmbH", "E-Mail": "known@example.com"},  # in DB
        {"Vorname": "Tel", "Telefon": "030 1234567"},
        {"Vorname": "Tel2", "Telefon": "+49 30 1234567"},  # same phone in file
    ]
    r = await client.post("/api/v1/leads/import", headers=admin.headers, json=rows)
    body = r.json()
    assert (body["total_rows"], body["imported_count"], body["skipped_count"]) == (5, 2, 3)
    r = await client.post(
        "/api/v1/leads/import",
        headers=admin.headers,
        json={
            "csv": "Name,E-Mail,Firma\nKnown Person,known@example.com,Neu GmbH\n",
            "on_duplicate": "update",
        },
    )
    assert r.json()["updated_count"] == 1 and r.json()["imported_count"] == 0
    known = await session.scalar(select(Lead).where(Lead.email == "known@example.com"))
    assert known is not None and known.company == "Neu GmbH"
    r = await client.post(
        "/api/v1/leads/import?on_duplicate=create",
        headers=admin.headers,
        json=[{"Name": "Known Again", "E-Mail": "known@example.com"}],
    )
    assert r.json()["imported_count"] == 1
    assert (
        await session.scalar(
            select(func.count()).select_from(Lead).where(Lead.email == "known@example.com")
        )
        == 2
    )


async def test_bad_rows_are_reported_and_do_not_stop_others(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    data = (
        "Name;E-Mail;Telefon;Letzter Kontakt;Lieblingsfarbe\n"
        "Gut Eins;gut1@example.com;;01.02.2024;blau\n"
        "Schlecht Mail;kaputt@;;;rot\n"
        "Schlecht Telefon;;12;;grün\n"
        "Schlecht Datum;datum@example.com;;31.02.2024;gelb\n"
        ";;;;nur farbe\n"
        "Gut Zwei;gut2@example.com;;2024-03-01;\n"
    )
    r = await client.post(
        "/api/v1/leads/import",
        content=data.encode(),
        headers={**admin.headers, "Content-Type": "text/csv"},
    )
    body = r.json()
    assert body["imported_count"] == 2 and body["error_count"] == 4
    assert [(e["row"], e["column"]) for e in body["errors"]] == [
        (3, "E-Mail"),
        (4, "Telefon"),
        (5, "Letzter Kontakt"),
        (6, None),
    ]
    assert body["ignored_columns"] == ["Lieblingsfarbe"]
    batch_id = body["import_batch_id"]
    r = await client.get(f"/api/v1/imports/{batch_id}/errors.csv", headers=admin.headers)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == ["Name", "E-Mail", "Telefon", "Letzter Kontakt", "Lieblingsfarbe", "error"]
    assert [row[0] for row in rows[1:]] == [
        "Schlecht Mail",
        "Schlecht Telefon",
        "Schlecht Datum",
        "",
    ]
    assert rows[1][-1].startswith("row 3:")
    detail = (await client.get(f"/api/v1/imports/{batch_id}", headers=admin.headers)).json()
    assert detail["status"] == "completed" and detail["progress"] == 1.0
    assert detail["error_count"] == 4 and len(detail["errors"]) == 4


@pytest.mark.parametrize(
    ("content", "ctype", "status", "code"),
    [
        (b"", "text/csv", 422, "invalid_file"),
        (b"Farbe;Zahl\nblau;1\n", "text/csv", 422, "invalid_file"),
        (b"Name\n", "text/csv", 422, "invalid_file"),
        (b"{not json", "application/json", 422, "invalid_file"),
        (b"[]", "application/json", 422, "invalid_file"),
        (b"<xml/>", "application/xml", 400, "unsupported_media_type"),
    ],
)
async def test_whole_file_problems_write_nothing(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    content: bytes,
    ctype: str,
    status: int,
    code: str,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        "/api/v1/leads/import", content=content, headers={**admin.headers, "Content-Type": ctype}
    )
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["code"] == code
    assert await session.scalar(select(func.count()).select_from(ImportBatch)) == 0


@pytest.mark.parametrize(
    ("how", "loc"),
    [
        ("form mapping key", ["body", "mapping", "E-Mail\\u0000"]),
        ("form mapping value", ["body", "mapping", "E-Mail"]),
        ("json status_map", ["body", "status_map", "offen"]),
        ("query default_status", ["body", "default_status"]),
        ("json date_formats", ["body", "date_formats", "Datum"]),
    ],
)
async def test_a_nul_in_an_option_is_422_and_writes_nothing(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, how: str, loc: list[str]
) -> None:
    """The upload's routes skip the request-wide NUL check (cells drop NULs): the options,
    stored on the batch, are checked themselves — on SQLite too."""
    org = await factory.org()
    admin = await factory.member(org)
    url = "/api/v1/leads/import"
    csv_text = "Name,E-Mail,Status,Datum\nLea,lea@example.com,offen,01/02/2026\n"
    if how.startswith("form"):
        mapping = {"E-Mail\x00": "email"} if how.endswith("key") else {"E-Mail": "em\x00ail"}
        r = await client.post(
            url,
            data={"mapping": json.dumps(mapping)},
            files={"file": ("leads.csv", csv_text.encode(), "text/csv")},
            headers=admin.headers,
        )
    elif how.startswith("json"):
        option = how.split()[1]
        key = "offen" if option == "status_map" else "Datum"
        r = await client.post(
            url, json={"csv": csv_text, option: {key: "w\x00on"}}, headers=admin.headers
        )
    else:
        r = await client.post(
            url,
            params={"default_status": "new\x00"},
            content=csv_text.encode(),
            headers={**admin.headers, "Content-Type": "text/csv"},
        )
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert body["detail"] == "Text may not contain the NUL character (U+0000)"
    assert body["errors"][0]["loc"] == loc
    assert await session.scalar(select(func.count()).select_from(ImportBatch)) == 0
    assert await session.scalar(select(func.count()).select_from(Lead)) == 0


async def test_too_large_is_413(app: FastAPI, client: httpx.AsyncClient, factory: Factory) -> None:
    app.state.settings.import_max_bytes = 100
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        "/api/v1/leads/import",
        content=b"Name\n" + b"x" * 200,
        headers={**admin.headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"


async def test_xlsx_upload_and_custom_fields(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await client.post(
        "/api/v1/custom-fields",
        headers=admin.headers,
        json={"key": "branche", "label": "Branche", "type": "text"},
    )
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Vorname", "Nachname", "Handy", "Branche", "Letzter Kontakt"])
    sheet.append(["Ida", "Xlsx", "0171 2345678", "IT", datetime(2024, 5, 6)])
    buf = io.BytesIO()
    book.save(buf)
    r = await client.post(
        "/api/v1/leads/import",
        headers=admin.headers,
        files={
            "file": (
                "kunden.xlsx",
                buf.getvalue(),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        },
        data={"analyze": "false"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["imported_count"] == 1
    ida = await session.scalar(select(Lead).where(Lead.first_name == "Ida"))
    assert ida is not None and ida.custom == {"branche": "IT"} and ida.phone == "+491712345678"
    assert ida.last_contacted_at == datetime(2024, 5, 6, tzinfo=BERLIN)


async def test_undo_removes_created_and_restores_updated(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await factory.lead(org, email="old@example.com", first_name="Old", company="Vorher AG")
    r = await client.post(
        "/api/v1/leads/import?on_duplicate=update",
        headers=admin.headers,
        json=[
            {"Name": "Old Person", "E-Mail": "old@example.com", "Firma": "Nachher AG"},
            {"Name": "New Person", "E-Mail": "new@example.com"},
        ],
    )
    batch_id = r.json()["import_batch_id"]
    undo = await client.post(f"/api/v1/imports/{batch_id}/undo", headers=admin.headers)
    assert undo.status_code == 200 and undo.json()["status"] == "undone"
    old = await session.scalar(select(Lead).where(Lead.email == "old@example.com"))
    assert old is not None
    await session.refresh(old)
    assert old.company == "Vorher AG" and old.first_name == "Old"
    assert (
        await session.scalar(
            select(func.count())
            .select_from(Lead)
            .where(Lead.email == "new@example.com", Lead.deleted_at.is_(None))
        )
        == 0
    )
    again = await client.post(f"/api/v1/imports/{batch_id}/undo", headers=admin.headers)
    assert again.status_code == 409
    audit = (
        await client.get(
            "/api/v1/admin/audit-logs", headers=admin.headers, params={"action": "import.undo"}
        )
    ).json()
    assert audit["total"] == 1


async def _background_import(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, *, rows: int, sync_max: int
) -> tuple[Any, Any, dict[str, Any]]:
    """An organisation, its admin and the 202 body of a CSV import too big to run inline."""
    app.state.settings.import_sync_max_rows = sync_max
    org = await factory.org()
    admin = await factory.member(org)
    lines = ["Name,E-Mail"] + [f"Person {i},p{i}@example.com" for i in range(rows)]
    r = await client.post(
        "/api/v1/leads/import",
        content="\n".join(lines).encode(),
        headers={**admin.headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 202, r.text
    return org, admin, r.json()


async def test_large_file_goes_to_worker_and_resumes(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    queue: RecordingQueue,
    jobs: JobContext,
) -> None:
    org, admin, body = await _background_import(app, client, factory, rows=25, sync_max=10)
    assert body["status_url"] == f"/api/v1/imports/{body['import_batch_id']}"
    assert [name for name, *_ in queue.items] == ["imports.run"]
    pending = (await client.get(body["status_url"], headers=admin.headers)).json()
    assert pending["status"] == "pending" and pending["processed_rows"] == 0
    assert await run_job(jobs, body["import_batch_id"]) == "completed"
    assert await run_job(jobs, body["import_batch_id"]) == "skipped"  # idempotent
    done = (await client.get(body["status_url"], headers=admin.headers)).json()
    assert (done["status"], done["total_rows"], done["imported_count"]) == ("completed", 25, 25)
    assert await _leads(session, org.id) == 25


async def test_permissions_and_tenancy(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.member(org, "counselor")
    r = await client.post(
        "/api/v1/leads/import", headers=rep.headers, json=[{"Name": "X", "E-Mail": "x@example.com"}]
    )
    assert r.status_code == 403
    r = await client.post(
        "/api/v1/leads/import",
        headers=admin.headers,
        json=[{"Name": "X", "E-Mail": "x@example.com"}],
    )
    batch_id = r.json()["import_batch_id"]
    other = await factory.member(await factory.org())
    for method, suffix in (("GET", ""), ("GET", "/errors.csv"), ("POST", "/undo")):
        r = await client.request(
            method, f"/api/v1/imports/{batch_id}{suffix}", headers=other.headers
        )
        assert r.status_code == 404, suffix
    listing = (await client.get("/api/v1/imports", headers=admin.headers)).json()
    assert listing["total"] == 1
    bad = await client.post(
        "/api/v1/leads/import?on_duplicate=merge", headers=admin.headers, json=[{"Name": "X"}]
    )
    assert bad.status_code == 422
    assert json.loads(bad.text)["code"] == "validation_error"


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_background_import_completes_when_index_maintenance_is_not_allowed(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
) -> None:
    """A role that writes leads but does not own their indexes may not flush the GIN lists."""
    org, _, body = await _background_import(app, client, factory, rows=12, sync_max=5)
    await session.execute(sql_text("CREATE ROLE leadflow_test_writer"))
    await session.execute(
        sql_text("GRANT ALL ON ALL TABLES IN SCHEMA public TO leadflow_test_writer")
    )
    await session.execute(sql_text("SET LOCAL ROLE leadflow_test_writer"))
    flush = sql_text("SELECT gin_clean_pending_list('pgx_leads_search_trgm'::regclass)")
    with pytest.raises(DBAPIError, match="must be owner"):
        async with session.begin_nested():
            await session.execute(flush)
    assert await run_job(jobs, body["import_batch_id"]) == "completed"
    await session.execute(sql_text("RESET ROLE"))
    assert await _leads(session, org.id) == 12


@pytest.mark.parametrize(
    ("zone", "local_ten"),
    [
        ("Europe/Berlin", datetime(2026, 7, 1, 8, 0, tzinfo=UTC)),
        ("America/New_York", datetime(2026, 7, 1, 14, 0, tzinfo=UTC)),
    ],
)
async def test_dates_without_offset_are_read_in_the_organisation_zone(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    zone: str,
    local_ten: datetime,
) -> None:
    org = await factory.org()
    org.settings = {**(org.settings or {}), "calendar": {"timezone": zone}}
    await session.commit()
    admin = await factory.member(org)
    data = (
        "Name,E-Mail,Letzter Kontakt\n"
        "Ohne Offset,local@example.com,2026-07-01 10:00\n"
        "Mit Offset,offset@example.com,2026-07-01T10:00:00+02:00\n"
    )
    r = await client.post(
        "/api/v1/leads/import",
        content=data.encode(),
        headers={**admin.headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 200 and r.json()["imported_count"] == 2, r.text
    stored = dict(
        (
            await session.execute(
                select(Lead.email, Lead.last_contacted_at).where(Lead.organization_id == org.id)
            )
        ).all()
    )
    assert stored["local@example.com"] == local_ten
    assert stored["offset@example.com"] == datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


async def test_dates_beyond_the_calendar_are_row_errors(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    data = (
        "Name,E-Mail,Letzter Kontakt\n"
        "Spät,late@example.com,31.12.9999 23:00-01:00\n"
        "Früh,early@example.com,01.01.0001 00:00+01:00\n"
        "Gut,good@example.com,01.07.2026\n"
    )
    r = await client.post(
        "/api/v1/leads/import",
        content=data.encode(),
        headers={**admin.headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported_count"] == 1 and body["error_count"] == 2
    assert {e["row"] for e in body["errors"]} == {2, 3}
