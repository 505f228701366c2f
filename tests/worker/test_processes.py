"""Real processes: a worker killed with SIGKILL mid-batch loses and duplicates no email; two
workers on Redis and PostgreSQL run the periodic SLA check once per interval."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from leadflow.db import migrate
from leadflow.db.engine import Database, session_scope
from leadflow.models.lead import Lead
from leadflow.models.outbox import Notification, OutboxMessage, PeriodicRun
from leadflow.models.user import User
from leadflow.notifications.service import queue_email
from leadflow.organizations import repository as org_repo
from leadflow.organizations.service import create_organization
from leadflow.worker.jobs import RecordingQueue, set_queue
from tests.conftest import migrated_pg_database
from tests.fixtures.factories import _PASSWORD_HASH
from tests.fixtures.services import require
from tests.fixtures.smtp import free_port

BATCH = 10
BLOCK_AT = 5  # the worker is killed while the 5th message is in its SMTP transaction


class BlockingInbox:
    """SMTP handler that records messages by delivery key and stalls one MAIL command."""

    def __init__(self) -> None:
        self.keys: list[str] = []
        self.mail_commands = 0
        self.blocked = threading.Event()
        self.release = threading.Event()
        self.cond = threading.Condition()

    async def handle_MAIL(
        self,
        server: Any,
        session: Any,
        envelope: Any,
        address: str,
        options: list[str],
    ) -> str:
        self.mail_commands += 1
        if self.mail_commands == BLOCK_AT:
            self.blocked.set()
            # Wait off the server's loop so other connections are still served.
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content, policy=policy.default)
        with self.cond:
            self.keys.append(str(msg["X-Leadflow-Delivery-Key"]))
            self.cond.notify_all()
        return "250 OK"

    def wait_for(self, n: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(set(self.keys)) >= n, timeout=timeout)


def _env(data_dir: Path, db_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update(
        {
            "LEADFLOW_DATA_DIR": str(data_dir),
            "LEADFLOW_DATABASE_URL": db_url,
            "LEADFLOW_SECRET_KEY": "process-test-secret-" + "x" * 20,
            "LEADFLOW_WORKER_THREADS": "1",
            "LEADFLOW_OUTBOX_RELAY_SECONDS": "1",
            "LEADFLOW_OUTBOX_LOCK_SECONDS": "3",
            "LEADFLOW_SLA_CHECK_SECONDS": "3600",
            "LEADFLOW_LOG_LEVEL": "WARNING",
            **extra,
        }
    )
    return env


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "leadflow.cli", "worker"],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


@pytest.fixture
def restore_queue() -> Iterator[None]:
    yield
    set_queue(RecordingQueue())


async def _seed_emails(db: Database, n: int) -> None:
    async with session_scope(db) as session:
        org = await create_organization(session, name="Crash GmbH")
        for i in range(n):
            await queue_email(
                session,
                organization_id=org.id,
                to=f"rep{i}@example.com",
                template="task_due",
                language="de",
                context={
                    "recipient_name": f"Rep {i}",
                    "task_title": f"Task {i}",
                    "due_local": "01.04.2026 10:00",
                    "task_url": "http://x/t",
                },
                delivery_key=f"crash-test:{i}",
            )


async def test_sigkill_mid_batch_then_restart_delivers_each_email_once(
    tmp_path: Path, restore_queue: None
) -> None:
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    await asyncio.to_thread(migrate.upgrade, db_url)
    db = Database(db_url)
    # Rows are committed but never handed to the queue: only the relay can find them, as after
    # a crash between commit and enqueue.
    await _seed_emails(db, BATCH)
    inbox = BlockingInbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    env = _env(
        tmp_path,
        db_url,
        LEADFLOW_SMTP_HOST="127.0.0.1",
        LEADFLOW_SMTP_PORT=str(port),
        # Each delivery in the log, for the failure message.
        LEADFLOW_LOG_LEVEL="INFO",
        # What is under test is the kill, not a relay's speed: a reply that a loaded machine
        # delays past the default 10 s would be a failed attempt (retried, so sent twice).
        LEADFLOW_SMTP_TIMEOUT_SECONDS="60",
    )
    log = tmp_path / "worker.log"
    worker = _start_worker(env, log)
    try:
        assert await asyncio.to_thread(inbox.blocked.wait, 90), log.read_text()[-2000:]
        assert len(inbox.keys) == BLOCK_AT - 1
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        inbox.release.set()
        worker = _start_worker(env, log)
        assert await asyncio.to_thread(inbox.wait_for, BATCH, 90), log.read_text()[-2000:]
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        controller.stop()
    counts = Counter(inbox.keys)
    assert sorted(counts) == sorted(f"crash-test:{i}" for i in range(BATCH))
    assert set(counts.values()) == {1}, counts
    async with db.sessionmaker() as session:
        rows = (await session.scalars(select(OutboxMessage))).all()
    statuses = Counter(row.status for row in rows)
    errors = [(row.delivery_key, row.attempts, row.last_error) for row in rows if row.last_error]
    assert statuses == {"sent": BATCH}, (errors, log.read_text()[-3000:])
    await db.dispose()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    require("PostgreSQL", "Redis")
    async with migrated_pg_database(f"leadflow_proc_{os.getpid()}") as url:
        yield url


async def test_two_workers_on_redis_run_sla_check_once_per_interval(
    tmp_path: Path, pg_url: str, restore_queue: None
) -> None:
    redis_url = "redis://127.0.0.1:6379/14"
    redis.Redis.from_url(redis_url).flushdb()
    db = Database(pg_url)
    past = datetime.now(UTC) - timedelta(minutes=5)
    async with session_scope(db) as session:
        org = await create_organization(session, name="Twin workers AG")
        role = await org_repo.get_role_by_name(session, org.id, "counselor")
        assert role is not None
        rep = User(
            organization_id=org.id,
            email="twin@example.com",
            full_name="Twin",
            password_hash=_PASSWORD_HASH,
            role_id=role.id,
            status="active",
        )
        session.add(rep)
        await session.flush()
        lead = Lead(
            organization_id=org.id,
            first_name="Late",
            full_name="Late",
            status="new",
            tags=[],
            custom={},
            assignee_id=rep.id,
            sla_deadline=past,
            search_text="late",
        )
        session.add(lead)
    env = _env(
        tmp_path,
        pg_url,
        LEADFLOW_REDIS_URL=redis_url,
        LEADFLOW_SLA_CHECK_SECONDS="2",
        LEADFLOW_WORKER_THREADS="2",
    )
    logs = [tmp_path / "w1.log", tmp_path / "w2.log"]
    workers = [_start_worker(env, logs[0]), _start_worker(env, logs[1])]
    started = time.monotonic()
    try:
        finished: list[PeriodicRun] = []
        while time.monotonic() - started < 90:
            async with db.sessionmaker() as session:
                finished = list(
                    await session.scalars(
                        select(PeriodicRun).where(
                            PeriodicRun.name == "sla.check", PeriodicRun.finished_at.is_not(None)
                        )
                    )
                )
            if len(finished) >= 4:
                break
            await asyncio.sleep(0.5)  # waiting on other processes, bounded by the deadline
        assert len(finished) >= 4, logs[0].read_text()[-2000:] + logs[1].read_text()[-2000:]
    finally:
        for w in workers:
            w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(timeout=60)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
    async with db.sessionmaker() as session:
        runs = list(
            await session.scalars(
                select(PeriodicRun)
                .where(PeriodicRun.name == "sla.check")
                .order_by(PeriodicRun.slot)
            )
        )
        breaches = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.kind == "sla_breached")
        )
        claimed_by = {r.worker for r in runs}
    slots = [r.slot for r in runs]
    assert len(slots) == len(set(slots))  # one claim per interval, whichever worker won
    gaps = {(b - a).total_seconds() for a, b in itertools.pairwise(slots)}
    assert gaps <= {2.0, 4.0, 6.0}, gaps  # 2 s intervals (a slot may pass while starting)
    assert sum(1 for r in runs if r.result and r.result.get("breached") == 1) == 1
    assert breaches == 1  # the late lead was breached and notified exactly once
    assert len(claimed_by) >= 1
    await db.dispose()
