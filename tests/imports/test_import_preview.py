"""POST /api/v1/leads/import/preview, and the import options it hands back (`mapping`,
`status_map`, `date_formats`); owners and the importer's permissions; ambiguous dates."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.imports.jobs import run_job
from leadflow.models.audit_log import AuditLog
from leadflow.models.custom_field import CustomFieldDefinition
from leadflow.models.import_batch import ImportBatch
from leadflow.models.lead import Lead
from leadflow.models.outbox import Notification
from leadflow.worker.jobs import JobContext
from tests.fixtures.factories import Factory, Member
from tests.imports.crm_support import (
    FIXTURES,
    by_email,
    e164,
    fixture_rows,
    leads_of,
    post_import,
    sales_team,
)

BERLIN = ZoneInfo("Europe/Berlin")
PREVIEW = "/api/v1/leads/import/preview"


async def _count(session: AsyncSession, model: Any, org_id: object) -> int:
    return int(
        await session.scalar(
            select(func.count()).select_from(model).where(model.organization_id == org_id)
        )
        or 0
    )


async def _nothing_written(session: AsyncSession, org_id: object) -> None:
    counts = [await _count(session, m, org_id) for m in (Lead, CustomFieldDefinition, ImportBatch)]
    assert counts == [0, 0, 0]


async def _csv(
    client: httpx.AsyncClient,
    member: Member,
    text: str,
    path: str = "/api/v1/leads/import",
    **q: str,
) -> httpx.Response:
    return await client.post(
        path,
        params={"analyze": "false", **q},
        content=text.encode(),
        headers={**member.headers, "Content-Type": "text/csv"},
    )


async def test_preview_of_a_salesforce_export_field_by_field(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    team = await sales_team(factory, session)
    r = await post_import(client, team.admin, "salesforce_leads.csv", path=PREVIEW)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["file"] == {"format": "csv", "encoding": "utf-8", "delimiter": ",", "rows": 16}
    assert p["source"] == {"product": "salesforce", "name": "Salesforce", "confidence": 1.0}
    rows = fixture_rows("salesforce_leads.csv")
    expected = {
        # column: (target, rule, date_format)
        "Id": (None, "system", None),
        "FirstName": ("first_name", "name", None),
        "LastName": ("last_name", "name", None),
        "Email": ("email", "name", None),
        "Phone": ("phone", "name", None),
        "MobilePhone": ("custom.mobile", "mobile", None),
        "Company": ("company", "name", None),
        "Title": ("custom.job_title", "name", None),
        "LeadSource": ("source", "camel_case", None),
        "Status": ("status", "name", None),
        "OwnerId": ("custom.crm_owner_id", "owner_id", None),
        "Owner": ("owner", "name", None),
        "LastActivityDate": ("last_contacted_at", "camel_case", "MM/DD/YYYY"),
    }
    assert [c["column"] for c in p["columns"]] == list(expected)
    for col in p["columns"]:
        name = col["column"]
        distinct = list(dict.fromkeys(r[name] for r in rows if r[name]))
        assert (col["target"], col["rule"], col["date_format"], col["samples"]) == (
            *expected[name],
            distinct[:3],
        ), name
    reasons = {c["column"]: c["reason"] for c in p["columns"]}
    assert reasons["LeadSource"] == "camelCase read as 'lead source'; known name for source"
    assert reasons["MobilePhone"] == (
        "camelCase read as 'mobile phone'; mobile number: kept in custom field mobile "
        "(the phone when a row has none)"
    )
    assert reasons["OwnerId"].startswith("an id of the other CRM's user names no user here")
    assert p["ignored_columns"] == ["Id"]
    assert [(s["value"], s["count"], s["stage"], s["rule"]) for s in p["statuses"]] == [
        ("Working - Contacted", 4, "contacted", "default_table"),
        ("Open - Not Contacted", 2, "new", "default_table"),
        ("Closed - Converted", 2, "won", "default_table"),
        ("Closed - Not Converted", 2, "lost", "default_table"),
        ("Qualified", 2, "qualified", "pipeline"),
        ("Unqualified", 2, "lost", "default_table"),
        ("Nurturing", 2, "contacted", "default_table"),
    ]
    users = team.users
    assert [
        (o["value"], o["count"], o["found"], o["assigned"], o["user_id"], o["user_name"], o["code"])
        for o in p["owners"]
    ] == [
        ("Anna Schmidt", 4, True, True, str(users["anna"].id), "Anna Schmidt", None),
        ("Jörg Müller", 4, True, True, str(users["joerg"].id), "Jörg Müller", None),
        ("Sarah Connor", 2, True, True, str(users["sarah"].id), "Sarah Connor", None),
        ("sarah connor", 2, True, True, str(users["sarah"].id), "Sarah Connor", None),
        ("Unknown Rep", 2, False, False, None, None, "owner_not_found"),
    ]
    assert p["custom_fields_to_create"] == [
        {"key": "mobile", "label": "Mobile"},
        {"key": "job_title", "label": "Job title"},
        {"key": "crm_owner_id", "label": "Owner id (previous CRM)"},
    ]
    assert p["mapping"] == {name: target or "ignore" for name, (target, *_) in expected.items()}
    assert p["status_map"] == {s["value"]: s["stage"] for s in p["statuses"]}
    assert p["date_formats"] == {"LastActivityDate": "MM/DD/YYYY"}
    assert p["problems"] == []
    await _nothing_written(session, team.org.id)
    assert await _count(session, AuditLog, team.org.id) == 0


async def test_the_edited_preview_is_what_the_import_does(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    team = await sales_team(factory, session)
    p = (await post_import(client, team.admin, "salesforce_leads.csv", path=PREVIEW)).json()
    mapping = p["mapping"] | {"Title": "ignore", "OwnerId": "ignore", "MobilePhone": "phone"}
    mapping["Phone"] = "custom.phone_2"
    status_map = p["status_map"] | {"Nurturing": "new", "Closed - Not Converted": ""}
    r = await post_import(
        client,
        team.admin,
        "salesforce_leads.csv",
        data={
            "mapping": json.dumps(mapping),
            "status_map": json.dumps(status_map),
        },
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["imported_count"], body["errors"]) == (16, [])
    assert body["ignored_columns"] == ["Id", "Title", "OwnerId"]
    leads = by_email(await leads_of(session, team.org))
    for row in fixture_rows("salesforce_leads.csv"):
        lead = leads[row["Email"]]
        stage = {"Nurturing": "new", "Closed - Not Converted": "new"}.get(
            row["Status"], p["status_map"][row["Status"]]
        )
        assert lead.status == stage, row["Status"]  # "" leaves it to the first stage
        assert (lead.phone, lead.custom) == (
            e164(row["MobilePhone"]),
            {"phone_2": e164(row["Phone"])},
        )
    fields = (await client.get("/api/v1/custom-fields", headers=team.admin.headers)).json()
    assert [f["key"] for f in fields] == ["phone_2"]


@pytest.mark.parametrize(
    ("name", "product", "ignored"),
    [
        ("hubspot_contacts.csv", "hubspot", ["Create Date"]),
        ("salesforce_leads.csv", "salesforce", ["Id"]),
        ("pipedrive_people.csv", "pipedrive", []),
        ("zoho_leads.csv", "zoho", []),
        ("odoo_crm.csv", "odoo", []),
        ("linkedin_sales_navigator.csv", "linkedin_sales_navigator", []),
        ("leadflow_export.csv", "leadflow", ["id", "created_at"]),
    ],
)
async def test_preview_names_the_product_of_every_fixture(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    name: str,
    product: str,
    ignored: list[str],
) -> None:
    team = await sales_team(factory, session)
    xlsx = product == "odoo"  # Odoo exports workbooks
    p = (await post_import(client, team.admin, name, path=PREVIEW, xlsx=xlsx)).json()
    rows = len(fixture_rows(name))
    assert p["file"] == (
        {"format": "xlsx", "encoding": None, "delimiter": None, "rows": rows}
        if xlsx
        else {"format": "csv", "encoding": "utf-8", "delimiter": ",", "rows": rows}
    )
    assert (p["source"]["product"], p["source"]["confidence"]) == (product, 1.0)
    assert [c["column"] for c in p["columns"] if c["target"] is None] == ignored
    assert p["problems"] == []


async def test_preview_without_a_known_product_or_identity_column(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await _csv(client, admin, "Spalte A;Spalte B\nx;y\n", PREVIEW)
    assert r.status_code == 200, r.text
    p = r.json()
    assert p["file"] == {"format": "csv", "encoding": "utf-8", "delimiter": ";", "rows": 1}
    assert p["source"] == {"product": None, "name": None, "confidence": 0.0}
    assert [(x["code"], x["column"]) for x in p["problems"]] == [("invalid_file", None)]
    assert p["mapping"] == {"Spalte A": "ignore", "Spalte B": "ignore"}
    r = await _csv(client, admin, "", PREVIEW)
    assert (r.status_code, r.json()["code"]) == (422, "invalid_file")
    counselor = await factory.member(org, "counselor")
    r = await _csv(client, counselor, "Name\nx\n", PREVIEW)
    assert (r.status_code, r.json()["code"]) == (403, "missing_permission")
    await _nothing_written(session, org.id)


AMBIGUOUS = (
    "Name,Email,Last Activity Date\n"
    "Lea Kramer,lea@example.com,03/04/2026\n"
    "Tom Baker,tom@example.com,11/02/2026 9:30 AM\n"
    "Ida Roth,ida@example.com,01/12/2026\n"
    "Ute Lang,ute@example.com,05/05/2026\n"
)


async def test_a_date_column_that_fits_both_orders_is_reported_not_guessed(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    p = (await _csv(client, admin, AMBIGUOUS, PREVIEW)).json()
    assert p["problems"] == [
        {
            "code": "ambiguous_dates",
            "column": "Last Activity Date",
            "examples": ["03/04/2026", "11/02/2026 9:30 AM", "01/12/2026"],
            "message": "every value reads as day-first and as month-first: give date_formats, "
            'e.g. {"Last Activity Date": "MM/DD/YYYY"}',
        }
    ]
    assert p["date_formats"] == {}
    r = await _csv(client, admin, AMBIGUOUS)
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["code"] == "ambiguous_dates"
    assert problem["columns"] == [
        {
            "column": "Last Activity Date",
            "examples": ["03/04/2026", "11/02/2026 9:30 AM", "01/12/2026"],
            "mixed": False,
        }
    ]
    # Also a file too large for the request is refused before it is accepted.
    app.state.settings.import_sync_max_rows = 2
    r = await _csv(client, admin, AMBIGUOUS)
    assert (r.status_code, r.json()["code"]) == (422, "ambiguous_dates")
    await _nothing_written(session, org.id)
    app.state.settings.import_sync_max_rows = 5000

    for order, stored in (
        ("MM/DD/YYYY", ["2026-03-04", "2026-11-02 09:30", "2026-01-12", "2026-05-05"]),
        ("DD/MM/YYYY", ["2026-04-03", "2026-02-11 09:30", "2026-12-01", "2026-05-05"]),
    ):
        other = await factory.member(await factory.org())
        r = await _csv(
            client,
            other,
            AMBIGUOUS,
            date_formats=f'{{"Last Activity Date": "{order}"}}',
        )
        assert r.status_code == 200, r.text
        assert (r.json()["imported_count"], r.json()["errors"]) == (4, [])
        got = (
            await session.execute(
                select(Lead.email, Lead.last_contacted_at).where(
                    Lead.organization_id == other.user.organization_id
                )
            )
        ).all()
        by = {e: t for e, t in got}
        want = [datetime.fromisoformat(s).replace(tzinfo=BERLIN).astimezone(UTC) for s in stored]
        emails = ("lea@example.com", "tom@example.com", "ida@example.com", "ute@example.com")
        assert [by[e] for e in emails] == want, order


async def test_mixed_orders_in_one_column_are_reported(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    text = "Name,Letzter Kontakt\nA B,13/01/2026\nC D,01/13/2026\n"
    r = await _csv(client, admin, text)
    assert (r.status_code, r.json()["code"]) == (422, "ambiguous_dates")
    assert r.json()["columns"] == [{"column": "Letzter Kontakt", "examples": [], "mixed": True}]
    p = (await _csv(client, admin, text, PREVIEW)).json()
    assert [(x["code"], x["column"]) for x in p["problems"]] == [
        ("ambiguous_dates", "Letzter Kontakt")
    ]
    assert p["problems"][0]["message"].startswith("the values mix day-first and month-first")
    await _nothing_written(session, org.id)


async def test_an_importer_without_leads_assign_assigns_only_themselves(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    team = await sales_team(factory, session)
    r = await client.post(
        "/api/v1/admin/roles",
        headers=team.admin.headers,
        json={
            "name": "importer",
            "permissions": ["leads:read", "leads:write", "imports:write"],
            "row_scope": "own",
        },
    )
    assert r.status_code == 201, r.text
    importer = await factory.member(team.org, "importer")
    anna = team.users["anna"]
    text = (
        "Name,Email,Owner\n"
        f"Lea Kramer,lea@example.com,{importer.user.email.upper()}\n"
        f"Tom Baker,tom@example.com,{anna.email}\n"
        "Ida Roth,ida@example.com,Nobody Here\n"
    )
    p = (await _csv(client, importer, text, PREVIEW)).json()
    # Without users:read the preview says whether an owner was found, not who it is.
    assert [
        (o["value"], o["found"], o["assigned"], o["code"], o["user_id"], o["user_name"])
        for o in p["owners"]
    ] == [
        (importer.user.email.upper(), True, True, None, None, None),
        (anna.email, True, False, "owner_not_allowed", None, None),
        ("Nobody Here", False, False, "owner_not_found", None, None),
    ]
    r = await _csv(client, importer, text)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["imported_count"] == 3
    assert [(w["row"], w["value"], w["code"]) for w in body["warnings"]] == [
        (3, anna.email, "owner_not_allowed"),
        (4, "Nobody Here", "owner_not_found"),
    ]
    assignees = {lead.email: lead.assignee_id for lead in await leads_of(session, team.org)}
    assert assignees == {
        "lea@example.com": importer.user.id,
        "tom@example.com": None,
        "ida@example.com": None,
    }
    # Nor through assignee_id: giving leads to others is leads:assign.
    r = await _csv(client, importer, "Name,Email\nX Y,x@example.com\n", assignee_id=str(anna.id))
    assert (r.status_code, r.json()["code"]) == (403, "missing_permission")
    r = await _csv(
        client, importer, "Name,Email\nX Y,x@example.com\n", assignee_id=str(importer.user.id)
    )
    assert r.status_code == 200, r.text
    assert len(await leads_of(session, team.org)) == 4


async def test_owners_hear_of_their_imported_leads_once(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    team = await sales_team(factory, session)
    r = await post_import(client, team.admin, "zoho_leads.csv")
    assert r.status_code == 200, r.text
    rows = fixture_rows("zoho_leads.csv")
    notes = (
        await session.scalars(
            select(Notification).where(
                Notification.organization_id == team.org.id, Notification.kind == "import_assigned"
            )
        )
    ).all()
    owners = {team.users[k].email: team.users[k].id for k in ("anna", "joerg", "sarah")}
    expected: dict[Any, int] = {}
    for row in rows:
        uid = owners.get(row["Lead Owner"].lower())
        if uid:
            expected[uid] = expected.get(uid, 0) + 1
    assert {n.user_id: n.data["count"] for n in notes} == expected


async def test_background_import_assigns_owners_and_keeps_the_date_order(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
) -> None:
    team = await sales_team(factory, session)
    app.state.settings.import_sync_max_rows = 5
    r = await post_import(client, team.admin, "salesforce_leads.csv")
    assert r.status_code == 202, r.text
    batch_id = r.json()["import_batch_id"]
    batch = (await client.get(f"/api/v1/imports/{batch_id}", headers=team.admin.headers)).json()
    assert batch["options"]["date_formats"] == {"LastActivityDate": "MM/DD/YYYY"}
    assert await run_job(jobs, batch_id) == "completed"
    leads = by_email(await leads_of(session, team.org))
    assert len(leads) == 16
    sarah = team.users["sarah"].id
    first = fixture_rows("salesforce_leads.csv")[0]
    lead = leads[first["Email"]]
    assert (lead.assignee_id, lead.last_contacted_at) == (
        sarah,
        datetime(2025, 1, 13, tzinfo=BERLIN).astimezone(UTC),
    )


async def test_a_status_the_pipeline_lacks_goes_to_the_nearest_stage_with_a_warning(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    stages = (await client.get("/api/v1/pipeline/stages", headers=admin.headers)).json()
    proposal = next(s for s in stages if s["key"] == "proposal")
    r = await client.delete(f"/api/v1/pipeline/stages/{proposal['id']}", headers=admin.headers)
    assert r.status_code == 204, r.text
    text = (
        "Name,Email,Stage\n"
        "A B,a@example.com,Opportunity\n"
        "C D,c@example.com,Negotiation\n"
        "E F,e@example.com,Closed Won\n"
        "G H,g@example.com,Opportunity\n"
    )
    r = await _csv(client, admin, text)
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(w["row"], w["value"], w["code"]) for w in body["warnings"]] == [
        (None, "Opportunity", "stage_fallback"),
        (None, "Negotiation", "stage_fallback"),
    ]
    assert body["warnings"][0]["message"] == (
        "status 'Opportunity': default table: proposal, which your pipeline lacks; "
        "nearest stage qualified"
    )
    stages_of = {lead.email: lead.status for lead in await leads_of(session, org)}
    assert stages_of == {
        "a@example.com": "qualified",
        "c@example.com": "qualified",
        "e@example.com": "won",
        "g@example.com": "qualified",
    }


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"mapping": '{"Name": "deleted_at"}'}, "mapping"),
        ({"mapping": '{"Name": "custom.nope"}'}, "mapping"),
        ({"mapping": '{"Name": "assignee_id"}'}, "mapping"),
        ({"status_map": '{"Offen": "nirgendwo"}'}, "status_map"),
        ({"status_map": '["new"]'}, "status_map"),
        ({"date_formats": '{"Letzter Kontakt": "YYYY/DD/MM"}'}, "date_formats"),
        ({"date_formats": "kein json"}, "date_formats"),
    ],
)
async def test_bad_options_are_rejected_and_nothing_is_written(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    params: dict[str, str],
    field: str,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    for path in ("/api/v1/leads/import", PREVIEW):
        r = await _csv(client, admin, "Name,Email\nA B,a@example.com\n", path, **params)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "validation_error"
        assert r.json()["errors"][0]["loc"] == ["body", field]
    await _nothing_written(session, org.id)


async def test_further_email_phone_and_mobile_columns_fill_custom_fields(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    text = (
        "Name;E-Mail;Email 2;Person - Email - Home;Telefon;Phone 2;Handy\n"
        "Lea Kramer;lea@example.com;Lea.K@Example.org;lea@home.example;030 1234567;"
        "+44 20 7946 0958;0151 23456789\n"
        "Tom Baker;tom@example.com;;;;;0160 9876543\n"
    )
    p = (await _csv(client, admin, text, PREVIEW)).json()
    assert [(c["column"], c["target"], c["rule"]) for c in p["columns"]] == [
        ("Name", "name", "name"),
        ("E-Mail", "email", "name"),
        ("Email 2", "custom.email_2", "secondary"),
        ("Person - Email - Home", "custom.email_3", "secondary"),
        ("Telefon", "phone", "name"),
        ("Phone 2", "custom.phone_2", "secondary"),
        ("Handy", "custom.mobile", "mobile"),
    ]
    r = await _csv(client, admin, text)
    assert r.status_code == 200, r.text
    leads = by_email(await leads_of(session, org))
    lea, tom = leads["lea@example.com"], leads["tom@example.com"]
    assert (lea.phone, lea.custom) == (
        "+49301234567",
        {
            "email_2": "lea.k@example.org",
            "email_3": "lea@home.example",
            "phone_2": "+442079460958",
            "mobile": "+4915123456789",
        },
    )
    assert (tom.phone, tom.custom) == ("+491609876543", {})  # the mobile is the phone
    fields = (await client.get("/api/v1/custom-fields", headers=admin.headers)).json()
    assert sorted((f["key"], f["label"]) for f in fields) == [
        ("email_2", "Email 2"),
        ("email_3", "Email 3"),
        ("mobile", "Mobile"),
        ("phone_2", "Phone 2"),
    ]
    audit = (
        await client.get(
            "/api/v1/admin/audit-logs",
            headers=admin.headers,
            params={"action": "custom_field.create"},
        )
    ).json()
    assert audit["total"] == 4
    # A second file reuses the fields.
    r = await _csv(client, admin, "Name,Mobile,Phone\nIda Roth,0171 1111111,030 7654321\n")
    assert r.status_code == 200, r.text
    assert len((await client.get("/api/v1/custom-fields", headers=admin.headers)).json()) == 4


async def test_every_fixture_file_exists() -> None:
    names = sorted(p.name for p in FIXTURES.iterdir())
    assert names == [
        "hubspot_contacts.csv",
        "leadflow_export.csv",
        "linkedin_sales_navigator.csv",
        "odoo_crm.csv",
        "pipedrive_people.csv",
        "salesforce_leads.csv",
        "zoho_leads.csv",
    ]
    assert all(10 <= len(fixture_rows(n)) <= 50 for n in names)


async def test_an_object_in_a_date_column_of_a_json_file_is_a_row_error_not_a_crash(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    """A JSON file may hold an object or a list where the header names a date."""
    org = await factory.org()
    admin = await factory.member(org)
    rows = [
        {"Name": "Lea Kramer", "E-Mail": "lea@example.com", "Last contacted": "13/02/2026"},
        {"Name": "Jonas Weber", "E-Mail": "jonas@example.com", "Last contacted": {"a": [1]}},
        {"Name": "Mia Fischer", "E-Mail": "mia@example.com", "Last contacted": [["x"]]},
    ]
    body = json.dumps(rows).encode()
    headers = {**admin.headers, "Content-Type": "application/json"}
    preview = await client.post(PREVIEW, content=body, headers=headers)
    assert preview.status_code == 200, preview.text
    r = await client.post("/api/v1/leads/import", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert (r.json()["imported_count"], r.json()["error_count"]) == (1, 2)
    assert await _count(session, Lead, org.id) == 1
