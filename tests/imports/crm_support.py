"""Shared by the CRM-switch tests: the fixture files, a sales team that owner columns name, and
reading back what an import wrote."""

from __future__ import annotations

import csv
import io
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import phonenumbers
from openpyxl import Workbook
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.lead import Lead
from leadflow.models.organization import Organization
from leadflow.models.user import User
from tests.fixtures.factories import Factory, Member

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "crm"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def fixture_rows(name: str) -> list[dict[str, str]]:
    """The rows of a fixture file as the product exported them."""
    with (FIXTURES / name).open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def as_xlsx(name: str) -> bytes:
    """A CSV fixture as the XLSX workbook the product exports (first sheet, text cells)."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    with (FIXTURES / name).open(encoding="utf-8", newline="") as fh:
        for row in csv.reader(fh):
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def e164(raw: str) -> str | None:
    """A phone number as the import stores it (national numbers are German)."""
    if not raw:
        return None
    return phonenumbers.format_number(
        phonenumbers.parse(raw, "DE"), phonenumbers.PhoneNumberFormat.E164
    )


@dataclass
class Team:
    """The organisation's sales team as the fixtures' owner columns name it."""

    org: Organization
    admin: Member
    users: dict[str, User]

    def id(self, key: str | None) -> uuid.UUID | None:
        """The user id of a team member key (None stays None)."""
        return self.users[key].id if key else None


# key -> (full name, email, role, status)
TEAM = {
    "anna": ("Anna Schmidt", "anna.schmidt@vertrieb-nord.de", "counselor", "active"),
    "joerg": ("Jörg Müller", "joerg.mueller@vertrieb-nord.de", "counselor", "active"),
    "sarah": ("Sarah Connor", "sarah.connor@example.com", "manager", "active"),
    # Named in the HubSpot export, but no longer with the company: not an owner here.
    "peter": ("Peter Pan", "peter.pan@vertrieb-nord.de", "counselor", "inactive"),
}


async def sales_team(factory: Factory, session: AsyncSession, role: str = "admin") -> Team:
    """An empty organisation, its importer (`role`) and the sales team."""
    org = await factory.org()
    admin = await factory.member(org, role)
    users: dict[str, User] = {}
    for key, (name, email, user_role, status) in TEAM.items():
        user = await factory.user(org, user_role, email=email, status=status)
        user.full_name = name
        users[key] = user
    await session.commit()
    return Team(org, admin, users)


async def post_import(
    client: httpx.AsyncClient,
    member: Member,
    name: str,
    *,
    path: str = "/api/v1/leads/import",
    xlsx: bool = False,
    data: dict[str, str] | None = None,
) -> httpx.Response:
    """Upload a fixture as a form (as the web import does), without a mapping."""
    content = as_xlsx(name) if xlsx else (FIXTURES / name).read_bytes()
    filename = name.replace(".csv", ".xlsx") if xlsx else name
    ctype = XLSX if xlsx else "text/csv"
    return await client.post(
        path,
        headers=member.headers,
        files={"file": (filename, content, ctype)},
        data={"analyze": "false", **(data or {})},
    )


async def leads_of(session: AsyncSession, org: Organization) -> list[Lead]:
    """The live leads of an organisation."""
    rows = await session.scalars(
        select(Lead).where(Lead.organization_id == org.id, Lead.deleted_at.is_(None))
    )
    return list(rows)


def by_email(leads: list[Lead]) -> dict[str, Lead]:
    """Leads by email (every fixture row with an email has its own)."""
    return {lead.email: lead for lead in leads if lead.email}


def summary(body: dict[str, Any]) -> dict[str, Any]:
    """The counts of an import answer that every fixture test checks."""
    return {
        k: body[k]
        for k in ("total_rows", "imported_count", "skipped_count", "error_count", "errors")
    }
