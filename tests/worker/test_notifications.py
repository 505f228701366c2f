"""In-app notifications: list, unread filter and count, read, read-all, SSE stream."""

from __future__ import annotations

import json

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.notifications.service import notify
from tests.conftest import new_uuid
from tests.fixtures.factories import Factory


async def test_notifications_flow(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    rep = await factory.member(org, "counselor")
    other = await factory.member(org, "counselor")
    ids = []
    for i in range(3):
        n = await notify(
            session, organization_id=org.id, user_id=rep.user.id, kind="test", title=f"Hinweis {i}"
        )
        assert n is not None
        ids.append(str(n.id))
    theirs = await notify(
        session, organization_id=org.id, user_id=other.user.id, kind="test", title="not yours"
    )
    assert theirs is not None
    assert (
        await notify(
            session,
            organization_id=org.id,
            user_id=rep.user.id,
            kind="test",
            title="dup",
            delivery_key="k1",
        )
        is not None
    )
    assert (
        await notify(
            session,
            organization_id=org.id,
            user_id=rep.user.id,
            kind="test",
            title="dup",
            delivery_key="k1",
        )
        is None
    )
    await session.commit()
    h = rep.headers
    assert (await client.get("/api/v1/notifications/unread-count", headers=h)).json() == {
        "unread": 4
    }
    r = await client.post(f"/api/v1/notifications/{ids[0]}/read", headers=h)
    assert r.status_code == 200 and r.json()["read_at"] is not None
    unread = (
        await client.get("/api/v1/notifications", headers=h, params={"unread": "true"})
    ).json()
    assert unread["total"] == 3 and ids[0] not in [n["id"] for n in unread["items"]]
    assert (
        await client.post(f"/api/v1/notifications/{theirs.id}/read", headers=h)
    ).status_code == 404
    assert (
        await client.post(f"/api/v1/notifications/{new_uuid()}/read", headers=h)
    ).status_code == 404
    assert (await client.post("/api/v1/notifications/read-all", headers=h)).json() == {"updated": 3}
    assert (await client.get("/api/v1/notifications/unread-count", headers=h)).json() == {
        "unread": 0
    }
    assert (
        await client.get("/api/v1/notifications/unread-count", headers=other.headers)
    ).json() == {"unread": 1}


async def test_stream_sends_server_sent_events(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    rep = await factory.member(org, "counselor")
    first = await notify(
        session,
        organization_id=org.id,
        user_id=rep.user.id,
        kind="lead_assigned",
        title="Neuer Lead",
    )
    second = await notify(
        session,
        organization_id=org.id,
        user_id=rep.user.id,
        kind="sla_reminder",
        title="SLA bald fällig",
    )
    assert first is not None and second is not None
    await session.commit()
    r = await client.get(
        "/api/v1/notifications/stream", headers=rep.headers, params={"max_events": 2}
    )
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert [e["title"] for e in events] == ["Neuer Lead", "SLA bald fällig"]
    resumed = await client.get(
        "/api/v1/notifications/stream",
        headers=rep.headers,
        params={"max_events": 1, "max_seconds": 0.5, "after": str(first.id)},
    )
    data = [json.loads(x[6:]) for x in resumed.text.splitlines() if x.startswith("data: ")]
    assert [e["id"] for e in data] == [str(second.id)]
    assert (await client.get("/api/v1/notifications/stream")).status_code == 401
