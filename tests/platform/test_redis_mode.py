"""Distributed mode: the login throttle is shared through Redis by every API process."""

from __future__ import annotations

import uuid

import httpx
import pytest
import redis.asyncio as aioredis

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.db.engine import Database
from tests.fixtures.services import IN_CI, REDIS_UP, REDIS_URL


@pytest.fixture
async def redis_url() -> str:
    if not REDIS_UP:
        if IN_CI:
            pytest.fail("Redis is required in CI")
        pytest.skip("Redis not reachable (set LEADFLOW_TEST_REDIS_URL)")
    client = aioredis.from_url(REDIS_URL)
    await client.flushdb()
    await client.aclose()
    return REDIS_URL


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_failures_counted_across_processes(
    redis_url: str, settings: Settings, database: Database
) -> None:
    shared = settings.model_copy(update={"redis_url": redis_url})
    app_a = create_app(shared, database=database)
    app_b = create_app(shared, database=database)
    email = f"{uuid.uuid4().hex}@example.com"
    body = {"email": email, "password": "wrong-password"}
    ta, tb = httpx.ASGITransport(app=app_a), httpx.ASGITransport(app=app_b)
    async with (
        httpx.AsyncClient(transport=ta, base_url="http://a") as a,
        httpx.AsyncClient(transport=tb, base_url="http://b") as b,
    ):
        for i in range(10):
            r = await (a if i % 2 else b).post("/api/v1/auth/login", json=body)
            assert r.status_code == 401
        blocked = await a.post("/api/v1/auth/login", json=body)
        assert blocked.status_code == 429
        assert int(blocked.headers["Retry-After"]) >= 1
        assert (await b.post("/api/v1/auth/login", json=body)).status_code == 429
    client = aioredis.from_url(redis_url)
    assert await client.dbsize() > 0  # the counters really live in Redis
    await client.aclose()
