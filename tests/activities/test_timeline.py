"""The lead timeline: every kind, newest first, filterable, paginated, extensible."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from leadflow.kit.clock import clock
from leadflow.timeline.registry import TimelineEntry, TimelineSource, register_source, sources
from tests.fixtures.factories import Factory

T0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)


async def test_timeline_merges_all_kinds_newest_first(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    clock.freeze(T0)
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    h = admin.headers
    lead = (
        await client.post("/api/v1/leads", headers=h, json={"first_name": "Tina", "notes": "a"})
    ).json()
    lid = lead["id"]
    steps = [
        ("POST", f"/api/v1/leads/{lid}/interactions", {"type": "call", "subject": "Erstgespräch"}),
        ("PATCH", f"/api/v1/leads/{lid}/status", {"status": "contacted"}),
        ("POST", f"/api/v1/leads/{lid}/assign", {"assignee_id": str(rep.id)}),
        (
            "POST",
            f"/api/v1/leads/{lid}/consents",
            {"channel": "sms", "granted": True, "source": "call"},
        ),
        ("PATCH", f"/api/v1/leads/{lid}/notes", {"notes": "b"}),
        ("POST", f"/api/v1/leads/{lid}/events", {"type": "sent", "channel": "email"}),
        ("POST", "/api/v1/tasks", {"title": "Angebot", "lead_id": lid}),
    ]
    for method, url, body in steps:
        clock.advance(timedelta(minutes=1))
        r = await client.request(method, url, headers=h, json=body)
        assert r.status_code in (200, 201), (url, r.text)
    task_id = r.json()["id"]
    clock.advance(timedelta(minutes=1))
    await client.post(f"/api/v1/tasks/{task_id}/complete", headers=h)

    body = (await client.get(f"/api/v1/leads/{lid}/timeline", headers=h)).json()
    kinds = [i["kind"] for i in body["items"]]
    assert kinds == [
        "task_completed",
        "task_created",
        "message_event",
        "note_edit",
        "consent",
        "assignment",
        "status_change",
        "interaction",
        "status_change",
    ]
    assert body["total"] == 9
    first = body["items"][0]
    assert first["actor"] == {"id": admin.id, "name": admin.user.full_name}
    assert first["summary"] == "Task completed: Angebot"
    stamps = [i["occurred_at"] for i in body["items"]]
    assert stamps == sorted(stamps, reverse=True)
    note = next(i for i in body["items"] if i["kind"] == "note_edit")
    assert note["data"] == {"before": "a", "after": "b"}

    only = (
        await client.get(
            f"/api/v1/leads/{lid}/timeline",
            headers=h,
            params={"kind": ["status_change", "interaction"]},
        )
    ).json()
    assert [i["kind"] for i in only["items"]] == ["status_change", "interaction", "status_change"]
    assert only["total"] == 3
    paged = (
        await client.get(
            f"/api/v1/leads/{lid}/timeline", headers=h, params={"limit": 2, "offset": 2}
        )
    ).json()
    assert [i["kind"] for i in paged["items"]] == kinds[2:4]
    bad = await client.get(f"/api/v1/leads/{lid}/timeline", headers=h, params={"kind": "gossip"})
    assert bad.status_code == 422


async def test_other_modules_register_kinds(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    lead = await factory.lead(org)

    async def fetch(_s: AsyncSession, lead_id: uuid.UUID, n: int) -> list[TimelineEntry]:
        return [
            TimelineEntry(
                kind="test_kind",
                occurred_at=datetime(2030, 1, 1, tzinfo=UTC),
                actor_user_id=None,
                summary=f"extra for {lead_id}",
                id="t:1",
            )
        ][:n]

    async def count(_s: AsyncSession, _lead_id: uuid.UUID) -> int:
        return 1

    register_source(TimelineSource("test_kind", fetch, count))
    try:
        body = (await client.get(f"/api/v1/leads/{lead.id}/timeline", headers=admin.headers)).json()
        assert body["items"][0]["kind"] == "test_kind"
        assert body["items"][0]["summary"] == f"extra for {lead.id}"
        assert body["items"][0]["actor"] is None
    finally:
        from leadflow.timeline import registry

        registry._SOURCES.pop("test_kind", None)
    assert "test_kind" not in sources()


async def test_timeline_scope(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    rep = await factory.member(org, "counselor")
    lead = await factory.lead(org)
    assert (
        await client.get(f"/api/v1/leads/{lead.id}/timeline", headers=rep.headers)
    ).status_code == 404
    outsider = await factory.member(await factory.org())
    assert (
        await client.get(f"/api/v1/leads/{lead.id}/timeline", headers=outsider.headers)
    ).status_code == 404


async def test_repeated_kinds_are_collapsed(
    client: httpx.AsyncClient, factory: Factory, conn: AsyncConnection
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    h = admin.headers
    lid = (await client.post("/api/v1/leads", headers=h, json={"first_name": "Rita"})).json()["id"]
    await client.patch(f"/api/v1/leads/{lid}/status", headers=h, json={"status": "contacted"})
    statements: list[str] = []

    def seen(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(conn.sync_connection, "before_cursor_execute", seen)
    try:
        r = await client.get(
            f"/api/v1/leads/{lid}/timeline",
            headers=h,
            params={"kind": ["status_change"] * 1000 + ["interaction"] * 1000},
        )
    finally:
        event.remove(conn.sync_connection, "before_cursor_execute", seen)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 2
    assert [i["kind"] for i in body["items"]] == ["status_change", "status_change"]
    assert len({i["id"] for i in body["items"]}) == 2
    # One fetch and one count per distinct kind, not per repetition.
    assert sum("FROM lead_status_history" in s for s in statements) == 2
    assert sum("FROM interactions" in s for s in statements) == 2
    bad = await client.get(
        f"/api/v1/leads/{lid}/timeline",
        headers=h,
        params={"kind": ["status_change"] * 10 + [f"nope{i}" for i in range(100)]},
    )
    assert bad.status_code == 422
    assert bad.json()["code"] == "validation_error"
    assert "nope99" not in bad.json()["detail"]  # a few are named, not all
