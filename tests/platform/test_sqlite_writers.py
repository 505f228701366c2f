"""The default deployment (SQLite + embedded worker) never fails a write because another write
is running: a real server process, 8 concurrent clients and periodic jobs every second."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from leadflow.db import migrate
from tests.fixtures.server import Served, register_admin, serve

CLIENTS = 8
WRITES = 50  # per client: half creates, half read-then-write updates


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Served]:
    """`leadflow serve` on a fresh SQLite file, periodic jobs every second."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'leadflow.db'}"
    migrate.upgrade(url)
    every_second = {
        "sla_check_seconds": "1",
        "outbox_relay_seconds": "1",
        "task_due_seconds": "1",
        "call_due_seconds": "1",
    }
    with serve(url, tmp_path, **every_second) as served:
        yield served
    # The server's log is the evidence when a request failed.
    assert "database is locked" not in served.log, served.log[-2000:]


async def _client_run(c: httpx.AsyncClient, n: int) -> list[int]:
    statuses: list[int] = []
    ids: list[str] = []
    for i in range(WRITES // 2):
        r = await c.post(
            "/api/v1/leads",
            json={"name": f"Writer {n}-{i}", "email": f"w{n}-{i}@example.com", "source": "web"},
        )
        statuses.append(r.status_code)
        if r.status_code == 201:
            ids.append(r.json()["id"])
    for lead_id in ids:
        r = await c.patch(f"/api/v1/leads/{lead_id}", json={"company": f"Firm {lead_id[-6:]}"})
        statuses.append(r.status_code)
    return statuses


async def test_concurrent_writers_and_periodic_jobs_all_succeed(server: Served) -> None:
    token = await asyncio.to_thread(register_admin, server.base_url)
    headers = {"Authorization": f"Bearer {token}"}
    clients = [
        httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60)
        for _ in range(CLIENTS)
    ]
    try:
        results = await asyncio.gather(*(_client_run(c, n) for n, c in enumerate(clients)))
    finally:
        for c in clients:
            await c.aclose()

    statuses = [s for r in results for s in r]
    assert len(statuses) == CLIENTS * WRITES
    assert all(s < 500 for s in statuses), sorted(set(statuses))
    assert statuses.count(201) == CLIENTS * WRITES // 2
    assert statuses.count(200) == CLIENTS * WRITES // 2

    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60) as c:
        listed = await c.get("/api/v1/leads", params={"limit": 500, "q": "Writer"})
        assert listed.status_code == 200
        items = listed.json()["items"]
        assert len(items) == CLIENTS * WRITES // 2
        assert all(item["company"] and item["company"].startswith("Firm ") for item in items)
