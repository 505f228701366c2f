"""Impersonation: an admin acts as a member for 15 minutes (no refresh), never as an admin,
never in the admin console; every write names both; ending it revokes the token."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.tokens import decode_access_token
from leadflow.config import Settings
from leadflow.kit.clock import clock
from leadflow.models.audit_log import AuditLog
from leadflow.models.auth_session import AuthSession
from leadflow.models.lead import Lead
from leadflow.notifications.service import notify
from tests.accounts.helpers import ADMIN_USERS, audit_actions, count, custom_role
from tests.fixtures.factories import Factory, Member

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def _impersonate(client: httpx.AsyncClient, admin: Member, user_id: object) -> dict[str, str]:
    r = await client.post(f"{ADMIN_USERS}/{user_id}/impersonate", headers=admin.headers)
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['impersonation_token']}"}


async def test_acts_as_the_member_and_every_write_names_both(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession, settings: Settings
) -> None:
    clock.freeze(START)
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    await notify(session, organization_id=org.id, user_id=rep.id, kind="test", title="Hallo")
    await session.commit()

    r = await client.post(f"{ADMIN_USERS}/{rep.id}/impersonate", headers=admin.headers)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["user_id"], out["expires_at"], out["expires_in"], out["token_type"]) == (
        str(rep.id),
        "2026-03-02T09:15:00Z",
        900,
        "bearer",
    )
    assert "refresh_token" not in out
    claims = decode_access_token(settings, out["impersonation_token"])
    assert claims is not None and (claims.user_id, claims.act) == (rep.id, admin.user.id)
    h = {"Authorization": f"Bearer {out['impersonation_token']}"}

    me = (await client.get("/api/v1/auth/me", headers=h)).json()
    assert (me["id"], me["role"]) == (str(rep.id), "counselor")
    assert me["impersonation"] == {
        "admin": {
            "id": admin.id,
            "email": admin.user.email,
            "full_name": admin.user.full_name,
            "role": "admin",
        },
        "expires_at": "2026-03-02T09:15:00Z",
    }
    assert (await client.get("/api/v1/auth/me", headers=admin.headers)).json()[
        "impersonation"
    ] is None

    # A write that fails leaves no trace either.
    bad = await client.post("/api/v1/leads", headers=h, json={"name": "X", "score": "high"})
    assert bad.status_code == 422
    assert await audit_actions(session, org.id) == ["user.impersonate"]
    created = await client.post("/api/v1/leads", headers=h, json={"name": "Via Admin"})
    assert created.status_code == 201, created.text
    lead_id = created.json()["id"]
    assert (await client.post("/api/v1/notifications/read-all", headers=h)).json() == {"updated": 1}
    lead = await session.scalar(select(Lead).where(Lead.id == uuid.UUID(lead_id)))
    assert lead is not None and lead.created_by == rep.id

    rows = (
        await session.scalars(
            select(AuditLog)
            .where(AuditLog.organization_id == org.id)
            .order_by(AuditLog.created_at, AuditLog.id)
        )
    ).all()
    got = [
        (a.action, a.actor_user_id, a.impersonator_user_id, (a.after or {}).get("path"))
        for a in rows
    ]
    assert got == [
        ("user.impersonate", admin.user.id, None, None),
        ("impersonation.request", rep.id, admin.user.id, "/api/v1/leads"),
        ("lead.create", rep.id, admin.user.id, None),
        ("impersonation.request", rep.id, admin.user.id, "/api/v1/notifications/read-all"),
    ]
    # The audit log shows both identities too.
    entry = (
        await client.get(
            "/api/v1/admin/audit-logs",
            headers=admin.headers,
            params={"action": "lead.create"},
        )
    ).json()["items"][0]
    assert (entry["actor_user_id"], entry["impersonator_user_id"]) == (str(rep.id), admin.id)


async def test_no_admin_target_no_admin_console(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    other_admin = await factory.user(org, "admin")
    rep = await factory.user(org, "counselor")
    gone = await factory.user(org, "viewer", status="inactive")
    for target, status, code in (
        (other_admin.id, 403, "impersonation_not_allowed"),
        (admin.user.id, 403, "impersonation_not_allowed"),
        (gone.id, 409, "user_inactive"),
        ("not-a-uuid", 422, "validation_error"),
    ):
        r = await client.post(f"{ADMIN_USERS}/{target}/impersonate", headers=admin.headers)
        assert (r.status_code, r.json()["code"]) == (status, code), target
    assert await count(session, AuthSession, AuthSession.impersonator_id.is_not(None)) == 0

    h = await _impersonate(client, admin, rep.id)
    before = await audit_actions(session, org.id)
    for method, url in (
        ("GET", ADMIN_USERS),
        ("GET", "/api/v1/admin/roles"),
        ("GET", "/api/v1/admin/permissions"),
        ("GET", "/api/v1/admin/audit-logs"),
        ("GET", "/api/audit-logs"),  # the seed alias of the same endpoint
        ("GET", "/api/v1/admin/settings"),
        ("POST", f"{ADMIN_USERS}/{other_admin.id}/impersonate"),
        ("POST", "/api/v1/admin/api-keys"),
        ("DELETE", f"{ADMIN_USERS}/{admin.id}"),
    ):
        r = await client.request(method, url, headers=h, json={"name": "k"})
        assert (r.status_code, r.json()["code"]) == (403, "impersonation_restricted"), url
    assert await audit_actions(session, org.id) == before
    # The member's own endpoints still answer.
    assert (await client.get("/api/v1/leads", headers=h)).status_code == 200


async def test_only_an_admin_in_person_may_impersonate(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    await custom_role(session, org, "useradmin", ["users:read", "admin:users", "leads:read"])
    await custom_role(session, org, "reader", ["users:read"])
    ua = await factory.member(org, "useradmin")
    reader = await factory.user(org, "reader")
    r = await client.post(f"{ADMIN_USERS}/{reader.id}/impersonate", headers=ua.headers)
    assert (r.status_code, r.json()["code"]) == (403, "impersonation_not_allowed")
    key = (
        await client.post(
            "/api/v1/admin/api-keys",
            headers=admin.headers,
            json={"name": "ops", "scopes": ["admin:users", "users:read"]},
        )
    ).json()["api_key"]
    r = await client.post(f"{ADMIN_USERS}/{reader.id}/impersonate", headers={"X-API-Key": key})
    assert (r.status_code, r.json()["code"]) == (403, "impersonation_not_allowed")
    assert await count(session, AuthSession, AuthSession.impersonator_id.is_not(None)) == 0


async def test_ending_revokes_the_token(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    a, b = await factory.user(org, "counselor"), await factory.user(org, "viewer")
    h = await _impersonate(client, admin, a.id)
    assert (await client.delete("/api/v1/auth/impersonation", headers=h)).status_code == 204
    r = await client.get("/api/v1/auth/me", headers=h)
    assert (r.status_code, r.json()["code"]) == (401, "session_ended")

    # With the admin's own token: every impersonation they started ends, their own session not.
    h1, h2 = await _impersonate(client, admin, a.id), await _impersonate(client, admin, b.id)
    assert (
        await client.delete("/api/v1/auth/impersonation", headers=admin.headers)
    ).status_code == 204
    for h in (h1, h2):
        assert (await client.get("/api/v1/auth/me", headers=h)).status_code == 401
    assert (await client.get("/api/v1/auth/me", headers=admin.headers)).status_code == 200
    # Logging out is another way to end it; there is no refresh token to renew it.
    h3 = await _impersonate(client, admin, a.id)
    assert (await client.post("/api/v1/auth/logout", headers=h3)).status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=h3)).status_code == 401
    ends = await session.scalars(
        select(AuditLog.after).where(
            AuditLog.organization_id == org.id, AuditLog.action == "impersonation.end"
        )
    )
    assert sorted(e["sessions_ended"] for e in ends if e) == [1, 2]


async def test_it_expires_after_15_minutes(client: httpx.AsyncClient, factory: Factory) -> None:
    clock.freeze(START)
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    h = await _impersonate(client, admin, rep.id)
    clock.advance(timedelta(minutes=15) - timedelta(seconds=1))
    assert (await client.get("/api/v1/auth/me", headers=h)).status_code == 200
    clock.advance(timedelta(seconds=1))
    r = await client.get("/api/v1/auth/me", headers=h)
    assert r.status_code == 401


async def test_it_ends_when_the_admin_or_the_member_changes(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    boss = await factory.member(org)
    rep1 = await factory.user(org, "counselor")
    rep2 = await factory.user(org, "counselor")
    rep3 = await factory.user(org, "counselor")
    h1 = await _impersonate(client, admin, rep1.id)
    h2 = await _impersonate(client, admin, rep2.id)
    h3 = await _impersonate(client, boss, rep3.id)
    # The member became an admin: the token would now act as one.
    r = await client.patch(f"{ADMIN_USERS}/{rep1.id}", headers=boss.headers, json={"role": "admin"})
    assert r.status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=h1)).status_code == 401
    assert (await client.get("/api/v1/auth/me", headers=h2)).status_code == 200
    # The admin is no admin any more.
    r = await client.patch(
        f"{ADMIN_USERS}/{admin.id}", headers=boss.headers, json={"role": "manager"}
    )
    assert r.status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=h2)).status_code == 401
    # The admin was deactivated.
    r = await client.delete(f"{ADMIN_USERS}/{boss.id}", headers=(await factory.member(org)).headers)
    assert r.status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=h3)).status_code == 401


async def test_the_admin_console_stays_closed_behind_a_path_prefix(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.user(org, "counselor")
    h = await _impersonate(client, admin, rep.id)
    # Served under a proxy prefix (`--root-path /crm`): the prefix is not part of the route.
    transport = httpx.ASGITransport(app=app, root_path="/crm")
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as prefixed:
        r = await prefixed.get("/crm/api/v1/admin/users", headers=h)
        assert (r.status_code, r.json()["code"]) == (403, "impersonation_restricted")
        assert (
            await prefixed.get("/crm/api/v1/admin/users", headers=admin.headers)
        ).status_code == 200
