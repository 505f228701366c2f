"""Pipeline stages, status moves with history, and the summary."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.lead_history import LeadStatusChange
from tests.conftest import new_uuid
from tests.fixtures.factories import Factory


async def test_default_stages(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    rep = await factory.member(org, "counselor")
    stages = (await client.get("/api/v1/pipeline/stages", headers=rep.headers)).json()
    assert [s["key"] for s in stages] == [
        "new",
        "contacted",
        "qualified",
        "proposal",
        "won",
        "lost",
    ]
    assert [s["category"] for s in stages][-2:] == ["won", "lost"]
    assert stages[4]["probability"] == 100


async def test_stage_crud_reorder_and_delete_guard(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.member(org, "counselor")
    r = await client.post(
        "/api/v1/pipeline/stages",
        headers=admin.headers,
        json={"key": "demo", "name": "Demo", "probability": 50, "position": 3},
    )
    assert r.status_code == 201, r.text
    demo = r.json()
    assert demo["position"] == 3
    assert (
        await client.post(
            "/api/v1/pipeline/stages", headers=admin.headers, json={"key": "demo", "name": "Again"}
        )
    ).status_code == 409
    assert (
        await client.post(
            "/api/v1/pipeline/stages", headers=admin.headers, json={"key": "Bad Key", "name": "x"}
        )
    ).status_code == 422
    assert (
        await client.post(
            "/api/v1/pipeline/stages", headers=rep.headers, json={"key": "x", "name": "x"}
        )
    ).status_code == 403
    r = await client.patch(
        f"/api/v1/pipeline/stages/{demo['id']}",
        headers=admin.headers,
        json={"name": "Produktdemo", "probability": 55},
    )
    assert r.json()["name"] == "Produktdemo"
    stages = (await client.get("/api/v1/pipeline/stages", headers=admin.headers)).json()
    ids = [s["id"] for s in stages]
    r = await client.post(
        "/api/v1/pipeline/stages/reorder", headers=admin.headers, json={"ids": ids[::-1]}
    )
    assert [s["id"] for s in r.json()] == ids[::-1]
    assert (
        await client.post(
            "/api/v1/pipeline/stages/reorder", headers=admin.headers, json={"ids": ids[:2]}
        )
    ).status_code == 422
    lead = await factory.lead(org, status="demo")
    blocked = await client.delete(f"/api/v1/pipeline/stages/{demo['id']}", headers=admin.headers)
    assert blocked.status_code == 409 and blocked.json()["lead_count"] == 1
    await client.patch(
        f"/api/v1/leads/{lead.id}/status", headers=admin.headers, json={"status": "won"}
    )
    assert (
        await client.delete(f"/api/v1/pipeline/stages/{demo['id']}", headers=admin.headers)
    ).status_code == 204
    other = await factory.member(await factory.org())
    assert (
        await client.patch(
            f"/api/v1/pipeline/stages/{ids[0]}", headers=other.headers, json={"name": "x"}
        )
    ).status_code == 404
    assert (
        await client.delete(f"/api/v1/pipeline/stages/{new_uuid()}", headers=admin.headers)
    ).status_code == 404


async def test_status_move_writes_history(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    rep = await factory.member(org, "counselor")
    lead = (
        await client.post("/api/v1/leads", headers=rep.headers, json={"first_name": "Greta"})
    ).json()
    url = f"/api/v1/leads/{lead['id']}/status"
    r = await client.patch(
        url, headers=rep.headers, json={"status": "qualified", "reason": "budget confirmed"}
    )
    assert r.status_code == 200 and r.json()["status"] == "qualified"
    r = await client.post(url, headers=rep.headers, json={"status": "proposal"})
    assert r.status_code == 200 and r.json()["stage"]["name"] == "Proposal"
    bad = await client.patch(url, headers=rep.headers, json={"status": "teleported"})
    assert bad.status_code == 422 and bad.json()["code"] == "unknown_status"
    rows = list(
        await session.scalars(
            select(LeadStatusChange)
            .where(LeadStatusChange.lead_id == uuid.UUID(lead["id"]))
            .order_by(LeadStatusChange.created_at, LeadStatusChange.id)
        )
    )
    assert [(r.from_status, r.to_status) for r in rows] == [
        (None, "new"),
        ("new", "qualified"),
        ("qualified", "proposal"),
    ]
    assert rows[1].reason == "budget confirmed" and str(rows[1].actor_user_id) == rep.id


async def test_summary_counts_and_shares_in_scope(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.member(org, "counselor")
    for status in ("new", "new", "won", "lost"):
        await factory.lead(org, status=status)
    await factory.lead(org, status="won", assignee_id=rep.user.id)
    body = (await client.get("/api/v1/pipeline/summary", headers=admin.headers)).json()
    by_key = {s["key"]: s for s in body["stages"]}
    assert body["total"] == 5
    assert by_key["new"]["count"] == 2 and by_key["new"]["share"] == 0.4
    assert by_key["won"]["count"] == 2 and by_key["qualified"]["count"] == 0
    mine = (await client.get("/api/v1/pipeline/summary", headers=rep.headers)).json()
    assert mine["total"] == 1


async def test_manual_assignment(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    manager = await factory.member(org, "manager")
    rep = await factory.user(org, "counselor")
    gone = await factory.user(org, "counselor", status="inactive")
    stranger = await factory.user(await factory.org(), "counselor")
    lead = await factory.lead(org, created_by=manager.user.id)
    url = f"/api/v1/leads/{lead.id}/assign"
    r = await client.post(
        url, headers=manager.headers, json={"assignee_id": str(rep.id), "reason": "postcode 2xxxx"}
    )
    assert r.status_code == 200 and r.json()["assignee_id"] == str(rep.id)
    for bad in (gone, stranger):
        r = await client.post(url, headers=manager.headers, json={"assignee_id": str(bad.id)})
        assert r.status_code == 422
    r = await client.post(url, headers=manager.headers, json={"assignee_id": None})
    assert r.json()["assignee_id"] is None
    from leadflow.models.lead_history import LeadAssignment

    rows = list(
        await session.scalars(
            select(LeadAssignment)
            .where(LeadAssignment.lead_id == lead.id)
            .order_by(LeadAssignment.created_at)
        )
    )
    assert [(r.from_user_id, r.to_user_id) for r in rows] == [(None, rep.id), (rep.id, None)]
    assert rows[0].reason == "postcode 2xxxx"
