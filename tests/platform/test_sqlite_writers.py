"""The default deployment (SQLite + embedded worker) never fails a write because another write
is running: a real server process, 8 concurrent clients and periodic jobs every second."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.db import migrate
from leadflow.db.engine import Database
from tests.fixtures.factories import Factory
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


# ---------------------------------------------------------------- the lock is not held while
# a client is slow: an upload still streaming in, an export being read


async def _member_headers(db: Database, settings: Settings) -> tuple[dict[str, str], Factory]:
    session = db.sessionmaker()
    factory = Factory(session, settings)
    org = await factory.org()
    await factory.lead(org)
    admin = await factory.member(org)
    return admin.headers, factory


def _lock_is_free(path: str) -> bool:
    """Whether another connection can take SQLite's write lock right now (waiting 0.2 s)."""
    conn = sqlite3.connect(path, timeout=0.2, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        conn.close()


def _scope(method: str, path: str, headers: dict[str, str], ctype: str) -> dict[str, object]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), (b"content-type", ctype.encode())]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
    }


async def test_slow_upload_and_slow_export_reader_hold_no_write_lock(tmp_path: Path) -> None:
    file = tmp_path / "lock.db"
    url = f"sqlite+aiosqlite:///{file}"
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    settings = Settings(
        env="test", database_url=url, secret_key="lock-" + "x" * 40, data_dir=tmp_path, redis_url=""
    )
    app = create_app(settings, database=db)
    headers, factory = await _member_headers(db, settings)
    await factory.session.close()

    # An upload whose body is still arriving.
    mid_body, finish = asyncio.Event(), asyncio.Event()
    sent: list[dict[str, object]] = []
    parts = [b"name,email\nAda,ada@example.com\n", b"Bob,bob@example.com\n"]

    async def receive() -> dict[str, object]:
        if len(parts) == 1:
            mid_body.set()
            await finish.wait()
        return {"type": "http.request", "body": parts.pop(0), "more_body": bool(parts)}

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    scope = _scope("POST", "/api/v1/leads/import", headers, "text/csv")
    upload = asyncio.create_task(app(scope, receive, send))  # type: ignore[arg-type]
    await mid_body.wait()
    assert await asyncio.to_thread(_lock_is_free, str(file))
    finish.set()
    await upload
    assert sent[0]["status"] == 200, sent

    # An export whose reader stalls after the first chunk.
    first_chunk, go_on = asyncio.Event(), asyncio.Event()
    chunks: list[bytes] = []

    body = [b"{}"]

    async def no_body() -> dict[str, object]:
        if body:
            return {"type": "http.request", "body": body.pop(), "more_body": False}
        await asyncio.Event().wait()  # no disconnect: cancelled when the response ends
        return {"type": "http.disconnect"}

    async def slow_reader(message: dict[str, object]) -> None:
        if message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))  # type: ignore[arg-type]
            if not first_chunk.is_set():
                first_chunk.set()
                await go_on.wait()

    scope = _scope("POST", "/api/v1/leads/export", headers, "application/json")
    export = asyncio.create_task(app(scope, no_body, slow_reader))  # type: ignore[arg-type]
    await first_chunk.wait()
    assert await asyncio.to_thread(_lock_is_free, str(file))
    go_on.set()
    await export
    assert b"ada@example.com" in b"".join(chunks)
    await db.dispose()
