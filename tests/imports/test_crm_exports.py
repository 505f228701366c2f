"""A team switching CRMs uploads the file its old CRM gave it, with no mapping: every lead,
owner and stage arrives (one fixture per product, each into an empty organisation)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from tests.fixtures.factories import Factory
from tests.imports.crm_support import (
    by_email,
    e164,
    fixture_rows,
    leads_of,
    post_import,
    sales_team,
    summary,
)

BERLIN = ZoneInfo("Europe/Berlin")


def _ok(n: int) -> dict[str, object]:
    return {
        "total_rows": n,
        "imported_count": n,
        "skipped_count": 0,
        "error_count": 0,
        "errors": [],
    }


def _local(text: str, fmt: str) -> datetime:
    """A wall-clock time of the organisation (Berlin) in UTC, as the import stores it."""
    return datetime.strptime(text, fmt).replace(tzinfo=BERLIN).astimezone(UTC)


def _warnings(body: dict[str, object]) -> list[tuple[object, ...]]:
    items = body["warnings"]
    assert isinstance(items, list)
    return [(w["row"], w["column"], w["value"], w["code"]) for w in items]


# Lifecycle stage and lead status of each HubSpot row → stage: a closing stage wins, else the
# one further along.
HUBSPOT_STAGES = {
    ("Lead", "New"): "new",
    ("Lead", "Open"): "new",
    ("Lead", ""): "new",
    ("Subscriber", ""): "new",
    ("Other", "New"): "new",
    ("Lead", "Attempted to Contact"): "contacted",
    ("Lead", "Connected"): "contacted",
    ("Lead", "In Progress"): "contacted",
    ("Lead", "Bad Timing"): "contacted",
    ("Marketing Qualified Lead", "Open"): "qualified",
    ("Marketing Qualified Lead", "Attempted to Contact"): "qualified",
    ("Sales Qualified Lead", "Connected"): "qualified",
    ("Opportunity", "Open Deal"): "proposal",
    ("Opportunity", "In Progress"): "proposal",
    ("Customer", "Connected"): "won",
    ("Customer", ""): "won",
    ("Evangelist", ""): "won",
    ("Lead", "Unqualified"): "lost",
    ("Sales Qualified Lead", "Unqualified"): "lost",
}
NAMED_OWNERS = {
    "Anna Schmidt": "anna",
    "anna schmidt": "anna",
    "Sarah Connor": "sarah",
    "sarah connor": "sarah",
    "SARAH CONNOR": "sarah",
    "Jörg Müller": "joerg",
    "Jorg Muller": "joerg",
    "": None,
}


async def test_hubspot_contacts(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    team = await sales_team(factory, session)
    r = await post_import(client, team.admin, "hubspot_contacts.csv")
    assert r.status_code == 200, r.text
    body = r.json()
    assert summary(body) == _ok(20)
    assert body["ignored_columns"] == ["Create Date"]  # a new lead here gets its own
    rows = fixture_rows("hubspot_contacts.csv")
    # "Peter Pan" left the company (inactive): the row is imported, unassigned, with a warning.
    assert _warnings(body) == [
        (n, "Contact owner", "Peter Pan", "owner_not_found")
        for n, row in enumerate(rows, 2)
        if row["Contact owner"] == "Peter Pan"
    ]
    owners = NAMED_OWNERS | {"Peter Pan": None}
    leads = by_email(await leads_of(session, team.org))
    assert len(leads) == 20
    for row in rows:
        lead = leads[row["Email"]]
        phone, mobile = e164(row["Phone Number"]), e164(row["Mobile Phone Number"])
        last = row["Last Activity Date"]
        assert {
            "first_name": lead.first_name,
            "last_name": lead.last_name,
            "company": lead.company,
            "status": lead.status,
            "assignee_id": lead.assignee_id,
            "phone": lead.phone,
            "custom": lead.custom,
            "last_contacted_at": lead.last_contacted_at,
        } == {
            "first_name": row["First Name"],
            "last_name": row["Last Name"],
            "company": row["Company Name"],
            "status": HUBSPOT_STAGES[(row["Lifecycle Stage"], row["Lead Status"])],
            "assignee_id": team.id(owners[row["Contact owner"]]),
            # Without a phone number the mobile number is the phone.
            "phone": phone or mobile,
            "custom": {"mobile": mobile} if phone and mobile else {},
            "last_contacted_at": _local(last, "%Y-%m-%d %H:%M") if last else None,
        }, row["Email"]
    fields = (await client.get("/api/v1/custom-fields", headers=team.admin.headers)).json()
    assert [(f["key"], f["label"], f["type"]) for f in fields] == [("mobile", "Mobile", "text")]


SALESFORCE_STAGES = {
    "Open - Not Contacted": "new",
    "Working - Contacted": "contacted",
    "Nurturing": "contacted",
    "Qualified": "qualified",
    "Closed - Converted": "won",
    "Closed - Not Converted": "lost",
    "Unqualified": "lost",
}


async def test_salesforce_leads(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    team = await sales_team(factory, session)
    r = await post_import(client, team.admin, "salesforce_leads.csv")
    assert r.status_code == 200, r.text
    body = r.json()
    assert summary(body) == _ok(16)
    assert body["ignored_columns"] == ["Id"]
    rows = fixture_rows("salesforce_leads.csv")
    # OwnerId names no user here: kept (custom field), said once for the file.
    assert _warnings(body) == [(None, "OwnerId", None, "owner_id_column")] + [
        (n, "Owner", "Unknown Rep", "owner_not_found")
        for n, row in enumerate(rows, 2)
        if row["Owner"] == "Unknown Rep"
    ]
    owners = NAMED_OWNERS | {"Unknown Rep": None}
    leads = by_email(await leads_of(session, team.org))
    assert len(leads) == 16
    for row in rows:
        lead = leads[row["Email"]]
        custom = {"crm_owner_id": row["OwnerId"], "job_title": row["Title"]}
        if row["MobilePhone"]:
            custom["mobile"] = e164(row["MobilePhone"]) or ""
        last = row["LastActivityDate"]
        assert {
            "first_name": lead.first_name,
            "last_name": lead.last_name,
            "company": lead.company,
            "phone": lead.phone,
            "source": lead.source,
            "status": lead.status,
            "assignee_id": lead.assignee_id,
            "custom": lead.custom,
            "last_contacted_at": lead.last_contacted_at,
        } == {
            "first_name": row["FirstName"],
            "last_name": row["LastName"],
            "company": row["Company"],
            "phone": e164(row["Phone"]),
            "source": row["LeadSource"],
            "status": SALESFORCE_STAGES[row["Status"]],
            "assignee_id": team.id(owners[row["Owner"]]),
            "custom": custom,
            # US dates: 01/13/2025 is the 13th of January (a value above 12 decided the column).
            "last_contacted_at": _local(last, "%m/%d/%Y") if last else None,
        }, row["Email"]
    fields = (await client.get("/api/v1/custom-fields", headers=team.admin.headers)).json()
    assert sorted(f["key"] for f in fields) == ["crm_owner_id", "job_title", "mobile"]


async def test_pipedrive_people(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    team = await sales_team(factory, session)
    r = await post_import(client, team.admin, "pipedrive_people.csv")
    assert r.status_code == 200, r.text
    body = r.json()
    assert summary(body) == _ok(12)
    assert (body["ignored_columns"], body["warnings"]) == ([], [])
    leads = by_email(await leads_of(session, team.org))
    for row in fixture_rows("pipedrive_people.csv"):
        lead = leads[row["Person - Email"]]
        first, last = row["Person - Name"].split(" ", 1)
        assert {
            "name": (lead.first_name, lead.last_name),
            "phone": lead.phone,
            "company": lead.company,
            "tags": lead.tags,
            "notes": lead.notes,
            "status": lead.status,
            "assignee_id": lead.assignee_id,
        } == {
            "name": (first, last),
            "phone": e164(row["Person - Phone"]),
            "company": row["Organization - Name"],
            "tags": [row["Person - Label"]] if row["Person - Label"] else [],
            "notes": row["Person - Note"] or None,
            "status": "new",  # a person export has no stage: the pipeline's first
            # Full names match case- and accent-insensitively ("Jorg Muller" is Jörg Müller).
            "assignee_id": team.id(NAMED_OWNERS[row["Person - Owner"]]),
        }, row["Person - Email"]


ZOHO_STAGES = {
    "Not Contacted": "new",
    "Attempted to Contact": "contacted",
    "Contacted": "contacted",
    "Contact in Future": "contacted",
    "Pre-Qualified": "qualified",
    "Not Qualified": "lost",
    "Junk Lead": "lost",
    "Lost Lead": "lost",
}


async def test_zoho_leads(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    team = await sales_team(factory, session)
    r = await post_import(client, team.admin, "zoho_leads.csv")
    assert r.status_code == 200, r.text
    body = r.json()
    assert summary(body) == _ok(16)
    assert body["ignored_columns"] == []
    rows = fixture_rows("zoho_leads.csv")
    assert _warnings(body) == [
        (n, "Lead Owner", row["Lead Owner"], "owner_not_found")
        for n, row in enumerate(rows, 2)
        if row["Lead Owner"] == "nobody@elsewhere.example"
    ]
    # Owner emails match case-insensitively.
    owners = {team.users[k].email: k for k in ("anna", "joerg", "sarah")}
    leads = by_email(await leads_of(session, team.org))
    for row in rows:
        lead = leads[row["Email"]]
        mobile = e164(row["Mobile"])
        assert {
            "name": (lead.first_name, lead.last_name),
            "phone": lead.phone,
            "company": lead.company,
            "source": lead.source,
            "status": lead.status,
            "assignee_id": lead.assignee_id,
            "custom": lead.custom,
        } == {
            "name": (row["First Name"], row["Last Name"]),
            "phone": e164(row["Phone"]),
            "company": row["Company"],
            "source": row["Lead Source"],
            "status": ZOHO_STAGES[row["Lead Status"]],
            "assignee_id": team.id(owners.get(row["Lead Owner"].lower())),
            "custom": {"mobile": mobile} if mobile else {},
        }, row["Email"]


ODOO_STAGES = {"Neu": "new", "Qualifiziert": "qualified", "Angebot": "proposal", "Gewonnen": "won"}


async def test_odoo_crm_xlsx(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    team = await sales_team(factory, session)
    r = await post_import(client, team.admin, "odoo_crm.csv", xlsx=True)
    assert r.status_code == 200, r.text
    body = r.json()
    assert summary(body) == _ok(12)
    assert (body["ignored_columns"], body["warnings"]) == ([], [])
    leads = by_email(await leads_of(session, team.org))
    for row in fixture_rows("odoo_crm.csv"):
        lead = leads[row["Email"]]
        first, last = row["Contact Name"].split(" ", 1)
        mobile = e164(row["Mobile"])
        assert {
            "name": (lead.first_name, lead.last_name),
            "phone": lead.phone,
            "company": lead.company,
            "tags": lead.tags,
            "status": lead.status,
            "assignee_id": lead.assignee_id,
            "custom": lead.custom,
        } == {
            "name": (first, last),
            "phone": e164(row["Phone"]),
            "company": row["Company Name"],
            "tags": [t for t in row["Tags"].split(",") if t],
            "status": ODOO_STAGES[row["Stage"]],
            "assignee_id": team.id(NAMED_OWNERS[row["Salesperson"]]),
            "custom": {"mobile": mobile} if mobile else {},
        }, row["Email"]


async def test_linkedin_sales_navigator(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    team = await sales_team(factory, session)
    r = await post_import(client, team.admin, "linkedin_sales_navigator.csv")
    assert r.status_code == 200, r.text
    body = r.json()
    assert summary(body) == _ok(12)
    assert (body["ignored_columns"], body["warnings"]) == ([], [])
    # Sales Navigator often has no email: such a lead is known by its name.
    leads = {(lead.first_name, lead.last_name): lead for lead in await leads_of(session, team.org)}
    for row in fixture_rows("linkedin_sales_navigator.csv"):
        lead = leads[(row["First Name"], row["Last Name"])]
        assert {
            "email": lead.email,
            "company": lead.company,
            "custom": lead.custom,
            "status": lead.status,
            "assignee_id": lead.assignee_id,
        } == {
            "email": row["Primary Email"] or None,
            "company": row["Company"],
            "custom": {"job_title": row["Title"]},
            "status": "new",
            "assignee_id": None,
        }


async def test_our_own_export(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    team = await sales_team(factory, session)
    r = await post_import(client, team.admin, "leadflow_export.csv")
    assert r.status_code == 200, r.text
    body = r.json()
    assert summary(body) == _ok(10)
    assert (body["ignored_columns"], body["warnings"]) == (["id", "created_at"], [])
    leads = by_email(await leads_of(session, team.org))
    for row in fixture_rows("leadflow_export.csv"):
        lead = leads[row["email"]]
        last = row["last_contacted_at"]
        assert {
            "status": lead.status,
            "name": (lead.first_name, lead.last_name),
            "phone": lead.phone,
            "tags": lead.tags,
            "source": lead.source,
            "utm": (lead.utm_source, lead.utm_medium, lead.utm_campaign),
            "last_contacted_at": lead.last_contacted_at,
        } == {
            "status": row["status"],
            "name": (row["first_name"], row["last_name"]),
            "phone": row["phone"],
            "tags": [t for t in row["tags"].split(";") if t],
            "source": row["source"] or None,
            # The export's formula guard (`'-winter`) is removed on the way back in.
            "utm": tuple(
                row[k].removeprefix("'") or None
                for k in ("utm_source", "utm_medium", "utm_campaign")
            ),
            "last_contacted_at": datetime.fromisoformat(last) if last else None,
        }, row["email"]
