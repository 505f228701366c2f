"""An API key is bounded by its creator: current role, row scope, team and status."""

from __future__ import annotations

import httpx
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.user import User
from tests.fixtures.factories import Factory, Member


async def _key(client: httpx.AsyncClient, creator: Member, scopes: list[str]) -> dict[str, str]:
    r = await client.post(
        "/api/v1/admin/api-keys", headers=creator.headers, json={"name": "CRM", "scopes": scopes}
    )
    assert r.status_code == 201, r.text
    return {"X-API-Key": r.json()["api_key"]}


async def test_demoted_creator_shrinks_the_key(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    boss = await factory.member(org)
    creator = await factory.member(org)
    await factory.lead(org, assignee_id=creator.user.id)
    await factory.lead(org, assignee_id=boss.user.id)
    key = await _key(client, creator, ["leads:read", "users:read", "admin:audit"])
    assert (await client.get("/api/v1/admin/audit-logs", headers=key)).status_code == 200
    assert (await client.get("/api/v1/leads", headers=key)).json()["total"] == 2

    r = await client.patch(
        f"/api/v1/users/{creator.id}", headers=boss.headers, json={"role": "counselor"}
    )
    assert r.status_code == 200, r.text

    denied = await client.get("/api/v1/admin/audit-logs", headers=key)
    assert denied.status_code == 403
    assert denied.json()["code"] == "missing_permission"
    # Still within the counselor's rights, but with the counselor's row scope: own leads only.
    leads = (await client.get("/api/v1/leads", headers=key)).json()
    assert [i["assignee_id"] for i in leads["items"]] == [creator.id]
    me = (await client.get("/api/v1/auth/me", headers=key)).json()
    assert me["permissions"] == ["leads:read", "users:read"]


async def test_key_of_a_creator_made_manager_sees_the_team_only(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    north, south = await factory.team(org), await factory.team(org)
    creator = await factory.member(org, team=north)
    mate = await factory.user(org, "counselor", team=north)
    stranger = await factory.user(org, "counselor", team=south)
    await factory.lead(org, assignee_id=mate.id)
    await factory.lead(org, assignee_id=stranger.id)
    await factory.lead(org, assignee_id=admin.user.id)
    key = await _key(client, creator, ["leads:read"])
    assert (await client.get("/api/v1/leads", headers=key)).json()["total"] == 3
    r = await client.patch(
        f"/api/v1/users/{creator.id}", headers=admin.headers, json={"role": "manager"}
    )
    assert r.status_code == 200, r.text
    items = (await client.get("/api/v1/leads", headers=key)).json()["items"]
    assert [i["assignee_id"] for i in items] == [str(mate.id)]


async def test_deactivated_creator_locks_the_key_out(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    boss = await factory.member(org)
    creator = await factory.member(org)
    key = await _key(client, creator, ["users:read", "admin:users"])
    assert (await client.get("/api/v1/users", headers=key)).status_code == 200

    assert (
        await client.delete(f"/api/v1/users/{creator.id}", headers=boss.headers)
    ).status_code == 204

    r = await client.get("/api/v1/users", headers=key)
    assert r.status_code == 401
    assert r.json()["code"] == "api_key_creator_inactive"
    # The key holds admin:users, yet cannot bring its creator back.
    revive = await client.patch(
        f"/api/v1/users/{creator.id}", headers=key, json={"status": "active"}
    )
    assert revive.status_code == 401
    user = await session.get(User, creator.user.id, populate_existing=True)
    assert user is not None and user.status == "inactive"


async def test_keys_are_refused_on_personal_endpoints(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    creator = await factory.member(org)
    key = await _key(client, creator, ["users:read"])
    personal = [
        ("GET", "/api/v1/notifications"),
        ("GET", "/api/v1/notifications/unread-count"),
        ("GET", "/api/v1/notifications/stream?max_events=1&max_seconds=1"),
        ("POST", "/api/v1/notifications/read-all"),
        ("POST", "/api/v1/notifications/00000000-0000-0000-0000-000000000001/read"),
        ("POST", "/api/v1/auth/logout"),
    ]
    for method, url in personal:
        r = await client.request(method, url, headers=key)
        assert r.status_code == 403, (url, r.text)
        assert r.json()["code"] == "person_required"
    # The person themself still gets through.
    assert (await client.get("/api/v1/notifications", headers=creator.headers)).status_code == 200
    assert (
        await client.get("/api/v1/notifications", headers={"X-API-Key": "lf_nope"})
    ).status_code == 401


async def test_a_key_cannot_mint_keys(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    creator = await factory.member(org)
    key = await _key(client, creator, ["admin:api_keys", "users:read"])
    r = await client.post(
        "/api/v1/admin/api-keys", headers=key, json={"name": "child", "scopes": ["users:read"]}
    )
    assert r.status_code == 403 and r.json()["code"] == "person_required"
    listed = (await client.get("/api/v1/admin/api-keys", headers=creator.headers)).json()
    assert [k["name"] for k in listed] == [listed[0]["name"]]
