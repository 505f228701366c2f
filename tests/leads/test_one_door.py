"""Every door a lead change can come through has the same side effects (door × effect).

Each case drives one door through the API and names what it must leave behind: the events
the leads service published, status and assignment history rows, the SLA clock, the audit
action and the version. A door that writes a lead around the leads service misses some of
them and fails here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db.engine import Database
from leadflow.kit import events
from leadflow.kit.clock import clock
from leadflow.leads import events as lead_events
from leadflow.models.audit_log import AuditLog
from leadflow.models.lead import Lead
from leadflow.models.lead_history import LeadAssignment, LeadStatusChange
from tests.fixtures.factories import Factory, Member
from tests.fixtures.sql import sent_statements

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, inside business hours


@pytest.fixture
def published() -> Iterator[list[str]]:
    """Names of the lead events published while the test runs."""
    seen: list[str] = []

    async def note(_session: AsyncSession, e: events.Event) -> None:
        seen.append(e.name)

    for kind in lead_events.ALL:
        events.subscribe(kind)(note)
    try:
        yield seen
    finally:
        for kind in lead_events.ALL:
            events.unsubscribe(kind, note)


@dataclass
class World:
    """An organisation with an admin, a rep and two leads (one assigned, clock running)."""

    client: httpx.AsyncClient
    factory: Factory
    admin: Member
    rep: uuid.UUID
    fresh: Lead  # new, unassigned
    open: Lead  # new, assigned to the rep with a running SLA clock
    extra: dict[str, Any] = field(default_factory=dict)

    async def ok(self, method: str, url: str, **kw: Any) -> dict[str, Any]:
        r = await self.client.request(method, url, headers=self.admin.headers, **kw)
        assert r.status_code < 300, r.text
        return r.json() if r.content else {}

    async def import_csv(self, text: str, query: str = "") -> dict[str, Any]:
        r = await self.client.post(
            f"/api/v1/leads/import?analyze=false{query}",
            content=text.encode(),
            headers={**self.admin.headers, "Content-Type": "text/csv"},
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        assert body["errors"] == [], body
        return body


@dataclass(frozen=True)
class Case:
    """A door, the leads it should touch and what each must show afterwards."""

    door: str
    act: Callable[[World], Awaitable[list[uuid.UUID]]]
    events: frozenset[str]
    audit: str
    status_reason: str | None = None  # a status history row with this reason, per lead
    assigned: bool = False  # an assignment history row and a started SLA clock, per lead
    responded: bool = False  # the running clock is met
    version_up: bool = True


async def _api_create(w: World) -> list[uuid.UUID]:
    body = await w.ok("POST", "/api/v1/leads", json={"name": "Nia Neu", "assignee_id": str(w.rep)})
    return [uuid.UUID(body["id"])]


async def _api_update(w: World) -> list[uuid.UUID]:
    await w.ok("PATCH", f"/api/v1/leads/{w.open.id}", json={"status": "contacted", "company": "X"})
    return [w.open.id]


async def _api_status(w: World) -> list[uuid.UUID]:
    await w.ok("PATCH", f"/api/v1/leads/{w.open.id}/status", json={"status": "contacted"})
    return [w.open.id]


async def _api_assign(w: World) -> list[uuid.UUID]:
    await w.ok("POST", f"/api/v1/leads/{w.fresh.id}/assign", json={"assignee_id": str(w.rep)})
    return [w.fresh.id]


def _bulk_door(
    action: str, value: Callable[[World], Any]
) -> Callable[[World], Awaitable[list[uuid.UUID]]]:
    async def act(w: World) -> list[uuid.UUID]:
        ids = [w.fresh.id, w.open.id]
        body = await w.ok(
            "POST",
            "/api/v1/leads/bulk",
            json={"action": action, "ids": [str(i) for i in ids], "value": value(w)},
        )
        assert body["updated"] == 2, body
        return ids

    return act


async def _import_insert(w: World) -> list[uuid.UUID]:
    await w.import_csv("Name,E-Mail\nIda Import,ida@example.com\n", f"&assignee_id={w.rep}")
    lead = await w.factory.session.scalar(select(Lead).where(Lead.email == "ida@example.com"))
    assert lead is not None
    return [lead.id]


async def _import_update(w: World) -> list[uuid.UUID]:
    await w.import_csv(
        f"Name,E-Mail,Status,Firma\nOpen Lead,{w.open.email},contacted,Neu\n",
        "&on_duplicate=update",
    )
    return [w.open.id]


async def _import_undo(w: World) -> list[uuid.UUID]:
    body = await w.import_csv(
        f"Name,E-Mail,Status\nOpen Lead,{w.open.email},contacted\n", "&on_duplicate=update"
    )
    await w.ok("POST", f"/api/v1/imports/{body['import_batch_id']}/undo")
    return [w.open.id]


async def _ai_apply(w: World) -> list[uuid.UUID]:
    # "Kunde" is a free-form status an old import left: the analysis maps it to `won`.
    w.open.status = "Kunde"
    await w.factory.session.commit()
    body = await w.ok(
        "POST",
        "/api/v1/ai",
        json={"action": "analyze_lead", "data": {"lead_id": str(w.open.id), "apply": True}},
    )
    assert (body["applied"], body["status"]) == (True, "won"), body
    return [w.open.id]


async def _merge(w: World) -> list[uuid.UUID]:
    w.fresh.company = "Merged GmbH"  # the survivor takes it over
    await w.factory.session.commit()
    await w.ok("POST", f"/api/v1/leads/{w.open.id}/merge", json={"other_ids": [str(w.fresh.id)]})
    return [w.open.id]


async def _interaction(w: World) -> list[uuid.UUID]:
    await w.ok(
        "POST", f"/api/v1/leads/{w.open.id}/interactions", json={"type": "call", "outcome": "ok"}
    )
    return [w.open.id]


async def _delete(w: World) -> list[uuid.UUID]:
    await w.ok("DELETE", f"/api/v1/leads/{w.open.id}")
    return [w.open.id]


E = frozenset
CASES = [
    Case("api create", _api_create, E({"lead.created", "lead.assigned"}), "lead.create",
         status_reason="created", assigned=True, version_up=False),
    Case("api update", _api_update, E({"lead.status_changed", "lead.responded", "lead.updated"}),
         "lead.update", status_reason=None, responded=True),
    Case("api status", _api_status, E({"lead.status_changed", "lead.responded"}), "lead.status",
         responded=True),
    Case("api assign", _api_assign, E({"lead.assigned"}), "lead.assign", assigned=True),
    Case("bulk assign", _bulk_door("assign", lambda w: str(w.extra["rep2"])),
         E({"lead.assigned", "lead.updated"}), "lead.bulk_assign", assigned=True),
    Case("bulk status", _bulk_door("status", lambda w: "qualified"),
         E({"lead.status_changed", "lead.responded", "lead.updated"}), "lead.bulk_status",
         status_reason="bulk"),
    Case("bulk tag", _bulk_door("tag_add", lambda w: "vip"), E({"lead.updated"}),
         "lead.bulk_tag_add"),
    Case("bulk delete", _bulk_door("delete", lambda w: None), E({"lead.deleted"}),
         "lead.bulk_delete"),
    Case("import insert", _import_insert, E({"lead.created", "lead.assigned"}),
         "lead.create_many", status_reason="import", assigned=True, version_up=False),
    Case("import update", _import_update,
         E({"lead.updated", "lead.status_changed", "lead.responded"}), "lead.update",
         status_reason="import", responded=True),
    Case("import undo", _import_undo,
         E({"lead.updated", "lead.status_changed", "lead.responded"}), "lead.update",
         status_reason="import undone"),
    Case("ai apply", _ai_apply, E({"lead.status_changed", "lead.updated"}), "lead.ai_analysis",
         status_reason="AI analysis"),
    Case("merge", _merge, E({"lead.merged", "lead.deleted", "lead.updated"}), "lead.merge"),
    Case("interaction", _interaction, E({"lead.updated", "lead.responded"}), "interaction.create",
         responded=True, version_up=False),
    Case("delete", _delete, E({"lead.deleted"}), "lead.delete"),
]  # fmt: skip


@pytest.fixture
async def world(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> AsyncIterator[World]:
    clock.freeze(NOW)
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    rep2 = await factory.user(org, "counselor")
    w = World(client, factory, admin, rep.id, await factory.lead(org), await factory.lead(org))
    w.extra["rep2"] = rep2.id
    r = await client.post(
        f"/api/v1/leads/{w.open.id}/assign",
        headers=admin.headers,
        json={"assignee_id": str(rep.id)},
    )
    assert r.status_code == 200, r.text
    await session.refresh(w.open)
    assert w.open.sla_deadline is not None and w.open.sla_met_at is None
    yield w


async def _count(session: AsyncSession, model: Any, *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


@pytest.mark.parametrize("case", CASES, ids=[c.door for c in CASES])
async def test_every_door_has_every_effect(
    case: Case, world: World, session: AsyncSession, published: list[str]
) -> None:
    w = world
    versions = {lead.id: lead.version for lead in (w.fresh, w.open)}
    status_rows = {
        i: await _count(session, LeadStatusChange, LeadStatusChange.lead_id == i) for i in versions
    }
    published.clear()
    clock.freeze(NOW.replace(minute=5))  # tokens stay valid; new clocks start later

    ids = await case.act(w)

    assert set(published) == case.events, published
    assert (
        await _count(
            session,
            AuditLog,
            AuditLog.action == case.audit,
            AuditLog.organization_id == w.fresh.organization_id,
        )
        >= 1
    )
    for lead_id in ids:
        lead = await session.get(Lead, lead_id, populate_existing=True)
        assert lead is not None
        if case.version_up:
            assert lead.version > versions[lead_id], case.door
        if case.status_reason is not None:
            reasons = (
                await session.scalars(
                    select(LeadStatusChange.reason).where(LeadStatusChange.lead_id == lead_id)
                )
            ).all()
            assert case.status_reason in reasons, reasons
            assert len(reasons) > status_rows.get(lead_id, 0)
        if case.assigned:
            history = await _count(
                session,
                LeadAssignment,
                LeadAssignment.lead_id == lead_id,
                LeadAssignment.to_user_id == lead.assignee_id,
            )
            assert history >= 1 and lead.assignee_id is not None
            assert lead.sla_deadline is not None and lead.sla_deadline > NOW
            assert lead.sla_met_at is None
        if case.responded:
            assert lead.sla_met_at is not None, case.door


def test_every_lead_event_has_a_case() -> None:
    """The table covers every event the leads service publishes."""
    covered = set().union(*(c.events for c in CASES))
    assert covered == {e.name for e in lead_events.ALL}


async def test_a_bulk_action_costs_the_same_statements_for_few_and_many_leads(
    client: httpx.AsyncClient, factory: Factory, database: Database
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    leads = [await factory.lead(org) for _ in range(24)]

    async def run(chosen: list[Lead], action: str, value: Any) -> int:
        statements.clear()
        r = await client.post(
            "/api/v1/leads/bulk",
            headers=admin.headers,
            json={"action": action, "ids": [str(x.id) for x in chosen], "value": value},
        )
        assert r.status_code == 200 and r.json()["updated"] == len(chosen), r.text
        return len(statements)

    with sent_statements(database) as statements:
        for action, value in (("assign", str(rep.id)), ("status", "contacted"), ("tag_add", "t")):
            few = await run(leads[:2], action, value)
            many = await run(leads[2:], action, value)
            assert few == many, (action, few, many)


async def test_answers_show_what_subscribers_wrote(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    """The SLA clock a subscriber starts or stops is in the same request's answer."""
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    r = await client.post(
        "/api/v1/leads", headers=admin.headers, json={"name": "A B", "assignee_id": str(rep.id)}
    )
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["sla"]["state"] == "running" and created["sla"]["deadline"] is not None
    r = await client.patch(
        f"/api/v1/leads/{created['id']}/status", headers=admin.headers, json={"status": "contacted"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["sla"]["state"] == "met" and r.json()["sla"]["met_at"] is not None
