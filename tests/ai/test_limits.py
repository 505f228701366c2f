"""Limits of the AI bridge: no database connection held while a provider answers, a cap on
provider calls at once per process, and a daily provider budget per organisation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.pool import QueuePool

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.db.engine import Database
from leadflow.kit.clock import clock
from leadflow.models.ai_generation import AiGeneration
from tests.ai.fake_openai import FakeOpenAI
from tests.fixtures.factories import Factory, Member

# Ten minutes before midnight UTC: the access tokens stay valid into the next budget day.
LATE = datetime(2024, 11, 25, 23, 50, tzinfo=UTC)
CHAT: dict[str, Any] = {
    "action": "chat",
    "data": {
        "messages": [{"role": "user", "content": "Was ist der nächste Schritt?"}],
        "lead": {"name": "Lea Kramer", "notes": "wartet auf Angebot"},
    },
}


def _openai(settings: Settings, fake: FakeOpenAI, **extra: Any) -> Settings:
    return settings.model_copy(
        update={
            "ai_provider": "openai",
            "openai_api_key": "test-key",
            "openai_base_url": fake.base_url,
            "ai_max_retries": 0,
            "ai_timeout_seconds": 30.0,
            **extra,
        }
    )


@pytest.fixture
async def runtime_closed(app: FastAPI) -> AsyncIterator[FastAPI]:
    """The test app; its AI runtime (HTTP client) is closed afterwards."""
    yield app
    runtime = getattr(app.state, "ai_runtime", None)
    if runtime is not None:
        await runtime.aclose()


async def _chat(client: httpx.AsyncClient, member: Member) -> httpx.Response:
    return await client.post("/api/v1/ai", headers=member.headers, json=CHAT)


async def _stored(client: httpx.AsyncClient, member: Member) -> int:
    r = await client.get("/api/v1/ai/generations", headers=member.headers)
    assert r.status_code == 200, r.text
    total: int = r.json()["total"]
    return total


# --------------------------------------------------------------------------- daily budget


async def test_daily_budget_counts_provider_calls_per_organisation_and_utc_day(
    runtime_closed: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    settings: Settings,
    fake_openai: FakeOpenAI,
) -> None:
    app = runtime_closed
    clock.freeze(LATE)
    org, other = await factory.org(), await factory.org()
    admin, stranger = await factory.member(org), await factory.member(other)
    app.state.settings = _openai(settings, fake_openai, ai_daily_limit=2)

    assert (await _chat(client, admin)).status_code == 200
    fake_openai.fail(500)  # the local fallback answers; the provider was still called
    r = await _chat(client, admin)
    assert r.status_code == 200 and r.json()["fallback"] is True

    r = await _chat(client, admin)
    assert r.status_code == 429, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["code"] == "ai_budget_exhausted"
    assert r.headers["retry-after"] == "600"  # until midnight UTC
    assert len(fake_openai.requests) == 2  # the refused call never reached the provider
    assert await _stored(client, admin) == 2  # and stored nothing

    # The budget is the organisation's own.
    assert (await _chat(client, stranger)).status_code == 200

    # Calls the local rules answer alone cost nothing: neither limited nor counted.
    app.state.settings = settings.model_copy(update={"ai_daily_limit": 2})
    r = await _chat(client, admin)
    assert r.status_code == 200 and r.json()["provider"] == "local"
    app.state.settings = _openai(settings, fake_openai, ai_daily_limit=2)
    assert (await _chat(client, admin)).status_code == 429

    # A new UTC day, a new budget; 0 means unlimited.
    clock.freeze(datetime(2024, 11, 26, 0, 0, tzinfo=UTC))
    assert (await _chat(client, admin)).status_code == 200
    assert (await _chat(client, admin)).status_code == 200
    assert (await _chat(client, admin)).status_code == 429
    app.state.settings = _openai(settings, fake_openai, ai_daily_limit=0)
    assert (await _chat(client, admin)).status_code == 200


# --------------------------------------------------------------------------- provider slots


async def test_busy_provider_slots_answer_429_ai_busy_and_free_up(
    runtime_closed: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    settings: Settings,
    fake_openai: FakeOpenAI,
) -> None:
    app = runtime_closed
    org = await factory.org()
    admin = await factory.member(org)
    app.state.settings = _openai(
        settings, fake_openai, ai_max_concurrency=1, ai_queue_timeout_seconds=0
    )
    fake_openai.hold()
    first = asyncio.create_task(_chat(client, admin))
    try:
        assert await asyncio.to_thread(fake_openai.wait_for_requests, 1)

        r = await _chat(client, admin)
        assert r.status_code == 429, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == "ai_busy"
        assert r.headers["retry-after"] == "1"
        assert len(fake_openai.requests) == 1  # the second call never reached the provider
    finally:
        fake_openai.open()
        done = await first
    assert done.status_code == 200, done.text
    assert done.json()["fallback"] is False
    assert await _stored(client, admin) == 1  # the refused call stored nothing

    r = await _chat(client, admin)  # the slot is free again
    assert r.status_code == 200 and r.json()["fallback"] is False


async def test_lead_deleted_while_the_provider_answers_is_a_404_and_nothing_is_stored(
    runtime_closed: FastAPI,
    client: httpx.AsyncClient,
    factory: Factory,
    settings: Settings,
    fake_openai: FakeOpenAI,
) -> None:
    app = runtime_closed
    org = await factory.org()
    admin = await factory.member(org)
    lead = await factory.lead(org, first_name="Lea", last_name="Kramer")
    app.state.settings = _openai(settings, fake_openai)
    body = {"action": "analyze_lead", "data": {"lead_id": str(lead.id), "apply": True}}
    fake_openai.hold()
    call = asyncio.create_task(client.post("/api/v1/ai", headers=admin.headers, json=body))
    try:
        assert await asyncio.to_thread(fake_openai.wait_for_requests, 1)
        # The AI call holds no transaction: the lead can be deleted meanwhile.
        r = await client.delete(f"/api/v1/leads/{lead.id}", headers=admin.headers)
        assert r.status_code == 204, r.text
    finally:
        fake_openai.open()
        answer = await call
    assert answer.status_code == 404, answer.text
    assert answer.json()["code"] == "not_found"
    assert await _stored(client, admin) == 0


# --------------------------------------------------------------------------- no connection held


async def test_waiting_provider_calls_hold_no_database_connection(
    committed_db_url: str, tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    db = Database(committed_db_url, pool_size=2)  # PostgreSQL: 2 + 2 overflow connections
    settings = Settings(
        env="test",
        database_url=db.url,
        secret_key="ai-pool-" + "x" * 40,
        data_dir=tmp_path / "data",
        redis_url="",
        ai_provider="openai",
        openai_api_key="test-key",
        openai_base_url=fake_openai.base_url,
        ai_max_retries=0,
        ai_timeout_seconds=60.0,
        ai_max_concurrency=10,
    )
    try:
        async with db.sessionmaker() as session:
            factory = Factory(session, settings)
            org = await factory.org()
            admin = await factory.member(org)
            lead = await factory.lead(org, first_name="Lea", last_name="Kramer", status="new")
        app = create_app(settings, database=db)
        # Applying takes the lead's row lock: ten applies queue on it on PostgreSQL. SQLite
        # transactions that read before they write cannot queue for its write lock (until
        # write transactions take it at BEGIN), so there the analysis is not applied.
        apply = db.dialect == "postgresql"
        body = {"action": "analyze_lead", "data": {"lead_id": str(lead.id), "apply": apply}}
        fake_openai.hold()
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://pool"
        ) as c:
            calls = [
                asyncio.create_task(c.post("/api/v1/ai", headers=admin.headers, json=body))
                for _ in range(10)
            ]
            try:
                # All ten wait on the provider at once: none of them kept its connection.
                assert await asyncio.to_thread(fake_openai.wait_for_requests, 10)
                pool = db.engine.pool
                assert isinstance(pool, QueuePool)
                assert pool.checkedout() == 0
                r = await c.get("/api/v1/leads", headers=admin.headers)
                assert r.status_code == 200, r.text
                assert r.json()["total"] == 1
            finally:
                fake_openai.open()
                answers = await asyncio.gather(*calls)
            assert [a.status_code for a in answers] == [200] * 10, answers[0].text
            assert {a.json()["fallback"] for a in answers} == {False}
            lead_now = (await c.get(f"/api/v1/leads/{lead.id}", headers=admin.headers)).json()
            if apply:
                assert (lead_now["status"], lead_now["score"]) == ("proposal", 77)
        async with db.sessionmaker() as session:
            stored = await session.scalar(select(func.count()).select_from(AiGeneration))
        assert stored == 10
        runtime = getattr(app.state, "ai_runtime", None)
        if runtime is not None:
            await runtime.aclose()
    finally:
        await db.dispose()
