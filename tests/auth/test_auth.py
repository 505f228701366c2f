"""Register, login, refresh rotation, logout, /me, throttling, Supabase bridge."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.clock import clock
from leadflow.models.audit_log import AuditLog
from leadflow.models.organization import Organization
from leadflow.models.user import User
from tests.fixtures.factories import PASSWORD, Factory

REGISTER = {
    "email": "Founder@Example.com",
    "password": "a-long-password",
    "full_name": "Frieda Founder",
    "organization_name": "Frieda GmbH",
}


async def _count(session: AsyncSession, model: type) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_register_creates_org_admin_and_tokens(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    r = await client.post("/api/v1/auth/register", json=REGISTER)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 900
    assert body["user"]["email"] == "founder@example.com"
    assert body["user"]["role"] == "admin"
    assert body["organization"]["name"] == "Frieda GmbH"
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    data = me.json()
    assert data["role"] == "admin"
    assert "admin:users" in data["permissions"]
    assert data["organization"] == body["organization"]
    user = await session.scalar(select(User).where(User.email == "founder@example.com"))
    assert user is not None and user.password_hash and user.password_hash.startswith("$argon2")


@pytest.mark.parametrize(
    ("change", "status", "field"),
    [
        ({"email": "not-an-email"}, 422, "email"),
        ({"password": "short"}, 422, "password"),
        ({"organization_name": ""}, 422, "organization_name"),
        ({"role": "admin"}, 422, "role"),
    ],
)
async def test_register_rejects_bad_input_and_writes_nothing(
    client: httpx.AsyncClient,
    session: AsyncSession,
    change: dict[str, str],
    status: int,
    field: str,
) -> None:
    before = await _count(session, Organization)
    r = await client.post("/api/v1/auth/register", json={**REGISTER, **change})
    assert r.status_code == status
    assert r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert problem["code"] == "validation_error"
    assert any(field in e["loc"] for e in problem["errors"])
    assert await _count(session, Organization) == before


async def test_register_duplicate_email_is_409(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    assert (await client.post("/api/v1/auth/register", json=REGISTER)).status_code == 201
    before = await _count(session, Organization)
    r = await client.post(
        "/api/v1/auth/register", json={**REGISTER, "email": "FOUNDER@example.com"}
    )
    assert r.status_code == 409
    assert r.json()["code"] == "email_taken"
    assert await _count(session, Organization) == before


async def test_register_disabled(app: FastAPI, client: httpx.AsyncClient) -> None:
    app.state.settings.allow_signup = False
    r = await client.post("/api/v1/auth/register", json=REGISTER)
    assert r.status_code == 403
    assert r.json()["code"] == "signup_disabled"


async def test_login_json_and_form(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    user = await factory.user(org, "counselor")
    r = await client.post(
        "/api/v1/auth/login", json={"email": user.email.upper(), "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"access_token", "refresh_token", "token_type", "expires_in"}
    r2 = await client.post(
        "/api/v1/auth/login", data={"username": user.email, "password": PASSWORD}
    )
    assert r2.status_code == 200
    alias = await client.post("/api/auth/login", json={"email": user.email, "password": PASSWORD})
    assert alias.status_code == 200


async def test_login_failures_share_one_generic_message(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    user = await factory.user(org)
    wrong = await client.post(
        "/api/v1/auth/login", json={"email": user.email, "password": "wrong-password"}
    )
    unknown = await client.post(
        "/api/v1/auth/login", json={"email": "nobody@example.com", "password": "whatever1"}
    )
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"] == "Invalid email or password"


async def test_login_bad_body_is_422(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/auth/login", json={"email": "x@example.com"})
    assert r.status_code == 422
    assert r.json()["code"] == "validation_error"
    r = await client.post(
        "/api/v1/auth/login", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code in (400, 422)


async def test_login_throttled_after_ten_failures(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    user = await factory.user(org)
    for _ in range(10):
        r = await client.post(
            "/api/v1/auth/login", json={"email": user.email, "password": "wrong-password"}
        )
        assert r.status_code == 401
    r = await client.post("/api/v1/auth/login", json={"email": user.email, "password": PASSWORD})
    assert r.status_code == 429
    assert r.json()["code"] == "rate_limited"
    assert 1 <= int(r.headers["Retry-After"]) <= 60


async def test_refresh_rotates_and_reuse_revokes_session(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    m = await factory.member(org)
    first = await client.post("/api/v1/auth/refresh", json={"refresh_token": m.refresh_token})
    assert first.status_code == 200
    new = first.json()
    assert new["refresh_token"] != m.refresh_token
    new_headers = {"Authorization": f"Bearer {new['access_token']}"}
    assert (await client.get("/api/v1/auth/me", headers=new_headers)).status_code == 200

    replay = await client.post("/api/v1/auth/refresh", json={"refresh_token": m.refresh_token})
    assert replay.status_code == 401
    assert replay.json()["code"] == "refresh_token_reused"
    # The whole session is gone: the newer pair stops working too.
    assert (await client.get("/api/v1/auth/me", headers=new_headers)).status_code == 401
    again = await client.post("/api/v1/auth/refresh", json={"refresh_token": new["refresh_token"]})
    assert again.status_code == 401


async def test_refresh_with_unknown_token_is_401(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/auth/refresh", json={"refresh_token": "x" * 43})
    assert r.status_code == 401


async def test_logout_ends_the_session(client: httpx.AsyncClient, factory: Factory) -> None:
    org = await factory.org()
    m = await factory.member(org)
    assert (await client.get("/api/v1/auth/me", headers=m.headers)).status_code == 200
    r = await client.post("/api/v1/auth/logout", headers=m.headers)
    assert r.status_code == 204
    after = await client.get("/api/v1/auth/me", headers=m.headers)
    assert after.status_code == 401
    assert after.headers["content-type"] == "application/problem+json"
    refresh = await client.post("/api/v1/auth/refresh", json={"refresh_token": m.refresh_token})
    assert refresh.status_code == 401


async def test_me_requires_auth(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/auth/me")
    assert r.status_code == 401
    assert r.json()["code"] == "not_authenticated"
    r = await client.get("/api/v1/auth/me", headers={"Authorization": "Bearer garbage"})
    assert r.status_code == 401


async def test_access_token_expires_by_the_clock(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    clock.freeze(start)
    org = await factory.org()
    m = await factory.member(org)
    clock.advance(timedelta(minutes=14))
    assert (await client.get("/api/v1/auth/me", headers=m.headers)).status_code == 200
    clock.advance(timedelta(minutes=2))
    assert (await client.get("/api/v1/auth/me", headers=m.headers)).status_code == 401


async def test_token_with_wrong_audience_or_algorithm_is_rejected(
    client: httpx.AsyncClient, factory: Factory, app: FastAPI
) -> None:
    org = await factory.org()
    m = await factory.member(org)
    settings = app.state.settings
    good = jwt.decode(m.headers["Authorization"].split()[1], options={"verify_signature": False})
    bad_aud = jwt.encode({**good, "aud": "other"}, settings.secret_key, algorithm="HS256")
    none_alg = jwt.encode(good, "", algorithm="none")
    for token in (bad_aud, none_alg):
        r = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401


async def test_deactivated_user_is_locked_out_at_once(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    rep = await factory.member(org, "counselor")
    assert (await client.get("/api/v1/auth/me", headers=rep.headers)).status_code == 200
    r = await client.delete(f"/api/v1/users/{rep.id}", headers=admin.headers)
    assert r.status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=rep.headers)).status_code == 401
    login = await client.post(
        "/api/v1/auth/login", json={"email": rep.user.email, "password": PASSWORD}
    )
    assert login.status_code == 401


async def test_supabase_token_authenticates_known_user(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    secret = "supabase-jwt-secret-for-tests-0123456789"
    app.state.settings.supabase_jwt_secret = secret
    org = await factory.org()
    user = await factory.user(org, "manager")
    now = int(time.time())
    claims = {
        "sub": "sb-user",
        "aud": "authenticated",
        "email": user.email,
        "role": "authenticated",
        "email_confirmed_at": "2026-01-05T10:00:00Z",
        "iat": now,
        "exp": now + 600,
    }
    token = jwt.encode(claims, secret, algorithm="HS256")
    r = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    assert r.json()["email"] == user.email
    assert r.json()["role"] == "manager"
    wrong = jwt.encode({**claims, "aud": "anon"}, secret, algorithm="HS256")
    assert (
        await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {wrong}"})
    ).status_code == 401
    stranger = jwt.encode({**claims, "email": "ghost@example.com"}, secret, algorithm="HS256")
    assert (
        await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {stranger}"})
    ).status_code == 401


async def test_register_and_login_are_audited_without_secrets(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    r = await client.post(
        "/api/v1/auth/register", json=REGISTER, headers={"X-Request-ID": "req-register-1"}
    )
    assert r.status_code == 201
    rows = list(
        await session.scalars(select(AuditLog).where(AuditLog.request_id == "req-register-1"))
    )
    assert {row.action for row in rows} == {"organization.create", "user.register"}
    dumped = " ".join(str(row.after) for row in rows)
    assert REGISTER["password"] not in dumped
    assert "argon2" not in dumped
