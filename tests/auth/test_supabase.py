"""Supabase bridge: only confirmed emails and, when configured, the exact issuer."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt
import pytest
from fastapi import FastAPI

from tests.fixtures.factories import Factory

SECRET = "supabase-jwt-secret-for-tests-0123456789"
ISSUER = "https://abcd.supabase.co/auth/v1"


async def _status(client: httpx.AsyncClient, claims: dict[str, Any]) -> int:
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    r = await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    if r.status_code == 401:
        assert r.headers["content-type"] == "application/problem+json"
    return r.status_code


@pytest.fixture
async def claims(app: FastAPI, factory: Factory) -> dict[str, Any]:
    """Claims of a Supabase token for an existing active user (no confirmation yet)."""
    app.state.settings.supabase_jwt_secret = SECRET
    org = await factory.org()
    user = await factory.user(org, "counselor")
    now = int(time.time())
    return {
        "sub": "sb-user",
        "aud": "authenticated",
        "role": "authenticated",
        "email": user.email,
        "iss": ISSUER,
        "iat": now,
        "exp": now + 600,
    }


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({}, 401),
        ({"email_confirmed_at": "2026-01-05T10:00:00Z"}, 200),
        ({"email_confirmed_at": None}, 401),
        ({"email_confirmed_at": ""}, 401),
        ({"email_verified": True}, 200),
        ({"email_verified": False}, 401),
        ({"email_verified": "true"}, 401),
        ({"app_metadata": {"email_verified": True}}, 200),
        ({"app_metadata": {"email_confirmed_at": "2026-01-05T10:00:00Z"}}, 200),
        ({"app_metadata": {"email_verified": False}}, 401),
        ({"app_metadata": "email_verified"}, 401),
        # The user writes user_metadata themselves: it proves nothing.
        ({"user_metadata": {"email_verified": True}}, 401),
        ({"user_metadata": {"email_confirmed_at": "2026-01-05T10:00:00Z"}}, 401),
    ],
)
async def test_only_confirmed_emails_are_accepted(
    client: httpx.AsyncClient, claims: dict[str, Any], extra: dict[str, Any], expected: int
) -> None:
    assert await _status(client, {**claims, **extra}) == expected


async def test_configured_issuer_must_match_exactly(
    app: FastAPI, client: httpx.AsyncClient, claims: dict[str, Any]
) -> None:
    confirmed = {**claims, "email_verified": True}
    no_iss = {k: v for k, v in confirmed.items() if k != "iss"}
    # Without the setting the issuer is not checked.
    assert await _status(client, {**confirmed, "iss": "https://evil.example"}) == 200
    assert await _status(client, no_iss) == 200

    app.state.settings.supabase_issuer = ISSUER
    assert await _status(client, confirmed) == 200
    assert await _status(client, {**confirmed, "iss": "https://evil.example"}) == 401
    assert await _status(client, {**confirmed, "iss": ISSUER + "/"}) == 401
    assert await _status(client, no_iss) == 401
