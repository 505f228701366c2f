"""/api/v1/tasks: create, list filters, patch, complete, delete, scope."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.clock import clock
from leadflow.models.task import Task
from tests.conftest import new_uuid
from tests.fixtures.factories import Factory

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


async def test_task_lifecycle(client: httpx.AsyncClient, factory: Factory) -> None:
    clock.freeze(NOW)
    org = await factory.org()
    rep = await factory.member(org, "counselor")
    lead = await factory.lead(org, assignee_id=rep.user.id)
    r = await client.post(
        "/api/v1/tasks",
        headers=rep.headers,
        json={
            "title": "Angebot nachfassen",
            "description": "Preisliste anhängen",
            "due_at": (NOW + timedelta(days=1)).isoformat(),
            "priority": "high",
            "lead_id": str(lead.id),
        },
    )
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["assignee_id"] == rep.id and task["status"] == "open"
    assert task["priority"] == "high" and task["overdue"] is False
    url = f"/api/v1/tasks/{task['id']}"
    r = await client.patch(url, headers=rep.headers, json={"title": "Angebot nachfassen (2)"})
    assert r.json()["title"] == "Angebot nachfassen (2)"
    clock.advance(timedelta(days=2))
    rep = await factory.relogin(rep)
    assert (await client.get(url, headers=rep.headers)).json()["overdue"] is True
    done = await client.post(f"{url}/complete", headers=rep.headers)
    assert done.status_code == 200
    body = done.json()
    assert body["status"] == "done" and body["completed_by"] == rep.id
    assert body["completed_at"].startswith("2026-03-04T10:00:00")
    reopened = await client.patch(url, headers=rep.headers, json={"status": "open"})
    assert reopened.json()["completed_at"] is None
    assert (await client.delete(url, headers=rep.headers)).status_code == 204
    assert (await client.get(url, headers=rep.headers)).status_code == 404


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": ""}, "title"),
        ({"title": "x", "priority": "asap"}, "priority"),
        ({"title": "x", "due_at": "tomorrow"}, "due_at"),
        ({"title": "x", "due_at": "2026-01-01T10:00:00"}, "due_at"),
        ({"title": "x", "assignee_id": "00000000-0000-0000-0000-000000000001"}, "assignee_id"),
        ({"title": "x", "colour": "red"}, "colour"),
    ],
)
async def test_create_bad_input_writes_nothing(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    payload: dict[str, object],
    field: str,
) -> None:
    org = await factory.org()
    rep = await factory.member(org, "counselor")
    before = await session.scalar(select(func.count()).select_from(Task))
    r = await client.post("/api/v1/tasks", headers=rep.headers, json=payload)
    assert r.status_code == 422, r.text
    assert any(field in e["loc"] for e in r.json()["errors"])
    assert await session.scalar(select(func.count()).select_from(Task)) == before


async def test_list_filters(client: httpx.AsyncClient, factory: Factory) -> None:
    clock.freeze(NOW)
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    lead = await factory.lead(org)
    h = admin.headers

    async def make(**body: object) -> str:
        r = await client.post("/api/v1/tasks", headers=h, json={"title": "t", **body})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    late = await make(
        title="Rückruf Müller", due_at=(NOW - timedelta(hours=1)).isoformat(), lead_id=str(lead.id)
    )
    soon = await make(
        title="Demo vorbereiten",
        due_at=(NOW + timedelta(hours=5)).isoformat(),
        assignee_id=str(rep.id),
    )
    later = await make(title="Quartalsbericht", due_at=(NOW + timedelta(days=9)).isoformat())
    done = await make(title="Erledigt", due_at=(NOW - timedelta(days=1)).isoformat())
    await client.post(f"/api/v1/tasks/{done}/complete", headers=h)

    async def ids(**params: object) -> list[str]:
        r = await client.get("/api/v1/tasks", headers=h, params=params)  # type: ignore[arg-type]
        assert r.status_code == 200, r.text
        return [t["id"] for t in r.json()["items"]]

    assert await ids(overdue="true") == [late]
    assert await ids(lead_id=str(lead.id)) == [late]
    assert await ids(assigned_to=str(rep.id)) == [soon]
    assert set(await ids(assigned_to="me")) == {late, later, done}
    assert await ids(status="done") == [done]
    assert await ids(status="open") == [late, soon, later]
    assert set(await ids(due_before=(NOW + timedelta(days=1)).isoformat())) == {late, soon, done}
    assert await ids(q="müller") == [late]
    assert (
        await client.get("/api/v1/tasks", headers=h, params={"status": "maybe"})
    ).status_code == 422
    assert (
        await client.get("/api/v1/tasks", headers=h, params={"assigned_to": "bob"})
    ).status_code == 422


async def test_scope_other_org_and_permissions(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.member(org, "counselor")
    other_rep = await factory.member(org, "counselor")
    viewer = await factory.member(org, "viewer")
    my_lead = await factory.lead(org, assignee_id=rep.user.id)
    on_my_lead = (
        await client.post(
            "/api/v1/tasks",
            headers=admin.headers,
            json={
                "title": "for the lead",
                "lead_id": str(my_lead.id),
                "assignee_id": str(other_rep.user.id),
            },
        )
    ).json()
    private = (
        await client.post("/api/v1/tasks", headers=other_rep.headers, json={"title": "mine"})
    ).json()
    visible = {
        t["id"] for t in (await client.get("/api/v1/tasks", headers=rep.headers)).json()["items"]
    }
    assert visible == {on_my_lead["id"]}
    assert (
        await client.get(f"/api/v1/tasks/{private['id']}", headers=rep.headers)
    ).status_code == 404
    # A task on a lead outside the counselor's scope cannot be created.
    foreign_lead = await factory.lead(org, assignee_id=other_rep.user.id)
    r = await client.post(
        "/api/v1/tasks", headers=rep.headers, json={"title": "x", "lead_id": str(foreign_lead.id)}
    )
    assert r.status_code == 404
    outsider = await factory.member(await factory.org())
    for method, suffix, body in [
        ("GET", "", None),
        ("PATCH", "", {"title": "x"}),
        ("POST", "/complete", None),
        ("DELETE", "", None),
    ]:
        r = await client.request(
            method, f"/api/v1/tasks/{private['id']}{suffix}", headers=outsider.headers, json=body
        )
        assert r.status_code == 404, (method, suffix)
    assert (
        await client.get(f"/api/v1/tasks/{new_uuid()}", headers=admin.headers)
    ).status_code == 404
    assert (
        await client.post("/api/v1/tasks", headers=viewer.headers, json={"title": "x"})
    ).status_code == 403
    assert (await client.get("/api/v1/tasks", headers=viewer.headers)).status_code == 200
    audit = (
        await client.get(
            "/api/v1/admin/audit-logs", headers=admin.headers, params={"resource": "task"}
        )
    ).json()
    assert {i["action"] for i in audit["items"]} == {"task.create"}
