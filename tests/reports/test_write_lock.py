"""On SQLite, making a report's file holds no write lock: an export and a scheduled run read
in a read-only transaction and take the lock only to store the finished file."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.db import migrate
from leadflow.db.engine import Database
from leadflow.kit.clock import clock
from leadflow.reports import files
from leadflow.reports.jobs import due_job
from leadflow.worker.jobs import JobContext
from tests.fixtures.factories import Factory
from tests.platform.test_sqlite_writers import _lock_is_free
from tests.reports.conftest import at


async def _paused_while(
    monkeypatch: pytest.MonkeyPatch,
    work: Callable[[], Awaitable[Any]],
    check: Callable[[], Awaitable[Any]],
) -> Any:
    """Run `work` with the CSV writer paused at its start; `check()` while it is paused."""
    started, go_on = asyncio.Event(), asyncio.Event()
    write_csv = files.write_csv

    async def paused(*args: Any) -> files.Written:
        started.set()
        await go_on.wait()
        return await write_csv(*args)

    monkeypatch.setattr(files, "write_csv", paused)
    task: asyncio.Future[Any] = asyncio.ensure_future(work())
    await started.wait()
    try:
        checked = await check()
    finally:
        go_on.set()
    return checked, await task


async def test_export_and_scheduled_run_hold_no_write_lock_while_the_file_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file = tmp_path / "reports.db"
    url = f"sqlite+aiosqlite:///{file}"
    await asyncio.to_thread(migrate.upgrade, url)
    db = Database(url)
    settings = Settings(
        env="test", database_url=url, secret_key="lock-" + "x" * 40, data_dir=tmp_path, redis_url=""
    )
    app = create_app(settings, database=db)
    clock.freeze(at(2026, 3, 2, 6, 0))
    factory = Factory(db.sessionmaker(), settings)
    org = await factory.org()
    await factory.lead(org)
    admin = await factory.member(org)
    await factory.session.close()

    def lock_free() -> Awaitable[bool]:
        return asyncio.to_thread(_lock_is_free, str(file))

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        r = await client.post(
            "/api/v1/reports/build",
            headers=admin.headers,
            json={"name": "Lock", "fields": ["full_name"]},
        )
        assert r.status_code == 201, r.text
        rid = r.json()["report_id"]

        async def export() -> httpx.Response:
            return await client.post(
                "/api/v1/reports/export",
                headers=admin.headers,
                json={"report_id": rid, "format": "csv"},
            )

        free, response = await _paused_while(monkeypatch, export, lock_free)
        assert response.status_code == 200, response.text
        assert free

        r = await client.post(
            "/api/v1/reports/schedule",
            headers=admin.headers,
            json={
                "report_id": rid,
                "frequency": "daily",
                "time": "08:00",
                "recipients": [admin.user.email],
            },
        )
        assert r.status_code == 201, r.text

    clock.freeze(at(2026, 3, 2, 7, 0))
    ctx = JobContext(settings=settings, session_factory=db.sessionmaker)
    free, counts = await _paused_while(monkeypatch, lambda: due_job(ctx), lock_free)
    assert counts == {"ran": 1, "failed": 0, "skipped": 0}
    assert free
    await db.dispose()
