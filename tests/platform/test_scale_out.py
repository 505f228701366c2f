"""Scale-out with real processes: two `leadflow serve` (one of them with `--workers 2`) and a
`leadflow worker` on one PostgreSQL and one Redis. A notification written through one API
process, or by the worker, reaches an event stream held by the other API process through
Redis pub/sub, and the login throttle and the AI calls per organisation and minute count
across both."""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis

from leadflow.config import Settings
from leadflow.db.engine import Database
from tests.conftest import migrated_pg_database
from tests.fixtures.factories import Factory, Member
from tests.fixtures.processes import worker
from tests.fixtures.server import Served, serve
from tests.fixtures.services import require

REDIS_URL = "redis://127.0.0.1:6379/13"
SECRET = "served-secret-" + "x" * 32  # the key `tests.fixtures.server.serve` gives the servers
# A stream re-reads on its own every 15 s at most (less with a shorter session re-check);
# an event that arrives well before that was delivered by a wake-up.
FALLBACK_SECONDS = 15
WAKE_WITHIN = 8
AI_PER_MINUTE = 4


@dataclass
class Cluster:
    """Two API processes on one PostgreSQL + Redis, and the people signed in to them."""

    a: Served
    b: Served
    admin: Member
    rep: Member
    lead_id: uuid.UUID


@pytest.fixture(scope="module")
async def pg_url() -> AsyncIterator[str]:
    require("PostgreSQL", "Redis")
    async with migrated_pg_database(f"leadflow_scale_{os.getpid()}") as url:
        yield url


@pytest.fixture(scope="module")
async def people(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Member, Member, uuid.UUID]:
    """An admin and a counselor of one organisation (tokens the servers accept) and a lead."""
    settings = Settings(
        database_url=pg_url, secret_key=SECRET, data_dir=tmp_path_factory.mktemp("people")
    )
    db = Database(pg_url)
    try:
        async with db.sessionmaker() as session:
            factory = Factory(session, settings)
            org = await factory.org("Scale-out GmbH")
            admin = await factory.member(org, "admin")
            rep = await factory.member(org, "counselor")
            lead = await factory.lead(org, first_name="Fan", last_name="Out")
            return admin, rep, lead.id
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
def cluster(
    pg_url: str, tmp_path_factory: pytest.TempPathFactory, people: tuple[Member, Member, uuid.UUID]
) -> Iterator[Cluster]:
    """Started once for the module: each server takes seconds to start."""
    tmp_path = tmp_path_factory.mktemp("cluster")
    redis.Redis.from_url(REDIS_URL).flushdb()
    shared = {
        "redis_url": REDIS_URL,
        # Jobs go to Redis for `leadflow worker` processes; none is needed here.
        "embedded_worker": "false",
        "stream_recheck_seconds": str(FALLBACK_SECONDS),
        "ai_rate_limit_per_minute": str(AI_PER_MINUTE),
    }
    with ExitStack() as stack:
        a = stack.enter_context(serve(pg_url, tmp_path / "a", args=["--workers", "2"], **shared))
        b = stack.enter_context(serve(pg_url, tmp_path / "b", **shared))
        yield Cluster(a, b, *people)
    redis.Redis.from_url(REDIS_URL).flushdb()


async def _stream_on_b_sees(
    cluster: Cluster, needle: str, act: Callable[[], Awaitable[None]], within: float
) -> tuple[str, float]:
    """Hold the rep's notification stream on B, run `act` once the stream waits for a
    wake-up, and return the data of the first notification holding `needle` and the
    seconds it took (the stream first replays unread ones: `needle` must be new)."""
    waiting = asyncio.Event()
    found: list[str] = []

    async def listen() -> None:
        async with (
            httpx.AsyncClient(base_url=cluster.b.base_url, timeout=within + 30) as b,
            b.stream(
                "GET",
                "/api/v1/notifications/stream",
                headers=cluster.rep.headers,
                params={"max_events": 20, "max_seconds": within + 30},
            ) as r,
        ):
            assert r.status_code == 200
            event = ""
            async for line in r.aiter_lines():
                if line.startswith(": keep-alive"):
                    waiting.set()  # read once, now waiting for a wake-up
                elif line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "notification":
                    data = line.removeprefix("data: ")
                    if needle in data:
                        found.append(data)
                        return

    reader = asyncio.create_task(listen())
    try:
        await asyncio.wait_for(waiting.wait(), 30)
        started = time.monotonic()
        await act()
        await asyncio.wait_for(reader, within + 30)
        elapsed = time.monotonic() - started
    finally:
        reader.cancel()
    assert found, f"no notification with {needle!r} on the stream"
    return found[0], elapsed


async def test_notification_through_a_reaches_stream_on_b(cluster: Cluster) -> None:
    async def assign() -> None:
        async with httpx.AsyncClient(base_url=cluster.a.base_url, timeout=30) as a:
            r = await a.post(
                f"/api/v1/leads/{cluster.lead_id}/assign",
                headers=cluster.admin.headers,
                json={"assignee_id": cluster.rep.id},
            )
            assert r.status_code == 200, r.text

    data, elapsed = await _stream_on_b_sees(cluster, "lead_assigned", assign, WAKE_WITHIN)
    assert str(cluster.lead_id) in data
    # Delivered by the wake-up, not by the stream's own fallback re-read.
    assert elapsed < WAKE_WITHIN < FALLBACK_SECONDS, elapsed


async def test_a_standalone_workers_notification_reaches_stream_on_b(
    cluster: Cluster, pg_url: str, tmp_path: Path
) -> None:
    """A `leadflow worker` process (no API in it) notifies the rep of a task that fell due;
    the stream held by API process B wakes through Redis pub/sub, not by its re-read."""

    async def due_task(title: str) -> None:
        async with httpx.AsyncClient(base_url=cluster.a.base_url, timeout=30) as a:
            r = await a.post(
                "/api/v1/tasks",
                headers=cluster.admin.headers,
                json={
                    "title": title,
                    "lead_id": str(cluster.lead_id),
                    "assignee_id": str(cluster.rep.id),
                    "due_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
                },
            )
            assert r.status_code == 201, r.text

    with worker(
        pg_url,
        tmp_path / "data",
        tmp_path / "worker.log",
        redis_url=REDIS_URL,
        task_due_seconds="1",
        worker_threads="1",
    ) as w:
        # The first due task shows the worker is up (it may take seconds to start) ...
        await _stream_on_b_sees(cluster, "Task due: First", lambda: due_task("First"), 90)
        # ... the second how fast a worker's write reaches another process's stream.
        data, elapsed = await _stream_on_b_sees(
            cluster, "Task due: Second", lambda: due_task("Second"), WAKE_WITHIN
        )
        assert w.proc.poll() is None, w.output()
    assert '"kind": "task_due"' in data or '"kind":"task_due"' in data, data
    assert elapsed < WAKE_WITHIN < FALLBACK_SECONDS, elapsed


async def test_login_throttle_counts_across_processes(cluster: Cluster) -> None:
    body = {"email": cluster.rep.user.email, "password": "not-the-password"}
    async with (
        httpx.AsyncClient(base_url=cluster.a.base_url, timeout=30) as a,
        httpx.AsyncClient(base_url=cluster.b.base_url, timeout=30) as b,
    ):
        # Ten failures (the default per minute), alternating between the two processes.
        for i in range(10):
            r = await (a if i % 2 else b).post("/api/v1/auth/login", json=body)
            assert r.status_code == 401, r.text
        for c in (a, b):
            blocked = await c.post("/api/v1/auth/login", json=body)
            assert blocked.status_code == 429, blocked.text
            assert blocked.headers["content-type"].startswith("application/problem+json")
            assert int(blocked.headers["Retry-After"]) >= 1
    assert redis.Redis.from_url(REDIS_URL).dbsize() > 0  # the counts live in Redis


async def test_ai_calls_per_minute_count_across_processes(cluster: Cluster) -> None:
    """The organisation's AI allowance is one, wherever its calls land."""
    body = {
        "action": "generate_message",
        "data": {
            "messages": [{"role": "user", "content": "Schreib ein Follow-up"}],
            "lead": {"name": "Lea Kramer", "status": "offen", "channel": "E-Mail"},
        },
    }
    async with (
        httpx.AsyncClient(base_url=cluster.a.base_url, timeout=30) as a,
        httpx.AsyncClient(base_url=cluster.b.base_url, timeout=30) as b,
    ):
        for i in range(AI_PER_MINUTE):
            r = await (a if i % 2 else b).post("/api/v1/ai", json=body, headers=cluster.rep.headers)
            assert r.status_code == 200, r.text
        for c in (a, b):
            refused = await c.post("/api/v1/ai", json=body, headers=cluster.admin.headers)
            assert refused.status_code == 429, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
            assert int(refused.headers["Retry-After"]) >= 1
