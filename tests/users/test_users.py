"""/api/v1/users: create, list, get, patch, deactivate; roles and teams."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.user import User
from tests.conftest import new_uuid
from tests.fixtures.factories import Factory


async def _users(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.count()).select_from(User)) or 0)


async def test_admin_creates_user_who_can_log_in(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    team = await factory.team(org)
    r = await client.post(
        "/api/v1/users",
        headers=admin.headers,
        json={
            "email": "New.Rep@Example.com",
            "full_name": "New Rep",
            "role": "counselor",
            "password": "rep-password-1",
            "team_id": str(team.id),
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["email"] == "new.rep@example.com"
    assert body["role"] == "counselor"
    assert body["team_id"] == str(team.id)
    assert "password_hash" not in body and "password" not in body
    login = await client.post(
        "/api/v1/auth/login", json={"email": "new.rep@example.com", "password": "rep-password-1"}
    )
    assert login.status_code == 200
    alias = await client.get(f"/api/users/{body['id']}", headers=admin.headers)
    assert alias.status_code == 200


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        ({"email": "bad", "full_name": "X", "role": "counselor"}, 422, "validation_error"),
        ({"email": "x@example.com", "full_name": "X", "role": "wizard"}, 422, "validation_error"),
        (
            {"email": "x@example.com", "full_name": "X", "role": "counselor", "password": "short"},
            422,
            "validation_error",
        ),
        (
            {"email": "x@example.com", "full_name": "X", "role": "counselor", "extra": 1},
            422,
            "validation_error",
        ),
        (
            {
                "email": "x@example.com",
                "full_name": "X",
                "role": "counselor",
                "team_id": "00000000-0000-0000-0000-000000000000",
            },
            404,
            "not_found",
        ),
    ],
)
async def test_create_user_bad_input_writes_nothing(
    client: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
    payload: dict[str, object],
    status: int,
    code: str,
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    before = await _users(session)
    r = await client.post("/api/v1/users", headers=admin.headers, json=payload)
    assert r.status_code == status, r.text
    assert r.json()["code"] == code
    assert await _users(session) == before


async def test_duplicate_email_is_409(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    other = await factory.user(await factory.org())
    r = await client.post(
        "/api/v1/users",
        headers=admin.headers,
        json={"email": other.email, "full_name": "Dup", "role": "viewer"},
    )
    assert r.status_code == 409
    assert r.json()["code"] == "email_taken"


@pytest.mark.parametrize("role", ["counselor", "viewer", "manager"])
async def test_non_admins_cannot_manage_users(
    client: httpx.AsyncClient, factory: Factory, role: str
) -> None:
    org = await factory.org()
    m = await factory.member(org, role)
    target = await factory.user(org, "counselor")
    r = await client.post(
        "/api/v1/users",
        headers=m.headers,
        json={"email": "z@example.com", "full_name": "Z", "role": "viewer"},
    )
    assert r.status_code == 403
    assert r.json()["code"] == "missing_permission"
    assert (
        await client.patch(
            f"/api/v1/users/{target.id}", headers=m.headers, json={"full_name": "Hacked"}
        )
    ).status_code == 403
    assert (await client.delete(f"/api/v1/users/{target.id}", headers=m.headers)).status_code == 403
    # Reading the member list is allowed (to pick assignees).
    assert (await client.get("/api/v1/users", headers=m.headers)).status_code == 200


async def test_list_filters_and_paginates(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    for _ in range(3):
        await factory.user(org, "counselor")
    await factory.user(org, "viewer", status="inactive")
    await factory.user(await factory.org(), "counselor")  # another organisation
    r = await client.get(
        "/api/v1/users", headers=admin.headers, params={"role": "counselor", "limit": 2}
    )
    body = r.json()
    assert body["total"] == 3 and body["limit"] == 2 and body["offset"] == 0
    assert len(body["items"]) == 2
    assert {u["role"] for u in body["items"]} == {"counselor"}
    r = await client.get("/api/v1/users", headers=admin.headers, params={"status": "inactive"})
    assert r.json()["total"] == 1
    r = await client.get(
        "/api/v1/users", headers=admin.headers, params={"search": admin.user.email.split("@")[0]}
    )
    assert [u["id"] for u in r.json()["items"]] == [admin.id]
    assert (
        await client.get("/api/v1/users", headers=admin.headers, params={"limit": 501})
    ).status_code == 422


async def test_patch_changes_role_team_and_status(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    team = await factory.team(org)
    rep = await factory.member(org, "counselor")
    r = await client.patch(
        f"/api/v1/users/{rep.id}",
        headers=admin.headers,
        json={"role": "manager", "team_id": str(team.id), "full_name": "Promoted"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["role"] == "manager" and r.json()["full_name"] == "Promoted"
    me = await client.get("/api/v1/auth/me", headers=rep.headers)
    assert me.json()["role"] == "manager"
    r = await client.patch(
        f"/api/v1/users/{rep.id}", headers=admin.headers, json={"status": "inactive"}
    )
    assert r.json()["status"] == "inactive"
    assert (await client.get("/api/v1/auth/me", headers=rep.headers)).status_code == 401
    bad = await client.patch(
        f"/api/v1/users/{rep.id}", headers=admin.headers, json={"status": "sleeping"}
    )
    assert bad.status_code == 422


async def test_admin_cannot_lock_themselves_out(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    assert (
        await client.delete(f"/api/v1/users/{admin.id}", headers=admin.headers)
    ).status_code == 409
    r = await client.patch(
        f"/api/v1/users/{admin.id}", headers=admin.headers, json={"role": "viewer"}
    )
    assert r.status_code == 409


async def test_unknown_user_is_404(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.get(f"/api/v1/users/{new_uuid()}", headers=admin.headers)
    assert r.status_code == 404
    assert (await client.get("/api/v1/users/not-a-uuid", headers=admin.headers)).status_code == 422


async def test_custom_role_grants_exactly_its_permissions(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        "/api/v1/admin/roles",
        headers=admin.headers,
        json={"name": "auditor", "permissions": ["admin:audit", "users:read"], "row_scope": "org"},
    )
    assert r.status_code == 201, r.text
    role_id = r.json()["id"]
    bad = await client.post(
        "/api/v1/admin/roles",
        headers=admin.headers,
        json={"name": "x1", "permissions": ["leads:fly"]},
    )
    assert bad.status_code == 422
    await client.post(
        "/api/v1/users",
        headers=admin.headers,
        json={
            "email": "aud@example.com",
            "full_name": "Aud",
            "role": "auditor",
            "password": "auditor-pass-1",
        },
    )
    tok = (
        await client.post(
            "/api/v1/auth/login", json={"email": "aud@example.com", "password": "auditor-pass-1"}
        )
    ).json()["access_token"]
    h = {"Authorization": f"Bearer {tok}"}
    assert (await client.get("/api/v1/admin/audit-logs", headers=h)).status_code == 200
    assert (await client.get("/api/v1/admin/api-keys", headers=h)).status_code == 403
    assert (
        await client.delete(f"/api/v1/admin/roles/{role_id}", headers=admin.headers)
    ).status_code == 409  # still in use
    roles = (await client.get("/api/v1/admin/roles", headers=admin.headers)).json()
    system = {r["name"]: r for r in roles if r["is_system"]}
    assert set(system) == {"admin", "manager", "counselor", "viewer"}
    assert (
        await client.patch(
            f"/api/v1/admin/roles/{system['admin']['id']}",
            headers=admin.headers,
            json={"permissions": []},
        )
    ).status_code == 409


async def test_teams_crud(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.member(org, "counselor")
    r = await client.post("/api/v1/teams", headers=admin.headers, json={"name": "Nord"})
    assert r.status_code == 201
    team_id = r.json()["id"]
    assert (
        await client.post("/api/v1/teams", headers=admin.headers, json={"name": "Nord"})
    ).status_code == 409
    assert (
        await client.post("/api/v1/teams", headers=rep.headers, json={"name": "Süd"})
    ).status_code == 403
    r = await client.patch(
        f"/api/v1/teams/{team_id}", headers=admin.headers, json={"name": "Nord-Ost"}
    )
    assert r.json()["name"] == "Nord-Ost"
    assert [t["name"] for t in (await client.get("/api/v1/teams", headers=rep.headers)).json()] == [
        "Nord-Ost"
    ]
    assert (
        await client.delete(f"/api/v1/teams/{team_id}", headers=admin.headers)
    ).status_code == 204
