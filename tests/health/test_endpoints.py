"""Liveness and readiness."""

from __future__ import annotations

import httpx

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.db.engine import Database


async def test_health_is_ok(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


async def test_ready_reports_database(client: httpx.AsyncClient, dialect: str) -> None:
    for path in ("/health/ready", "/api/v1/health"):
        r = await client.get(path)
        assert r.status_code == 200, path
        assert r.json() == {"status": "ok", "database": dialect}


async def test_ready_is_503_problem_when_database_is_down(settings: Settings) -> None:
    dead = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    app = create_app(settings, database=dead)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
        for path in ("/health/ready", "/api/v1/health"):
            r = await c.get(path)
            assert r.status_code == 503
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["code"] == "database_unavailable"
        assert (await c.get("/health")).status_code == 200
    await dead.dispose()
