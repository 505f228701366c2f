"""A lead's detail shows its SLA clock (policy, deadline, reminder, state) the way
/sla/status computes it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from leadflow.kit.clock import clock
from tests.fixtures.factories import Factory, Member

TUESDAY_10_BERLIN = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)


async def _clock(client: httpx.AsyncClient, who: Member, lead_id: object) -> dict[str, Any]:
    r = await client.get(f"/api/v1/leads/{lead_id}", headers=who.headers)
    assert r.status_code == 200, r.text
    sla: dict[str, Any] = r.json()["sla"]
    return sla


async def _status_ids(client: httpx.AsyncClient, who: Member, state: str) -> list[str]:
    r = await client.get("/api/v1/sla/status", headers=who.headers, params={"state": state})
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["items"]]


def _same_instant(a: str | None, b: datetime) -> bool:
    return a is not None and datetime.fromisoformat(a.replace("Z", "+00:00")) == b


async def test_detail_shows_policy_deadline_reminder_and_state(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clock.freeze(TUESDAY_10_BERLIN)
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    r = await client.post(
        "/api/v1/sla/policies",
        headers=admin.headers,
        json={"name": "Hot", "duration_minutes": 60, "reminder_minutes_before": 15},
    )
    assert r.status_code == 201, r.text
    policy = r.json()
    lead = await factory.lead(org, created_by=admin.user.id)
    met = await factory.lead(org, created_by=admin.user.id)

    before = await _clock(client, admin, lead.id)
    assert before == {
        "state": "none",
        "policy": None,
        "deadline": None,
        "reminder_at": None,
        "reminded_at": None,
        "met_at": None,
        "breached_at": None,
    }
    for one in (lead, met):
        r = await client.post(
            f"/api/v1/leads/{one.id}/assign",
            headers=admin.headers,
            json={"assignee_id": str(rep.id)},
        )
        assert r.status_code == 200, r.text
        # Every detail answer carries the clock, the assignment's own answer too.
        assert r.json()["sla"]["state"] == "running"

    running = await _clock(client, admin, lead.id)
    assert running["state"] == "running"
    assert running["policy"] == {"id": policy["id"], "name": "Hot"}
    deadline = TUESDAY_10_BERLIN + timedelta(minutes=60)
    assert _same_instant(running["deadline"], deadline)
    assert _same_instant(running["reminder_at"], deadline - timedelta(minutes=15))

    r = await client.patch(
        f"/api/v1/leads/{met.id}/status", headers=admin.headers, json={"status": "contacted"}
    )
    assert r.status_code == 200, r.text
    met_clock = await _clock(client, admin, met.id)
    assert met_clock["state"] == "met" and _same_instant(met_clock["met_at"], TUESDAY_10_BERLIN)

    # The state moves with time exactly as /sla/status sees it.
    for at, state in [
        (deadline - timedelta(minutes=10), "at_risk"),
        (deadline + timedelta(minutes=1), "breached"),
    ]:
        clock.freeze(at)
        admin = await factory.relogin(admin)
        assert (await _clock(client, admin, lead.id))["state"] == state
        assert str(lead.id) in await _status_ids(client, admin, state)
    assert str(met.id) in await _status_ids(client, admin, "met")


async def test_default_clock_has_no_policy_and_a_deleted_policy_keeps_its_id(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clock.freeze(TUESDAY_10_BERLIN)
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    plain = await factory.lead(org, created_by=admin.user.id)
    vip = await factory.lead(org, created_by=admin.user.id, tags=["vip"])
    r = await client.post(
        "/api/v1/sla/policies",
        headers=admin.headers,
        json={"name": "VIP", "duration_minutes": 30, "conditions": {"tags": ["vip"]}},
    )
    policy = r.json()
    for one in (plain, vip):
        r = await client.post(
            f"/api/v1/leads/{one.id}/assign",
            headers=admin.headers,
            json={"assignee_id": str(rep.id)},
        )
        assert r.status_code == 200, r.text
    default = await _clock(client, admin, plain.id)
    assert default["state"] == "running" and default["policy"] is None
    assert _same_instant(default["deadline"], TUESDAY_10_BERLIN + timedelta(minutes=120))
    assert (await _clock(client, admin, vip.id))["policy"] == {"id": policy["id"], "name": "VIP"}
    r = await client.delete(f"/api/v1/sla/policies/{policy['id']}", headers=admin.headers)
    assert r.status_code == 204
    assert (await _clock(client, admin, vip.id))["policy"] == {"id": policy["id"], "name": None}
