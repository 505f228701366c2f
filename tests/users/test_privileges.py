"""Nobody grants more than they hold: roles given to users, roles built or edited, own role and
status, and the organisation's last active admin."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.authz.actor import Actor
from leadflow.authz.permissions import ALL_PERMISSIONS, RowScope
from leadflow.db.engine import Database, session_scope
from leadflow.exceptions import Conflict
from leadflow.models.audit_log import AuditLog
from leadflow.models.organization import Organization
from leadflow.models.role import Role
from leadflow.models.user import User
from leadflow.organizations.service import create_organization
from leadflow.users import service as users
from leadflow.users.schemas import UserUpdate
from tests.fixtures.factories import Factory


async def _custom_role(
    session: AsyncSession, org: Organization, name: str, perms: list[str], scope: str = "org"
) -> Role:
    role = Role(
        organization_id=org.id,
        name=name,
        description="",
        permissions=perms,
        row_scope=scope,
        is_system=False,
    )
    session.add(role)
    await session.commit()
    return role


async def _role_of(session: AsyncSession, user_id: uuid.UUID) -> str:
    return str(
        await session.scalar(
            select(Role.name).join(User, User.role_id == Role.id).where(User.id == user_id)
        )
    )


async def test_user_admin_cannot_promote_self_or_grant_beyond_own_permissions(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    await _custom_role(session, org, "useradmin", ["users:read", "admin:users", "leads:read"])
    await _custom_role(session, org, "reader", ["leads:read"])
    ua = await factory.member(org, "useradmin")
    rep = await factory.user(org, "counselor")
    boss = await factory.user(org, "admin")

    # Own role: never, whatever the target role.
    r = await client.patch(
        f"/api/v1/users/{ua.user.id}", headers=ua.headers, json={"role": "admin"}
    )
    assert r.status_code == 409 and r.json()["code"] == "self_role_change"
    assert await _role_of(session, ua.user.id) == "useradmin"
    # Another user: only roles within the granter's own permissions.
    for role in ("admin", "manager", "viewer"):
        r = await client.patch(f"/api/v1/users/{rep.id}", headers=ua.headers, json={"role": role})
        assert r.status_code == 403, (role, r.text)
        assert r.json()["code"] == "privilege_escalation"
        assert r.headers["content-type"].startswith("application/problem+json")
    assert await _role_of(session, rep.id) == "counselor"
    r = await client.patch(f"/api/v1/users/{rep.id}", headers=ua.headers, json={"role": "reader"})
    # The counselor holds permissions the user admin lacks: not theirs to change either.
    assert r.status_code == 403
    reader = await factory.user(org, "reader")
    r = await client.patch(
        f"/api/v1/users/{reader.id}", headers=ua.headers, json={"full_name": "Renamed Reader"}
    )
    assert r.status_code == 200, r.text
    # A new user with a bigger role is refused and nothing is written.
    before = await session.scalar(select(func.count()).select_from(User))
    r = await client.post(
        "/api/v1/users",
        headers=ua.headers,
        json={"email": "x@example.com", "full_name": "X", "role": "admin"},
    )
    assert r.status_code == 403
    assert await session.scalar(select(func.count()).select_from(User)) == before
    r = await client.post(
        "/api/v1/users",
        headers=ua.headers,
        json={"email": "y@example.com", "full_name": "Y", "role": "reader"},
    )
    assert r.status_code == 201, r.text
    # An admin is out of reach: neither deactivated nor renamed.
    r = await client.delete(f"/api/v1/users/{boss.id}", headers=ua.headers)
    assert r.status_code == 403
    # Nobody deactivates themselves.
    r = await client.delete(f"/api/v1/users/{ua.user.id}", headers=ua.headers)
    assert r.status_code == 409 and r.json()["code"] == "self_deactivation"


async def test_admin_grants_and_changes_of_roles_are_audited(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    r = await client.patch(f"/api/v1/users/{rep.id}", headers=admin.headers, json={"role": "admin"})
    assert r.status_code == 200 and r.json()["role"] == "admin"
    rows = (
        await session.scalars(
            select(AuditLog).where(
                AuditLog.resource_id == str(rep.id), AuditLog.action == "user.update"
            )
        )
    ).all()
    assert len(rows) == 1 and rows[0].after is not None and rows[0].after["role"] == "admin"


async def test_role_admin_cannot_build_or_edit_roles_beyond_own_permissions(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    own = await _custom_role(session, org, "roleadmin", ["admin:roles", "users:read"], "team")
    bigger = await _custom_role(session, org, "bigger", ["leads:write", "users:read"], "own")
    small = await _custom_role(session, org, "small", ["users:read"], "own")
    ra = await factory.member(org, "roleadmin")
    url = "/api/v1/admin/roles"

    # Their own role: not even to add what they already hold.
    r = await client.patch(
        f"{url}/{own.id}", headers=ra.headers, json={"permissions": list(ALL_PERMISSIONS)}
    )
    assert r.status_code == 409 and r.json()["code"] == "self_role_change"
    # New roles: only permissions they hold, no wider row scope.
    r = await client.post(
        url, headers=ra.headers, json={"name": "sneaky", "permissions": ["leads:write"]}
    )
    assert r.status_code == 403 and r.json()["code"] == "privilege_escalation"
    r = await client.post(
        url,
        headers=ra.headers,
        json={"name": "wide", "permissions": ["users:read"], "row_scope": "org"},
    )
    assert r.status_code == 403
    assert await session.scalar(select(Role.id).where(Role.name.in_(["sneaky", "wide"]))) is None
    r = await client.post(
        url,
        headers=ra.headers,
        json={"name": "narrow", "permissions": ["users:read"], "row_scope": "team"},
    )
    assert r.status_code == 201, r.text
    # A role holding more than they do is out of reach; a smaller one can grow only within it.
    r = await client.patch(f"{url}/{bigger.id}", headers=ra.headers, json={"description": "x"})
    assert r.status_code == 403
    r = await client.delete(f"{url}/{bigger.id}", headers=ra.headers)
    assert r.status_code == 403
    r = await client.patch(
        f"{url}/{small.id}", headers=ra.headers, json={"permissions": ["users:read", "leads:read"]}
    )
    assert r.status_code == 403
    r = await client.patch(
        f"{url}/{small.id}", headers=ra.headers, json={"permissions": ["admin:roles"]}
    )
    assert r.status_code == 200, r.text
    await session.refresh(bigger)
    assert bigger.permissions == ["leads:write", "users:read"]


async def test_last_active_admin_cannot_be_demoted_or_deactivated(
    factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.user(org, "admin")
    await factory.user(org, "admin", status="inactive")
    # An actor of the organisation that is not a person (CLI, system jobs) holding everything.
    system = Actor(
        organization_id=org.id,
        user_id=None,
        role="admin",
        permissions=frozenset(ALL_PERMISSIONS),
        row_scope=RowScope.ORG,
    )
    for change in (UserUpdate(role="manager"), UserUpdate(status="inactive")):
        with pytest.raises(Conflict) as err:
            await users.update_user(session, system, admin.id, change)
        assert err.value.code == "last_admin"
    with pytest.raises(Conflict):
        await users.deactivate_user(session, system, admin.id)
    assert await _role_of(session, admin.id) == "admin"
    # With a second active admin the first may go.
    await factory.user(org, "admin")
    await users.update_user(session, system, admin.id, UserUpdate(role="manager"))
    assert await _role_of(session, admin.id) == "manager"


def _admin(org_id: uuid.UUID, user_id: uuid.UUID) -> Actor:
    return Actor(
        organization_id=org_id,
        user_id=user_id,
        role="admin",
        permissions=frozenset(ALL_PERMISSIONS),
        row_scope=RowScope.ORG,
    )


async def test_two_admins_demoting_each_other_at_once_leave_one(committed_pg: Database) -> None:
    async with session_scope(committed_pg) as s:
        org = await create_organization(s, name="Race GmbH")
        role = await s.scalar(
            select(Role).where(Role.organization_id == org.id, Role.name == "admin")
        )
        assert role is not None
        a = User(organization_id=org.id, email="a@race.test", full_name="A", role_id=role.id)
        b = User(organization_id=org.id, email="b@race.test", full_name="B", role_id=role.id)
        s.add_all([a, b])
        await s.flush()
        actors = [_admin(org.id, a.id), _admin(org.id, b.id)]

    async def demote(actor: Actor, target: uuid.UUID) -> str:
        try:
            async with session_scope(committed_pg) as s:
                await users.update_user(s, actor, target, UserUpdate(role="manager"))
            return "ok"
        except Conflict as exc:
            return exc.code

    results = await asyncio.gather(demote(actors[0], b.id), demote(actors[1], a.id))
    assert sorted(results) == ["last_admin", "ok"]
    async with session_scope(committed_pg) as s:
        admins = await s.scalar(
            select(func.count())
            .select_from(User)
            .join(Role, Role.id == User.role_id)
            .where(User.organization_id == org.id, Role.name == "admin")
        )
    assert admins == 1


async def test_team_scoped_user_admin_cannot_move_into_another_team(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    team_a, team_b = await factory.team(org), await factory.team(org)
    await _custom_role(
        session, org, "teamadmin", ["users:read", "admin:users", "leads:read"], "team"
    )
    await _custom_role(session, org, "reader", ["leads:read"], "own")
    ta = await factory.member(org, "teamadmin", team=team_a)
    other = await factory.user(org, "reader", team=team_b)
    b_rep = await factory.user(org, "counselor", team=team_b)
    lead = await factory.lead(org, assignee_id=b_rep.id)
    assert (await client.get(f"/api/v1/leads/{lead.id}", headers=ta.headers)).status_code == 404

    r = await client.patch(
        f"/api/v1/users/{ta.user.id}", headers=ta.headers, json={"team_id": str(team_b.id)}
    )
    assert r.status_code == 409 and r.json()["code"] == "self_team_change"
    r = await client.patch(
        f"/api/v1/users/{other.id}", headers=ta.headers, json={"team_id": str(team_a.id)}
    )
    assert r.status_code == 403 and r.json()["code"] == "privilege_escalation"
    r = await client.post(
        "/api/v1/users",
        headers=ta.headers,
        json={
            "email": "t@example.com",
            "full_name": "T",
            "role": "reader",
            "team_id": str(team_b.id),
        },
    )
    assert r.status_code == 403
    assert (await client.get(f"/api/v1/leads/{lead.id}", headers=ta.headers)).status_code == 404
    # An organisation-wide admin places people in teams.
    admin = await factory.member(org)
    r = await client.patch(
        f"/api/v1/users/{other.id}", headers=admin.headers, json={"team_id": str(team_a.id)}
    )
    assert r.status_code == 200 and r.json()["team_id"] == str(team_a.id)
