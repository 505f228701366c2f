"""Interactions move last contact forward; message events; unsubscribe revokes consent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from leadflow.kit.clock import clock
from tests.fixtures.factories import Factory

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


async def test_interaction_moves_last_contact_forward_only(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clock.freeze(NOW)
    org = await factory.org()
    rep = await factory.member(org, "counselor")
    lead = await factory.lead(org, assignee_id=rep.user.id, needs_action=True)
    url = f"/api/v1/leads/{lead.id}/interactions"
    r = await client.post(
        url,
        headers=rep.headers,
        json={
            "type": "call",
            "direction": "outbound",
            "outcome": "reached",
            "duration_seconds": 240,
            "body": "Angebot besprochen",
        },
    )
    assert r.status_code == 201, r.text
    detail = (await client.get(f"/api/v1/leads/{lead.id}", headers=rep.headers)).json()
    assert detail["last_contacted_at"].startswith("2026-03-02T10:00:00")
    assert detail["needs_action"] is False
    older = (NOW - timedelta(days=3)).isoformat()
    r = await client.post(
        url,
        headers=rep.headers,
        json={"type": "email", "direction": "inbound", "occurred_at": older},
    )
    assert r.status_code == 201
    detail = (await client.get(f"/api/v1/leads/{lead.id}", headers=rep.headers)).json()
    assert detail["last_contacted_at"].startswith("2026-03-02T10:00:00")
    listing = (await client.get(url, headers=rep.headers)).json()
    assert listing["total"] == 2
    assert [i["type"] for i in listing["items"]] == ["call", "email"]
    assert (await client.get(url, headers=rep.headers, params={"limit": 1, "offset": 1})).json()[
        "items"
    ][0]["type"] == "email"


async def test_notes_do_not_count_as_contact_and_setting_is_respected(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    lead = await factory.lead(org, needs_action=True)
    url = f"/api/v1/leads/{lead.id}/interactions"
    await client.post(url, headers=admin.headers, json={"type": "note", "body": "intern"})
    detail = (await client.get(f"/api/v1/leads/{lead.id}", headers=admin.headers)).json()
    assert detail["last_contacted_at"] is None and detail["needs_action"] is True
    r = await client.patch(
        "/api/v1/admin/settings",
        headers=admin.headers,
        json={"clear_needs_action_on_interaction": False},
    )
    assert r.status_code == 200 and r.json()["clear_needs_action_on_interaction"] is False
    await client.post(url, headers=admin.headers, json={"type": "whatsapp"})
    detail = (await client.get(f"/api/v1/leads/{lead.id}", headers=admin.headers)).json()
    assert detail["needs_action"] is True and detail["last_contacted_at"] is not None


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "fax"},
        {"type": "call", "direction": "sideways"},
        {"type": "call", "occurred_at": "2026-01-01T10:00:00"},
        {"type": "call", "duration_seconds": -1},
        {"type": "call", "mood": "good"},
    ],
)
async def test_interaction_bad_input(
    client: httpx.AsyncClient, factory: Factory, payload: dict[str, object]
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    lead = await factory.lead(org)
    r = await client.post(
        f"/api/v1/leads/{lead.id}/interactions", headers=admin.headers, json=payload
    )
    assert r.status_code == 422
    listing = (
        await client.get(f"/api/v1/leads/{lead.id}/interactions", headers=admin.headers)
    ).json()
    assert listing["total"] == 0


async def test_events_ordered_and_unsubscribe_revokes_consent(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    key = (
        await client.post(
            "/api/v1/admin/api-keys",
            headers=admin.headers,
            json={"name": "ESP", "scopes": ["events:write", "leads:read"]},
        )
    ).json()["api_key"]
    integ = {"X-API-Key": key}
    lead = await factory.lead(org)
    await client.post(
        f"/api/v1/leads/{lead.id}/consents",
        headers=admin.headers,
        json={"channel": "email", "granted": True, "source": "form"},
    )
    url = f"/api/v1/leads/{lead.id}/events"
    times = {
        "sent": "2026-03-01T09:00:00Z",
        "delivered": "2026-03-01T09:01:00Z",
        "opened": "2026-03-01T12:00:00Z",
        "unsubscribed": "2026-03-02T08:00:00Z",
    }
    for event_type in ("opened", "sent", "unsubscribed", "delivered"):
        r = await client.post(
            url,
            headers=integ,
            json={
                "type": event_type,
                "channel": "email",
                "message_id": "msg-1",
                "occurred_at": times[event_type],
            },
        )
        assert r.status_code == 201, r.text
    listing = (await client.get(url, headers=admin.headers)).json()
    assert [e["type"] for e in listing["items"]] == ["unsubscribed", "opened", "delivered", "sent"]
    alias = (await client.get(f"/leads/{lead.id}/events", headers=admin.headers)).json()
    assert alias == listing
    detail = (await client.get(f"/api/v1/leads/{lead.id}", headers=admin.headers)).json()
    assert detail["consents"]["email"]["granted"] is False
    assert detail["consents"]["email"]["source"].startswith("unsubscribed")
    assert (await client.post(url, headers=integ, json={"type": "exploded"})).status_code == 422


async def test_events_need_events_write(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    rep = await factory.member(org, "counselor")
    lead = await factory.lead(org, assignee_id=rep.user.id)
    r = await client.post(
        f"/api/v1/leads/{lead.id}/events", headers=rep.headers, json={"type": "sent"}
    )
    assert r.status_code == 403
    outsider = await factory.member(await factory.org())
    for method, path, body in [
        ("GET", "events", None),
        ("POST", "events", {"type": "sent"}),
        ("GET", "interactions", None),
        ("POST", "interactions", {"type": "call"}),
    ]:
        r = await client.request(
            method, f"/api/v1/leads/{lead.id}/{path}", headers=outsider.headers, json=body
        )
        assert r.status_code == 404, (method, path)
    viewer = await factory.member(org, "viewer")
    assert (
        await client.post(
            f"/api/v1/leads/{lead.id}/interactions", headers=viewer.headers, json={"type": "call"}
        )
    ).status_code == 403
