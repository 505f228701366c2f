"""A deactivated member's open leads go on — by the assignment rules, to a named member, or
unassigned — through the leads package's set-based door: history, audit, SLA clock and the
new assignee's message once per lead."""

from __future__ import annotations

import uuid
from collections import Counter

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.handover import REASON
from leadflow.kit.clock import utcnow
from leadflow.models.audit_log import AuditLog
from leadflow.models.lead import Lead
from leadflow.models.lead_history import LeadAssignment
from leadflow.models.organization import Organization
from leadflow.models.outbox import Notification
from leadflow.models.user import User
from tests.accounts.helpers import ADMIN_USERS, count, custom_role
from tests.fixtures.factories import Factory, Member


async def _fresh_leads(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, Lead]:
    rows = await session.scalars(
        select(Lead).where(Lead.id.in_(ids)).execution_options(populate_existing=True)
    )
    return {lead.id: lead for lead in rows}


class World:
    """An admin, two counselors the rules may pick, and one leaving with leads of every kind."""

    def __init__(self, org: Organization, admin: Member, a: User, b: User, leaving: User) -> None:
        self.org, self.admin, self.a, self.b, self.leaving = org, admin, a, b, leaving
        self.open: list[uuid.UUID] = []
        self.kept: list[uuid.UUID] = []


async def _world(factory: Factory) -> World:
    org = await factory.org()
    w = World(
        org,
        await factory.member(org),
        await factory.user(org, "counselor"),
        await factory.user(org, "counselor"),
        await factory.user(org, "counselor"),
    )
    x = w.leaving.id
    for status in ("new", "contacted", "qualified"):
        w.open.append((await factory.lead(org, assignee_id=x, status=status)).id)
    for fields in (
        {"status": "won"},
        {"status": "lost"},
        {"status": "new", "deleted_at": utcnow()},
    ):
        w.kept.append((await factory.lead(org, assignee_id=x, **fields)).id)
    w.kept.append((await factory.lead(org, assignee_id=w.a.id, status="new")).id)
    return w


async def _round_robin(client: httpx.AsyncClient, w: World) -> None:
    r = await client.post(
        "/api/v1/assignment/rules",
        headers=w.admin.headers,
        json={"name": "Alle", "strategy": "round_robin", "user_ids": [str(w.a.id), str(w.b.id)]},
    )
    assert r.status_code == 201, r.text


async def test_rules_take_over_the_open_leads(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    w = await _world(factory)
    await _round_robin(client, w)
    versions = {i: lead.version for i, lead in (await _fresh_leads(session, w.open)).items()}
    r = await client.delete(f"{ADMIN_USERS}/{w.leaving.id}", headers=w.admin.headers)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "user_id": str(w.leaving.id),
        "status": "inactive",
        "leads_reassigned": 3,
        "leads_unassigned": 0,
    }
    leads = await _fresh_leads(session, w.open + w.kept)
    # Round robin over the two counselors, in lead-id order: a, b, a.
    assert Counter(leads[i].assignee_id for i in w.open) == {w.a.id: 2, w.b.id: 1}
    for i in w.open:
        assert leads[i].sla_deadline is not None
        assert leads[i].version == versions[i] + 1
    # Won, lost and deleted leads stay where they were; so do other members' leads.
    assert [leads[i].assignee_id for i in w.kept] == [w.leaving.id] * 3 + [w.a.id]

    history = (
        await session.scalars(select(LeadAssignment).where(LeadAssignment.lead_id.in_(w.open)))
    ).all()
    assert sorted(
        (h.lead_id, h.from_user_id, h.reason, h.actor_user_id) for h in history
    ) == sorted((i, w.leaving.id, REASON, w.admin.user.id) for i in w.open)
    audits = (
        await session.scalars(
            select(AuditLog).where(
                AuditLog.organization_id == w.org.id, AuditLog.action == "lead.handover"
            )
        )
    ).all()
    assert sorted(str(a.resource_id) for a in audits) == sorted(str(i) for i in w.open)
    assert all(a.before == {"assignee_id": str(w.leaving.id)} for a in audits)
    assert await count(session, AuditLog, AuditLog.action == "user.deactivate") == 1
    # One summary message per new assignee (as a bulk assignment sends them).
    notes = (
        await session.scalars(select(Notification).where(Notification.organization_id == w.org.id))
    ).all()
    assert sorted((n.user_id, n.kind, n.data["count"]) for n in notes) == sorted(
        [(w.a.id, "leads_assigned", 2), (w.b.id, "leads_assigned", 1)]
    )


async def test_a_named_member_gets_them_all(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    w = await _world(factory)
    await _round_robin(client, w)  # a name given wins over the rules
    r = await client.delete(
        f"{ADMIN_USERS}/{w.leaving.id}",
        headers=w.admin.headers,
        params={"reassign_to": str(w.b.id)},
    )
    assert r.json()["leads_reassigned"] == 3
    leads = await _fresh_leads(session, w.open)
    assert {leads[i].assignee_id for i in w.open} == {w.b.id}


async def test_without_a_matching_rule_they_are_unassigned(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    w = await _world(factory)
    r = await client.patch(
        f"{ADMIN_USERS}/{w.leaving.id}", headers=w.admin.headers, json={"status": "inactive"}
    )
    assert r.status_code == 200 and r.json()["status"] == "inactive"
    leads = await _fresh_leads(session, w.open)
    assert {leads[i].assignee_id for i in w.open} == {None}
    history = (
        await session.scalars(select(LeadAssignment).where(LeadAssignment.lead_id.in_(w.open)))
    ).all()
    assert sorted(h.to_user_id is None for h in history) == [True, True, True]


async def test_patch_and_bulk_hand_over_to_a_named_member(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    w = await _world(factory)
    other = await factory.user(w.org, "counselor")
    theirs = (await factory.lead(w.org, assignee_id=other.id, status="new")).id
    r = await client.patch(
        f"{ADMIN_USERS}/{w.leaving.id}",
        headers=w.admin.headers,
        json={"status": "inactive", "reassign_to": str(w.a.id)},
    )
    assert r.status_code == 200, r.text
    r = await client.post(
        f"{ADMIN_USERS}/bulk-action",
        headers=w.admin.headers,
        json={"user_ids": [str(other.id)], "action": "deactivate", "reassign_to": str(w.b.id)},
    )
    [result] = r.json()["results"]
    assert (result["ok"], result["leads_reassigned"], result["leads_unassigned"]) == (True, 1, 0)
    leads = await _fresh_leads(session, [*w.open, theirs])
    assert [leads[i].assignee_id for i in w.open] == [w.a.id] * 3
    assert leads[theirs].assignee_id == w.b.id


async def test_the_receiver_must_be_an_active_member_who_stays(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    w = await _world(factory)
    gone = await factory.user(w.org, "counselor", status="inactive")
    url = f"{ADMIN_USERS}/{w.leaving.id}"
    for to in (w.leaving.id, gone.id, uuid.uuid4()):
        r = await client.delete(url, headers=w.admin.headers, params={"reassign_to": str(to)})
        assert (r.status_code, r.json()["code"]) == (422, "validation_error")
    r = await client.post(
        f"{ADMIN_USERS}/bulk-action",
        headers=w.admin.headers,
        json={
            "user_ids": [str(w.leaving.id), str(w.a.id)],
            "action": "deactivate",
            "reassign_to": str(w.a.id),
        },
    )
    assert (r.status_code, r.json()["code"]) == (422, "validation_error")
    assert (
        await client.delete(url, headers=w.admin.headers, params={"reassign_to": "x"})
    ).status_code == 422
    leads = await _fresh_leads(session, w.open)
    assert {leads[i].assignee_id for i in w.open} == {w.leaving.id}
    assert await count(session, User, User.status == "inactive") == 1  # `gone` only
    assert await count(session, LeadAssignment) == 0


async def test_naming_a_receiver_needs_leads_assign(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    await custom_role(session, org, "useradmin", ["users:read", "admin:users"])
    await custom_role(session, org, "reader", ["users:read"])
    ua = await factory.member(org, "useradmin")
    leaving = await factory.user(org, "reader")
    keeper = await factory.user(org, "reader")
    lead = await factory.lead(org, assignee_id=leaving.id, status="new")
    r = await client.delete(
        f"{ADMIN_USERS}/{leaving.id}", headers=ua.headers, params={"reassign_to": str(keeper.id)}
    )
    assert (r.status_code, r.json()["code"]) == (403, "missing_permission")
    # The organisation's own rules (none here) still apply without the permission.
    r = await client.delete(f"{ADMIN_USERS}/{leaving.id}", headers=ua.headers)
    assert r.json()["leads_unassigned"] == 1
    fresh = await _fresh_leads(session, [lead.id])
    assert fresh[lead.id].assignee_id is None
