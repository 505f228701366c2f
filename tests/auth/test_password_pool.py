"""Password hashing runs off the event loop: a burst of logins does not stall other requests.

Runs against databases that really commit (concurrent requests cannot share the rolled-back
test connection). Argon2 verification is held behind a gate in the hashing threads, so the
order of events is fixed by the test, not by timing.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import httpx
import pytest

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.db.engine import Database
from leadflow.kit import passwords
from tests.fixtures.factories import PASSWORD, Factory

LOGINS = 20


async def test_list_answers_while_twenty_logins_wait_for_hashing(
    committed_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(
        env="test", database_url=committed_db.url, secret_key="pw-" + "x" * 40, data_dir=tmp_path
    )
    async with committed_db.sessionmaker() as session:
        factory = Factory(session, settings)
        org = await factory.org()
        admin = await factory.member(org)
        await factory.lead(org)
        email = admin.user.email

    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()
    gate = threading.Semaphore(0)
    pool_busy = asyncio.Event()
    entered: list[int] = []
    real_verify = passwords._hasher.verify

    def gated_verify(password: str | bytes, hash: str | bytes) -> bool:
        on_loop = threading.get_ident() == loop_thread
        entered.append(threading.get_ident())
        if on_loop or len(entered) == passwords.HASH_THREADS:
            loop.call_soon_threadsafe(pool_busy.set)
        # On the loop thread waiting would freeze the test itself; the assertions below
        # report that case instead.
        if not on_loop:
            gate.acquire()
        return real_verify(password, hash)

    monkeypatch.setattr(passwords._hasher, "verify", gated_verify)
    app = create_app(settings, database=committed_db)
    transport = httpx.ASGITransport(app=app)
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://pw") as client,
        asyncio.timeout(60),  # a failsafe against a hung run, not a synchronisation
    ):
        body = {"email": email, "password": PASSWORD}
        logins = [
            asyncio.create_task(client.post("/api/v1/auth/login", json=body)) for _ in range(LOGINS)
        ]
        await pool_busy.wait()  # every hashing thread is now held at the gate
        listed = await client.get("/api/v1/leads", headers=admin.headers)
        finished_before_list = sum(t.done() for t in logins)

        pending = set(logins)
        while pending:
            gate.release()  # one verification at a time: the logins' writes do not race
            _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)

    assert listed.status_code == 200, listed.text
    assert listed.json()["total"] == 1
    assert finished_before_list == 0
    assert loop_thread not in entered, "password verification ran on the event loop"
    assert len(entered) == LOGINS
    for task in logins:
        r = task.result()
        assert r.status_code == 200, r.text
        assert r.json()["access_token"]
