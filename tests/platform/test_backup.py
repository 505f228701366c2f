"""`leadflow db backup PATH`: an online copy of the SQLite database that restores and reads."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.db import migrate
from leadflow.db.backup import BackupError, backup_sqlite
from leadflow.db.engine import Database
from tests.fixtures.factories import Factory

SECRET = "backup-test-secret-" + "x" * 32


def _cli(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env["LEADFLOW_DATABASE_URL"] = database_url
    return subprocess.run(
        [sys.executable, "-m", "leadflow.cli", *args],
        env=env,
        text=True,
        capture_output=True,
        timeout=120,
        check=False,
    )


async def test_backup_while_a_writer_holds_the_lock_then_restore(tmp_path: Path) -> None:
    live = tmp_path / "live" / "leadflow.db"
    live.parent.mkdir()
    url = f"sqlite+aiosqlite:///{live}"
    await asyncio.to_thread(migrate.upgrade, url)
    settings = Settings(env="test", database_url=url, secret_key=SECRET, data_dir=tmp_path)
    db = Database(url)
    async with db.sessionmaker() as session:
        factory = Factory(session, settings)
        org = await factory.org("Backup GmbH")
        admin = await factory.member(org, "admin")
        names = [f"Saved{i}" for i in range(5)]
        for name in names:
            await factory.lead(org, first_name=name, last_name="Lead")
    await db.dispose()

    # A writer in the middle of a transaction: the backup neither waits for it nor copies it.
    writer = sqlite3.connect(live, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE leads SET first_name = 'Uncommitted' WHERE first_name = 'Saved0'")
    target = tmp_path / "copy.db"
    try:
        done = _cli("db", "backup", str(target), database_url=url)
    finally:
        writer.execute("COMMIT")  # committed after the backup began: not in the copy
        writer.close()
    assert done.returncode == 0, done.stderr
    assert "integrity ok" in done.stdout

    # Restore: the copy becomes the database file of a fresh installation.
    restored = tmp_path / "restored" / "leadflow.db"
    restored.parent.mkdir()
    shutil.copyfile(target, restored)
    restored_url = f"sqlite+aiosqlite:///{restored}"
    await asyncio.to_thread(migrate.upgrade, restored_url)  # already at head: a no-op
    rdb = Database(restored_url)
    app = create_app(settings.model_copy(update={"database_url": restored_url}), database=rdb)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://restored"
        ) as client:
            r = await client.get(
                "/api/v1/leads", headers=admin.headers, params={"sort": "name", "limit": 50}
            )
    finally:
        await rdb.dispose()
    assert r.status_code == 200, r.text  # the sign-in session was restored too
    assert sorted(item["first_name"] for item in r.json()["items"]) == names


def test_backup_refuses_what_it_cannot_do(tmp_path: Path) -> None:
    live = tmp_path / "leadflow.db"
    url = f"sqlite+aiosqlite:///{live}"
    with pytest.raises(BackupError, match="no database file"):
        backup_sqlite(url, tmp_path / "x.db")
    migrate.upgrade(url)
    existing = tmp_path / "existing.db"
    existing.write_bytes(b"keep me")
    refused = _cli("db", "backup", str(existing), database_url=url)
    assert refused.returncode == 1 and "--overwrite" in refused.stderr
    assert existing.read_bytes() == b"keep me"
    backup_sqlite(url, existing, overwrite=True)
    assert sqlite3.connect(existing).execute("SELECT count(*) FROM leads").fetchone() == (0,)
    left = {p.name for p in tmp_path.iterdir()}
    # No partial file left behind; the copy needs no WAL file beside it.
    assert not {n for n in left if n.endswith(".partial") or n.startswith("existing.db-")}
    with pytest.raises(BackupError, match="must not replace"):
        backup_sqlite(url, live, overwrite=True)
    with pytest.raises(BackupError, match="pg_dump"):
        backup_sqlite("postgresql+asyncpg://h/db", tmp_path / "pg.db")
