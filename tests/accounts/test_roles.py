"""/api/v1/admin/roles as seed 003 lists them and /api/v1/admin/permissions: system roles
fixed, a role in use kept, bad input refused, and permission changes live at once."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.authz.permissions import ALL_PERMISSIONS, PERMISSION_DESCRIPTIONS
from leadflow.models.audit_log import AuditLog
from leadflow.models.role import Role
from tests.accounts.helpers import audit_actions, count, custom_role
from tests.conftest import new_uuid
from tests.fixtures.factories import Factory

ROLES = "/api/v1/admin/roles"


def test_every_permission_is_described() -> None:
    assert set(PERMISSION_DESCRIPTIONS) == set(ALL_PERMISSIONS)
    assert all(len(d) >= 10 for d in PERMISSION_DESCRIPTIONS.values())


async def test_the_catalogue_is_published(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.get("/api/v1/admin/permissions", headers=admin.headers)
    assert r.status_code == 200
    assert r.json() == [
        {"name": p, "description": PERMISSION_DESCRIPTIONS[p]} for p in ALL_PERMISSIONS
    ]
    rep = await factory.member(org, "manager")
    r = await client.get("/api/v1/admin/permissions", headers=rep.headers)
    assert (r.status_code, r.json()["code"]) == (403, "missing_permission")


async def test_roles_in_the_seed_shape_and_system_roles_fixed(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    roles = (await client.get(ROLES, headers=admin.headers)).json()
    assert [(r["name"], r["is_system"]) for r in roles] == [
        ("admin", True),
        ("counselor", True),
        ("manager", True),
        ("viewer", True),
    ]
    assert set(roles[0]) == {"id", "name", "description", "permissions", "is_system", "row_scope"}
    assert roles[0]["permissions"] == list(ALL_PERMISSIONS)
    for role in roles:
        r = await client.patch(
            f"{ROLES}/{role['id']}", headers=admin.headers, json={"description": "mine"}
        )
        assert (r.status_code, r.json()["code"]) == (409, "system_role"), role["name"]
        r = await client.delete(f"{ROLES}/{role['id']}", headers=admin.headers)
        assert (r.status_code, r.json()["code"]) == (409, "system_role"), role["name"]
    assert await count(session, Role, Role.organization_id == org.id) == 4
    assert await audit_actions(session, org.id) == []


async def test_custom_role_lifecycle_and_in_use(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(
        ROLES,
        headers=admin.headers,
        json={"name": "auditor", "description": "Reads the trail", "permissions": ["admin:audit"]},
    )
    assert r.status_code == 201, r.text
    role = r.json()
    assert {k: role[k] for k in ("name", "description", "permissions", "is_system")} == {
        "name": "auditor",
        "description": "Reads the trail",
        "permissions": ["admin:audit"],
        "is_system": False,
    }
    r = await client.patch(
        f"{ROLES}/{role['id']}",
        headers=admin.headers,
        json={"permissions": ["admin:audit", "users:read"]},
    )
    assert r.json()["permissions"] == ["admin:audit", "users:read"]
    holder = await factory.user(org, "auditor")
    r = await client.delete(f"{ROLES}/{role['id']}", headers=admin.headers)
    assert (r.status_code, r.json()["code"]) == (409, "role_in_use")
    await client.patch(
        f"/api/v1/admin/users/{holder.id}", headers=admin.headers, json={"role": "viewer"}
    )
    assert (await client.delete(f"{ROLES}/{role['id']}", headers=admin.headers)).status_code == 204
    assert await audit_actions(session, org.id) == [
        "role.create",
        "role.update",
        "user.update",
        "role.delete",
    ]


async def test_permission_changes_reach_live_tokens_at_once(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    role = await custom_role(session, org, "reporter", ["users:read", "admin:api_keys"])
    member = await factory.member(org, "reporter")  # signed in before the change
    audit = "/api/v1/admin/audit-logs"
    r = await client.get(audit, headers=member.headers)
    assert (r.status_code, r.json()["code"]) == (403, "missing_permission")
    r = await client.patch(
        f"{ROLES}/{role.id}",
        headers=admin.headers,
        json={"permissions": ["users:read", "admin:api_keys", "admin:audit"]},
    )
    assert r.status_code == 200
    assert (await client.get(audit, headers=member.headers)).status_code == 200
    me = (await client.get("/api/v1/auth/me", headers=member.headers)).json()
    assert me["permissions"] == ["admin:api_keys", "admin:audit", "users:read"]
    created = await client.post(
        "/api/v1/admin/api-keys",
        headers=member.headers,
        json={"name": "trail", "scopes": ["admin:audit"]},
    )
    key = {"X-API-Key": created.json()["api_key"]}
    assert (await client.get(audit, headers=key)).status_code == 200
    await client.patch(
        f"{ROLES}/{role.id}",
        headers=admin.headers,
        json={"permissions": ["users:read", "admin:api_keys"]},
    )
    # Both the member's token and the key they made lose it with the next request.
    assert (await client.get(audit, headers=member.headers)).status_code == 403
    assert (await client.get(audit, headers=key)).status_code == 403
    # A role change of the member reaches their token the same way.
    await client.patch(
        f"/api/v1/admin/users/{member.id}", headers=admin.headers, json={"role": "admin"}
    )
    assert (await client.get(audit, headers=member.headers)).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "Bad Name", "permissions": []},
        {"name": "x", "permissions": []},
        {"name": "ok-name", "permissions": ["leads:fly"]},
        {"name": "ok-name", "permissions": "leads:read"},
        {"name": "ok-name", "permissions": [], "row_scope": "galaxy"},
        {"name": "ok-name", "permissions": [], "description": "d" * 301},
        {"name": "ok-name", "permissions": [], "is_system": True},
        {"name": "ok-name"},
        {"name": None, "permissions": []},
    ],
)
async def test_create_role_bad_input_is_422(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, payload: dict[str, object]
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    r = await client.post(ROLES, headers=admin.headers, json=payload)
    assert (r.status_code, r.json()["code"]) == (422, "validation_error"), payload
    assert await count(session, Role, Role.organization_id == org.id) == 4


async def test_update_role_bad_input_is_422(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    role = await custom_role(session, org, "helper", ["leads:read"])
    for body in (
        {"permissions": ["leads:fly"]},
        {"row_scope": "galaxy"},
        {"name": "renamed"},
        {"description": "d" * 301},
    ):
        r = await client.patch(f"{ROLES}/{role.id}", headers=admin.headers, json=body)
        assert (r.status_code, r.json()["code"]) == (422, "validation_error"), body
    r = await client.patch(f"{ROLES}/not-a-uuid", headers=admin.headers, json={})
    assert r.status_code == 422
    assert await count(session, AuditLog, AuditLog.organization_id == org.id) == 0


async def test_another_organisations_role_is_404(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org, other = await factory.org(), await factory.org()
    admin = await factory.member(org)
    theirs = await custom_role(session, other, "theirs", ["leads:read"])
    for rid in (str(theirs.id), new_uuid()):
        r = await client.patch(f"{ROLES}/{rid}", headers=admin.headers, json={"description": "x"})
        assert (r.status_code, r.json()["code"]) == (404, "not_found")
        r = await client.delete(f"{ROLES}/{rid}", headers=admin.headers)
        assert (r.status_code, r.json()["code"]) == (404, "not_found")
    assert await count(session, Role, Role.id == theirs.id) == 1
    assert [r["name"] for r in (await client.get(ROLES, headers=admin.headers)).json()] == [
        "admin",
        "counselor",
        "manager",
        "viewer",
    ]


@pytest.mark.parametrize("role", ["counselor", "manager", "viewer"])
async def test_roles_are_403_for_non_admins(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, role: str
) -> None:
    org = await factory.org()
    m = await factory.member(org, role)
    custom = await custom_role(session, org, "helper", ["leads:read"])
    for method, url, body in (
        ("GET", ROLES, None),
        ("POST", ROLES, {"name": "mine", "permissions": ["leads:read"]}),
        ("PATCH", f"{ROLES}/{custom.id}", {"description": "x"}),
        ("DELETE", f"{ROLES}/{custom.id}", None),
    ):
        r = await client.request(method, url, headers=m.headers, json=body)
        assert (r.status_code, r.json()["code"]) == (403, "missing_permission"), (method, url)
    assert await count(session, Role, Role.organization_id == org.id) == 5
