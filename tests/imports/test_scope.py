"""Imports stay inside the importer's row scope: matching, updates, batches, undo."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db.engine import Database
from leadflow.imports.jobs import run_job
from leadflow.models.audit_log import AuditLog
from leadflow.models.lead import Lead
from leadflow.models.lead_history import LeadStatusChange
from leadflow.models.organization import Organization
from leadflow.models.user import User
from leadflow.organizations import repository as org_repo
from leadflow.worker.jobs import JobContext
from tests.fixtures.factories import Factory, Member
from tests.fixtures.sql import sent_statements

UPDATE = "/api/v1/leads/import?on_duplicate=update&analyze=false"


async def _grant_import(session: AsyncSession, org: Organization, role: str) -> None:
    """Let a role import (counselors cannot by default)."""
    row = await org_repo.get_role_by_name(session, org.id, role)
    assert row is not None
    row.permissions = [*row.permissions, "imports:write"]
    await session.commit()


async def _count(session: AsyncSession, model: Any, *conds: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*conds)) or 0)


async def _import(
    client: httpx.AsyncClient, who: Member, url: str, rows: list[dict[str, str]]
) -> Any:
    r = await client.post(url, headers=who.headers, json=rows)
    assert r.status_code == 200, r.text
    return r.json()


async def test_manager_import_never_touches_a_lead_outside_the_team(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    team_a, team_b = await factory.team(org), await factory.team(org)
    manager = await factory.member(org, "manager", team=team_a)
    mate = await factory.user(org, "counselor", team=team_a)
    stranger = await factory.user(org, "counselor", team=team_b)
    foreign = await factory.lead(
        org, email="foreign@example.com", company="Geheim AG", assignee_id=stranger.id
    )
    mine = await factory.lead(
        org, email="mine@example.com", company="Alt GmbH", assignee_id=mate.id, status="new"
    )
    assert (
        await client.get(f"/api/v1/leads/{foreign.id}", headers=manager.headers)
    ).status_code == 404
    rows = [
        {"Name": "Fremd Person", "E-Mail": "FOREIGN@example.com", "Firma": "Neu AG"},
        {
            "Name": "Mein Kontakt",
            "E-Mail": "mine@example.com",
            "Firma": "Neu GmbH",
            "Status": "contacted",
        },
    ]
    body = await _import(client, manager, UPDATE, rows)
    assert (body["updated_count"], body["imported_count"], body["error_count"]) == (1, 0, 1)
    [error] = body["errors"]
    assert error["row"] == 2 and error["code"] == "duplicate_out_of_scope"
    assert error["value"] == "foreign@example.com"
    # Nothing of the hidden lead is revealed.
    assert str(foreign.id) not in str(body) and "Geheim" not in str(body)

    await session.refresh(foreign)
    assert (foreign.company, foreign.first_name, foreign.version) == (
        "Geheim AG",
        foreign.first_name,
        1,
    )
    assert await _count(session, Lead, Lead.email == "foreign@example.com") == 1  # no copy
    await session.refresh(mine)
    assert (mine.company, mine.status, mine.version) == ("Neu GmbH", "contacted", 2)
    assert mine.full_name == "Mein Kontakt" and "neu gmbh" in (mine.search_text or "")

    # Same audit and status history an API update writes; none for the foreign lead.
    audits = list(
        await session.scalars(
            select(AuditLog).where(
                AuditLog.action == "lead.update", AuditLog.organization_id == org.id
            )
        )
    )
    assert [a.resource_id for a in audits] == [str(mine.id)]
    assert audits[0].actor_user_id == manager.user.id
    assert audits[0].before is not None and audits[0].after is not None
    assert (audits[0].before["company"], audits[0].after["company"]) == ("Alt GmbH", "Neu GmbH")
    assert (audits[0].before["status"], audits[0].after["status"]) == ("new", "contacted")
    moves = list(
        await session.scalars(
            select(LeadStatusChange).where(LeadStatusChange.lead_id.in_([mine.id, foreign.id]))
        )
    )
    assert [(m.lead_id, m.from_status, m.to_status) for m in moves] == [
        (mine.id, "new", "contacted")
    ]
    assert moves[0].actor_user_id == manager.user.id

    # Skip mode: the hidden duplicate is neither skipped silently nor inserted.
    body = await _import(client, manager, "/api/v1/leads/import?analyze=false", [rows[0]])
    assert body["imported_count"] == 0 and body["errors"][0]["code"] == "duplicate_out_of_scope"
    assert await _count(session, Lead, Lead.email == "foreign@example.com") == 1
    detail = (
        await client.get(f"/api/v1/imports/{body['import_batch_id']}", headers=manager.headers)
    ).json()
    assert detail["errors"][0]["code"] == "duplicate_out_of_scope"


async def test_counselor_import_updates_own_leads_only(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    await _grant_import(session, org, "counselor")
    rep = await factory.member(org, "counselor")
    colleague = await factory.user(org, "counselor")
    own = await factory.lead(org, email="own@example.com", company="Alt", assignee_id=rep.user.id)
    theirs = await factory.lead(
        org,
        email="theirs@example.com",
        phone="+4930123456",
        company="Alt",
        assignee_id=colleague.id,
    )
    body = await _import(
        client,
        rep,
        UPDATE,
        [
            {"Name": "A", "E-Mail": "own@example.com", "Firma": "Neu"},
            {"Name": "B", "Telefon": "030 123456", "Firma": "Neu"},  # matches by phone
            {"Name": "C", "E-Mail": "fresh@example.com"},
        ],
    )
    assert (body["updated_count"], body["imported_count"]) == (1, 1)
    assert [(e["row"], e["code"], e["column"]) for e in body["errors"]] == [
        (3, "duplicate_out_of_scope", "phone")
    ]
    await session.refresh(own)
    await session.refresh(theirs)
    assert own.company == "Neu" and theirs.company == "Alt" and theirs.version == 1
    assert await _count(session, Lead, Lead.phone == "+4930123456") == 1


async def test_batches_are_seen_and_undone_only_in_scope(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    await _grant_import(session, org, "counselor")
    team = await factory.team(org)
    admin = await factory.member(org)
    rep = await factory.member(org, "counselor", team=team)
    other_rep = await factory.member(org, "counselor")
    manager = await factory.member(org, "manager", team=team)
    admin_batch = (
        await _import(client, admin, UPDATE, [{"Name": "X", "E-Mail": "x@example.com"}])
    )["import_batch_id"]
    rep_batch = (await _import(client, rep, UPDATE, [{"Name": "Y", "E-Mail": "y@example.com"}]))[
        "import_batch_id"
    ]

    async def visible(who: Member) -> set[str]:
        listing = (await client.get("/api/v1/imports", headers=who.headers)).json()
        assert listing["total"] == len(listing["items"])
        return {b["id"] for b in listing["items"]}

    assert await visible(admin) == {admin_batch, rep_batch}
    assert await visible(manager) == {rep_batch}  # started by a member of the team
    assert await visible(rep) == {rep_batch}
    assert await visible(other_rep) == set()
    for who, batch in ((rep, admin_batch), (other_rep, rep_batch), (manager, admin_batch)):
        for method, suffix in (("GET", ""), ("GET", "/errors.csv"), ("POST", "/undo")):
            r = await client.request(
                method, f"/api/v1/imports/{batch}{suffix}", headers=who.headers
            )
            assert r.status_code == 404, (suffix, r.text)
    assert (
        await _count(session, Lead, Lead.email == "x@example.com", Lead.deleted_at.is_(None)) == 1
    )
    r = await client.post(f"/api/v1/imports/{rep_batch}/undo", headers=rep.headers)
    assert r.status_code == 200 and r.json()["status"] == "undone"


async def test_background_import_keeps_the_importers_scope(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
) -> None:
    app.state.settings.import_sync_max_rows = 2
    org = await factory.org()
    team_a, team_b = await factory.team(org), await factory.team(org)
    manager = await factory.member(org, "manager", team=team_a)
    stranger = await factory.user(org, "counselor", team=team_b)
    foreign = await factory.lead(
        org, email="p1@example.com", company="Alt", assignee_id=stranger.id
    )
    lines = ["Name,E-Mail,Firma"] + [f"Person {i},p{i}@example.com,Neu" for i in range(5)]
    r = await client.post(
        "/api/v1/leads/import?on_duplicate=update&analyze=false",
        content="\n".join(lines).encode(),
        headers={**manager.headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 202, r.text
    batch_id = r.json()["import_batch_id"]
    assert await run_job(jobs, batch_id) == "completed"
    detail = (await client.get(f"/api/v1/imports/{batch_id}", headers=manager.headers)).json()
    assert (detail["imported_count"], detail["updated_count"], detail["error_count"]) == (4, 0, 1)
    assert [(e["row"], e["code"]) for e in detail["errors"]] == [(3, "duplicate_out_of_scope")]
    await session.refresh(foreign)
    assert foreign.company == "Alt" and foreign.version == 1


@pytest.mark.parametrize("mode", ["skip", "update"])
async def test_admin_still_matches_the_whole_organisation(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, mode: str
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    someone = await factory.user(org, "counselor")
    lead = await factory.lead(org, email="any@example.com", company="Alt", assignee_id=someone.id)
    body = await _import(
        client,
        admin,
        f"/api/v1/leads/import?on_duplicate={mode}&analyze=false",
        [{"Name": "Any", "E-Mail": "any@example.com", "Firma": "Neu"}],
    )
    assert body["errors"] == [] and body["imported_count"] == 0
    await session.refresh(lead)
    assert lead.company == ("Neu" if mode == "update" else "Alt")


async def test_updates_cost_the_same_statements_for_few_and_many_leads(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    for i in range(30):
        await factory.lead(org, email=f"u{i}@example.com", company="Alt", status="new")

    async def run(n: int) -> int:
        statements.clear()
        rows = [
            {"Name": f"U {i}", "E-Mail": f"u{i}@example.com", "Firma": f"Neu {n}", "Status": "won"}
            for i in range(n)
        ]
        body = await _import(client, admin, UPDATE, rows)
        assert body["updated_count"] == n
        return len(statements)

    with sent_statements(database) as statements:
        few, many = await run(3), await run(30)
    assert few == many


async def test_update_without_a_status_column_keeps_the_stage(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    lead = await factory.lead(org, email="stage@example.com", status="won")
    for analyze in ("false", "true"):
        body = await _import(
            client,
            admin,
            f"/api/v1/leads/import?on_duplicate=update&analyze={analyze}",
            [{"Name": "Stage Kept", "E-Mail": "stage@example.com", "Firma": "Neu"}],
        )
        assert body["updated_count"] == 1
        await session.refresh(lead)
        assert (lead.status, lead.company) == ("won", "Neu")
    assert await _count(session, LeadStatusChange, LeadStatusChange.lead_id == lead.id) == 0


async def test_undo_leaves_leads_that_moved_out_of_scope_alone(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    team_a, team_b = await factory.team(org), await factory.team(org)
    manager = await factory.member(org, "manager", team=team_a)
    mate = await factory.user(org, "counselor", team=team_a)
    stranger = await factory.user(org, "counselor", team=team_b)
    kept = await factory.lead(org, email="kept@example.com", company="Alt", assignee_id=mate.id)
    rows = [
        {"Name": "Kept", "E-Mail": "kept@example.com", "Firma": "Neu"},
        {"Name": "Fresh", "E-Mail": "fresh@example.com", "Firma": "Neu"},
    ]
    report = await _import(client, manager, UPDATE, rows)
    assert report["imported_count"] == 1 and report["updated_count"] == 1, report
    # Both leads are reassigned to another team and edited there.
    await session.execute(
        update(Lead)
        .where(Lead.organization_id == org.id)
        .values(assignee_id=stranger.id, company="Team B")
        .execution_options(synchronize_session=False)
    )
    await session.commit()
    r = await client.post(
        f"/api/v1/imports/{report['import_batch_id']}/undo", headers=manager.headers
    )
    assert r.status_code == 200, r.text
    live = {
        email: (company, deleted)
        for email, company, deleted in (
            await session.execute(
                select(Lead.email, Lead.company, Lead.deleted_at).where(
                    Lead.organization_id == org.id
                )
            )
        ).all()
    }
    # Updated by the import, now team B's: not restored.
    assert live["kept@example.com"] == ("Team B", None)
    # Created by the import: the manager is its creator, so it is still theirs to remove.
    assert live["fresh@example.com"][1] is not None
    assert kept.id is not None
    assert r.json()["status"] == "undone"


async def test_background_import_stops_when_the_importer_is_deactivated(
    app: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    jobs: JobContext,
) -> None:
    app.state.settings.import_sync_max_rows = 2
    org = await factory.org()
    manager = await factory.member(org, "manager")
    lines = ["Name,E-Mail"] + [f"Gone {i},gone{i}@example.com" for i in range(5)]
    r = await client.post(
        "/api/v1/leads/import?analyze=false",
        content="\n".join(lines).encode(),
        headers={**manager.headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 202, r.text
    batch_id = r.json()["import_batch_id"]
    await session.execute(update(User).where(User.id == manager.user.id).values(status="inactive"))
    await session.commit()
    assert await run_job(jobs, batch_id) == "failed"
    assert await _count(session, Lead, Lead.email.like("gone%")) == 0
