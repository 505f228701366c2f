"""`Lead.stages_reached` — every stage a lead has been in — is written by every door that
moves a lead (create, status change, bulk, import insert and update, merge), and the funnel
reads it in the pipeline's current order (a reorder needs no recomputation)."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.lead import Lead, reached_keys, reached_with
from tests.fixtures.factories import Factory, Member


def test_reached_with_keeps_sorted_unique_keys_between_commas() -> None:
    assert reached_with(None, "new") == ",new,"
    assert reached_with(",new,", "won", "contacted", "new") == ",contacted,new,won,"
    assert (
        reached_with(
            "",
        )
        == ""
    )
    assert reached_keys(",contacted,new,") == {"contacted", "new"}
    assert reached_keys("") == set()


async def _reached(session: AsyncSession, lead_id: str) -> str:
    session.expire_all()
    value = await session.scalar(select(Lead.stages_reached).where(Lead.id == uuid.UUID(lead_id)))
    assert value is not None
    return value


async def _create(client: httpx.AsyncClient, admin: Member, name: str, status: str) -> str:
    r = await client.post(
        "/api/v1/leads",
        json={"name": name, "email": f"{name}@example.com", "status": status},
        headers=admin.headers,
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def test_every_door_records_the_stages(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")
    a = await _create(client, admin, "door-a", "new")
    assert await _reached(session, a) == ",new,"

    r = await client.patch(
        f"/api/v1/leads/{a}/status", json={"status": "qualified"}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    assert await _reached(session, a) == ",new,qualified,"

    r = await client.post(
        "/api/v1/leads/bulk",
        json={"ids": [a], "action": "status", "value": "lost"},
        headers=admin.headers,
    )
    assert r.status_code == 200 and r.json()["updated"] == 1, r.text
    assert await _reached(session, a) == ",lost,new,qualified,"

    # Import: a new lead in `contacted`, then an update of it to `proposal`.
    csv = b"Name,E-Mail,Status\ndoor-b,door-b@example.com,contacted\n"
    r = await client.post(
        "/api/v1/leads/import?analyze=false",
        content=csv,
        headers={**admin.headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 200 and r.json()["imported_count"] == 1, r.text
    found = await client.get("/api/v1/leads", params={"q": "door-b"}, headers=admin.headers)
    b = found.json()["items"][0]["id"]
    assert await _reached(session, b) == ",contacted,"
    r = await client.post(
        "/api/v1/leads/import?analyze=false&on_duplicate=update",
        content=b"E-Mail,Status\ndoor-b@example.com,proposal\n",
        headers={**admin.headers, "Content-Type": "text/csv"},
    )
    assert r.status_code == 200 and r.json()["updated_count"] == 1, r.text
    assert await _reached(session, b) == ",contacted,proposal,"

    # A merge brings the other lead's history, and with it its stages.
    r = await client.post(
        f"/api/v1/leads/{b}/merge", json={"other_ids": [a]}, headers=admin.headers
    )
    assert r.status_code == 200, r.text
    assert await _reached(session, b) == ",contacted,lost,new,proposal,qualified,"
    # Not part of the lead's API or audit view.
    assert "stages_reached" not in r.json()


async def test_a_lead_inserted_without_it_has_been_in_its_stage(
    factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    lead = await factory.lead(org, status="contacted")
    assert await _reached(session, str(lead.id)) == ",contacted,"


async def test_funnel_follows_a_reordered_pipeline(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org, "admin")
    lead = await _create(client, admin, "order-a", "new")
    r = await client.patch(
        f"/api/v1/leads/{lead}/status", json={"status": "contacted"}, headers=admin.headers
    )
    assert r.status_code == 200, r.text

    async def funnel() -> list[tuple[str, int]]:
        r = await client.get("/api/v1/analytics/funnel", headers=admin.headers)
        assert r.status_code == 200, r.text
        return [(s["stage"], s["count"]) for s in r.json()]

    assert await funnel() == [
        ("new", 1),
        ("contacted", 1),
        ("qualified", 0),
        ("proposal", 0),
        ("won", 0),
    ]
    # `contacted` moved to the end of the open stages: the lead, which has been in it, has
    # passed every stage before it in the new order.
    stages = (await client.get("/api/v1/pipeline/stages", headers=admin.headers)).json()
    ids = {s["key"]: s["id"] for s in stages}
    order = ["new", "qualified", "proposal", "contacted", "won", "lost"]
    r = await client.post(
        "/api/v1/pipeline/stages/reorder",
        json={"ids": [ids[k] for k in order]},
        headers=admin.headers,
    )
    assert r.status_code == 200, r.text
    assert await funnel() == [
        ("new", 1),
        ("qualified", 1),
        ("proposal", 1),
        ("contacted", 1),
        ("won", 0),
    ]
