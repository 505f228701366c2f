"""POST /api/v1/auth/register is limited per client IP (LEADFLOW_REGISTER_PER_HOUR)."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.organization import Organization
from leadflow.models.user import User


def _signup(n: int) -> dict[str, str]:
    return {
        "email": f"founder{n}@example.com",
        "password": "a-long-password",
        "full_name": f"Founder {n}",
        "organization_name": f"Startup {n} GmbH",
    }


def _from(app: FastAPI, ip: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async def _count(session: AsyncSession, model: type) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_sixth_signup_from_one_ip_is_429_other_ip_still_works(
    app: FastAPI, session: AsyncSession
) -> None:
    assert app.state.settings.register_per_hour == 5
    async with _from(app, "203.0.113.7") as one, _from(app, "198.51.100.9") as other:
        for n in range(5):
            r = await one.post("/api/v1/auth/register", json=_signup(n))
            assert r.status_code == 201, r.text
        orgs, users = await _count(session, Organization), await _count(session, User)

        r = await one.post("/api/v1/auth/register", json=_signup(5))
        assert r.status_code == 429
        assert r.headers["content-type"] == "application/problem+json"
        assert r.json()["code"] == "rate_limited"
        assert 0 < int(r.headers["Retry-After"]) <= 3600
        assert (await _count(session, Organization), await _count(session, User)) == (orgs, users)

        r = await other.post("/api/v1/auth/register", json=_signup(5))
        assert r.status_code == 201, r.text
