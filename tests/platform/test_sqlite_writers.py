"""The default deployment (SQLite + embedded worker) never fails a write because another write
is running: a real server process, 8 concurrent clients and periodic jobs every second."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from leadflow.db import migrate
from tests.fixtures.smtp import free_port

CLIENTS = 8
WRITES = 50  # per client: half creates, half read-then-write updates


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """`leadflow serve` on a fresh SQLite file, periodic jobs every second."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'leadflow.db'}"
    migrate.upgrade(url)
    port = free_port()
    env = {
        **os.environ,
        "LEADFLOW_DATABASE_URL": url,
        "LEADFLOW_DATA_DIR": str(tmp_path),
        "LEADFLOW_SECRET_KEY": "writers-secret-" + "x" * 32,
        "LEADFLOW_SLA_CHECK_SECONDS": "1",
        "LEADFLOW_OUTBOX_RELAY_SECONDS": "1",
        "LEADFLOW_TASK_DUE_SECONDS": "1",
        "LEADFLOW_CALL_DUE_SECONDS": "1",
        "LEADFLOW_LOG_LEVEL": "WARNING",
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", "from leadflow.cli import app; app()", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, proc)
        yield base
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        # The server's log is the evidence when a request failed.
        if err and b"database is locked" in err:
            pytest.fail("server log shows 'database is locked':\n" + err.decode()[-2000:])


def _wait_ready(base: str, proc: subprocess.Popen[bytes]) -> None:
    with httpx.Client(timeout=2) as c:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError("server exited before it answered")
            try:
                if c.get(f"{base}/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            # Readiness poll: the loop ends on the condition, not on the pause.
            time.sleep(0.1)
    raise RuntimeError("server did not become ready")


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


async def test_concurrent_writers_and_periodic_jobs_all_succeed(server: str) -> None:
    async with httpx.AsyncClient(base_url=server, timeout=60) as anon:
        reg = await anon.post(
            "/api/v1/auth/register",
            json={
                "email": "owner@example.com",
                "password": "correct horse battery",
                "full_name": "Owner",
                "organization_name": "Writers GmbH",
            },
        )
        assert reg.status_code == 201, reg.text
        token = reg.json()["access_token"]

    headers = {"Authorization": f"Bearer {token}"}
    clients = [
        httpx.AsyncClient(base_url=server, headers=headers, timeout=60) for _ in range(CLIENTS)
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

    async with httpx.AsyncClient(base_url=server, headers=headers, timeout=60) as c:
        listed = await c.get("/api/v1/leads", params={"limit": 500, "q": "Writer"})
        assert listed.status_code == 200
        items = listed.json()["items"]
        assert len(items) == CLIENTS * WRITES // 2
        assert all(item["company"] and item["company"].startswith("Firm ") for item in items)
