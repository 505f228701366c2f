"""SLA deadlines in business time, reminders and breaches exactly once, policies, status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.clock import clock
from leadflow.models.audit_log import AuditLog
from leadflow.models.lead import Lead
from leadflow.models.outbox import Notification, OutboxMessage
from leadflow.sla import service as sla
from tests.fixtures.factories import Factory

FRIDAY_17_BERLIN = datetime(2026, 3, 27, 16, 0, tzinfo=UTC)  # CET, before the DST weekend
MONDAY_0830_BERLIN = datetime(2026, 3, 30, 6, 30, tzinfo=UTC)  # CEST after the change
MONDAY_0900_BERLIN = datetime(2026, 3, 30, 7, 0, tzinfo=UTC)


async def _count(session: AsyncSession, model: type, *conds: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*conds)) or 0)


async def test_deadline_reminder_and_breach_exactly_once(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    clock.freeze(FRIDAY_17_BERLIN)
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    lead = await factory.lead(org, created_by=admin.user.id)
    r = await client.post(
        f"/api/v1/leads/{lead.id}/assign", headers=admin.headers, json={"assignee_id": str(rep.id)}
    )
    assert r.status_code == 200
    await session.refresh(lead)
    assert lead.sla_deadline == MONDAY_0900_BERLIN  # 60 min Friday + 60 min Monday
    assert lead.sla_reminder_at == MONDAY_0830_BERLIN
    settings = app.state.settings

    async def check(at: datetime) -> dict[str, int]:
        result = await sla.check(session, settings, at)
        await session.commit()
        return result

    assert await check(MONDAY_0830_BERLIN - timedelta(minutes=1)) == {"reminded": 0, "breached": 0}
    assert await check(MONDAY_0830_BERLIN + timedelta(minutes=1)) == {"reminded": 1, "breached": 0}
    assert await check(MONDAY_0830_BERLIN + timedelta(minutes=5)) == {"reminded": 0, "breached": 0}
    reminders = await _count(session, Notification, Notification.kind == "sla_reminder")
    assert reminders == 1
    assert (
        await _count(session, OutboxMessage, OutboxMessage.delivery_key.like("sla-reminder:%")) == 1
    )
    assert await check(MONDAY_0900_BERLIN + timedelta(minutes=1)) == {"reminded": 0, "breached": 1}
    assert await check(MONDAY_0900_BERLIN + timedelta(minutes=10)) == {"reminded": 0, "breached": 0}
    breach_notes = list(
        await session.scalars(
            select(Notification.user_id).where(Notification.kind == "sla_breached")
        )
    )
    assert sorted(map(str, breach_notes)) == sorted([str(rep.id), admin.id])
    assert (
        await _count(session, OutboxMessage, OutboxMessage.delivery_key.like("sla-breached:%")) == 2
    )
    assert await _count(session, AuditLog, AuditLog.action == "lead.sla_breached") == 1
    clock.freeze(MONDAY_0900_BERLIN + timedelta(minutes=11))
    admin = await factory.relogin(admin)
    body = (
        await client.get("/api/v1/sla/status", headers=admin.headers, params={"state": "breached"})
    ).json()
    assert [i["id"] for i in body["items"]] == [str(lead.id)]


async def test_first_outbound_contact_or_stage_move_meets_sla(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    clock.freeze(datetime(2026, 3, 3, 9, 0, tzinfo=UTC))  # Tuesday 10:00 Berlin
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    called = await factory.lead(org)
    moved = await factory.lead(org)
    noted = await factory.lead(org)
    for lead in (called, moved, noted):
        await client.post(
            f"/api/v1/leads/{lead.id}/assign",
            headers=admin.headers,
            json={"assignee_id": str(rep.id)},
        )
    clock.advance(timedelta(minutes=20))
    admin = await factory.relogin(admin)
    for url, body in [
        (f"/api/v1/leads/{called.id}/interactions", {"type": "call", "direction": "outbound"}),
        (f"/api/v1/leads/{noted.id}/interactions", {"type": "note", "direction": "outbound"}),
    ]:
        assert (await client.post(url, headers=admin.headers, json=body)).status_code == 201
    r = await client.patch(
        f"/api/v1/leads/{moved.id}/status", headers=admin.headers, json={"status": "contacted"}
    )
    assert r.status_code == 200
    for lead in (called, moved, noted):
        await session.refresh(lead)
    assert called.sla_met_at is not None and moved.sla_met_at is not None
    assert noted.sla_met_at is None
    result = await sla.check(session, app.state.settings, datetime(2026, 3, 3, 12, 0, tzinfo=UTC))
    assert result == {"reminded": 0, "breached": 1}
    met = (
        await client.get("/api/v1/sla/status", headers=admin.headers, params={"state": "met"})
    ).json()
    assert {i["id"] for i in met["items"]} == {str(called.id), str(moved.id)}
    assert (
        await client.get("/api/v1/sla/status", headers=admin.headers, params={"state": "late"})
    ).status_code == 422


async def test_policies_choose_duration_and_calendar(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    clock.freeze(datetime(2026, 3, 3, 9, 0, tzinfo=UTC))  # Tuesday 10:00 Berlin
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.member(org, "counselor")
    base = "/api/v1/sla/policies"
    r = await client.post(
        base,
        headers=admin.headers,
        json={
            "name": "VIP",
            "duration_minutes": 30,
            "reminder_minutes_before": 10,
            "conditions": {"tags": ["vip"]},
        },
    )
    assert r.status_code == 201, r.text
    policy = r.json()
    assert (
        await client.post(
            base,
            headers=admin.headers,
            json={"name": "bad", "calendar": {"timezone": "Mars/Olympus"}},
        )
    ).status_code == 422
    assert (
        await client.post(
            base, headers=admin.headers, json={"name": "bad", "conditions": {"mood": "x"}}
        )
    ).status_code == 422
    assert (await client.post(base, headers=rep.headers, json={"name": "x"})).status_code == 403
    assert [p["name"] for p in (await client.get(base, headers=rep.headers)).json()] == ["VIP"]
    vip = await factory.lead(org, tags=["vip"])
    plain = await factory.lead(org)
    for lead in (vip, plain):
        await client.post(
            f"/api/v1/leads/{lead.id}/assign", headers=admin.headers, json={"assignee_id": rep.id}
        )
        await session.refresh(lead)
    assert vip.sla_deadline == datetime(2026, 3, 3, 9, 30, tzinfo=UTC)
    assert str(vip.sla_policy_id) == policy["id"]
    assert plain.sla_deadline == datetime(2026, 3, 3, 11, 0, tzinfo=UTC)  # default 120 min
    r = await client.patch(
        f"{base}/{policy['id']}", headers=admin.headers, json={"duration_minutes": 45}
    )
    assert r.json()["duration_minutes"] == 45
    other = await factory.member(await factory.org())
    assert (await client.delete(f"{base}/{policy['id']}", headers=other.headers)).status_code == 404
    assert (await client.delete(f"{base}/{policy['id']}", headers=admin.headers)).status_code == 204
    assert await session.scalar(select(func.count()).select_from(Lead)) is not None
