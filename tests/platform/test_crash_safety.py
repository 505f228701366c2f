"""Crash safety with real processes: SIGKILL of a `leadflow worker` during a background import,
an SLA sweep, a webhook batch and a scheduled report, and of `leadflow serve` during a
synchronous import, loses nothing and duplicates nothing once a fresh process has finished the
work (counted in the database, at a real webhook receiver and at a real SMTP server).

Each kill lands inside a transaction, deterministically: the test holds `LOCK TABLE … IN SHARE
MODE` on a table the work writes (readers pass, writers wait), sees the process wait for it,
and kills it there. Released and taken again, the lock lets the waiting transaction run to its
commit and stops the next one (PostgreSQL grants table locks first come, first served), which
steps the work on one transaction at a time until the state to crash in is reached.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from leadflow.config import Settings
from leadflow.db.engine import Database
from leadflow.leads.effects import derive
from leadflow.models.lead import Lead
from leadflow.models.organization import Organization
from leadflow.webhooks.delivery import INTERRUPTED
from tests.conftest import migrated_pg_database
from tests.fixtures.factories import Factory, Member
from tests.fixtures.processes import SECRET, worker
from tests.fixtures.server import Served, serve
from tests.fixtures.services import require
from tests.fixtures.smtp import Inbox, smtp  # noqa: F401

DEADLINE = 60.0  # for every wait on another process
POLL = 0.05


async def until(what: str, check: Callable[[], Awaitable[Any]], within: float = DEADLINE) -> Any:
    """Poll `check` until it returns something truthy (returned); fail after `within` seconds."""
    end = time.monotonic() + within
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > end:
            raise AssertionError(f"gave up waiting for {what}")
        # Waiting on other processes: the loop ends on the condition, bounded by the deadline.
        await asyncio.sleep(POLL)


def _dsn(url: str) -> str:
    return url.replace("+asyncpg", "")


class TableLock:
    """`LOCK TABLE <table> IN SHARE MODE` on a connection of its own, and a second connection
    that watches which backends wait for it."""

    def __init__(self, conn: asyncpg.Connection, watch: asyncpg.Connection, table: str) -> None:
        self.conn, self.watch, self.table = conn, watch, table
        self.tx: Any = None

    async def take(self) -> None:
        """Take the lock (waits for a writer's open transaction to end)."""
        self.tx = self.conn.transaction()
        await self.tx.start()
        await asyncio.wait_for(
            self.conn.execute(f"LOCK TABLE {self.table} IN SHARE MODE"), DEADLINE
        )

    async def release(self) -> None:
        """Let the waiting writers on."""
        if self.tx is not None:
            await self.tx.rollback()
            self.tx = None

    async def step(self) -> None:
        """Let the waiting transaction run to its end and stop the next write to the table."""
        await self.release()
        await self.take()

    async def waiting(self, needle: str) -> str:
        """The statement of a backend waiting for this lock whose text contains `needle`."""
        pid = self.conn.get_server_pid()

        async def blocked() -> str | None:
            # Its own transaction each time: pg_stat_activity is a snapshot per transaction.
            rows = await self.watch.fetch(
                "SELECT query FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", pid
            )
            return next((r["query"] for r in rows if needle in r["query"]), None)

        return str(await until(f"a writer waiting on {self.table} ({needle})", blocked))


@dataclass
class Env:
    """The module's database, its served API and where processes keep their files."""

    url: str
    api: Served
    data_dir: Path
    db: Database
    settings: Settings


@pytest.fixture(scope="module")
async def pg_url() -> AsyncIterator[str]:
    require("PostgreSQL")
    async with migrated_pg_database(f"leadflow_crash_{os.getpid()}") as url:
        yield url


API_SETTINGS = {
    "embedded_worker": "false",  # the jobs are the worker processes' alone
    "import_sync_max_rows": "100",
    "webhooks_allow_private": "true",
    "log_level": "WARNING",
}


@pytest.fixture(scope="module")
def api(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path]]:
    """One API process for the module (it only takes requests; the workers share its queue)."""
    data_dir = tmp_path_factory.mktemp("crash-data")
    with serve(pg_url, data_dir, **API_SETTINGS) as served:
        yield served, data_dir


@pytest.fixture
async def env(pg_url: str, api: tuple[Served, Path]) -> AsyncIterator[Env]:
    settings = Settings(database_url=pg_url, secret_key=SECRET, data_dir=api[1])
    db = Database(pg_url, pool_size=3)
    try:
        yield Env(pg_url, api[0], api[1], db, settings)
    finally:
        await db.dispose()


@pytest.fixture
async def pg(pg_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A plain connection for counting (autocommit: every query sees the latest commits)."""
    conn = await asyncpg.connect(_dsn(pg_url))
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def lock_on(pg_url: str) -> AsyncIterator[Callable[[str], TableLock]]:
    """Makes the test's `TableLock` on a table (one per test; closing drops a held lock)."""
    holder = await asyncpg.connect(_dsn(pg_url))
    watch = await asyncpg.connect(_dsn(pg_url))
    try:
        yield lambda table: TableLock(holder, watch, table)
    finally:
        await holder.close()
        await watch.close()


async def people(env: Env, name: str) -> tuple[Organization, Member, Member]:
    """An organisation with a signed-in admin and a counselor (tokens the API accepts)."""
    async with env.db.sessionmaker() as session:
        factory = Factory(session, env.settings)
        org = await factory.org(name)
        admin = await factory.member(org, "admin")
        rep = await factory.member(org, "counselor")
        return org, admin, rep


def csv_of(rows: list[tuple[str, str, str]]) -> bytes:
    """A CSV file of (first name, last name, email) rows."""
    lines = ["First Name,Last Name,Email", *(",".join(r) for r in rows)]
    return ("\n".join(lines) + "\n").encode()


async def upload(base: str, who: Member, body: bytes) -> httpx.Response:
    """POST a CSV file to the import endpoint of the API at `base`."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as c:
        return await c.post(
            "/api/v1/leads/import",
            headers={**who.headers, "content-type": "text/csv"},
            content=body,
        )


# -- 1. background import -------------------------------------------------------------------

CHUNK = 200
BG_UNIQUE = 1150
BG_ROWS = 1200  # six chunks; the last 50 rows repeat the first 50 emails (skipped)


async def test_worker_killed_mid_import_then_resumed_imports_each_row_once(
    env: Env, pg: asyncpg.Connection, lock_on: Callable[[str], TableLock], tmp_path: Path
) -> None:
    org, admin, _ = await people(env, "Import crash GmbH")
    rows = [(f"Bg{i}", "Crash", f"bg{i % BG_UNIQUE}@example.com") for i in range(BG_ROWS)]
    started = await upload(env.api.base_url, admin, csv_of(rows))
    assert started.status_code == 202, started.text
    bid = uuid.UUID(started.json()["import_batch_id"])
    lock = lock_on("import_batches")

    async def batch() -> asyncpg.Record:
        row = await pg.fetchrow("SELECT * FROM import_batches WHERE id = $1", bid)
        assert row is not None
        return row

    with ExitStack() as stack:
        first = stack.enter_context(
            worker(env.url, env.data_dir, tmp_path / "w1.log", gated=True, **_import_worker())
        )
        # Resumes every second, once the first one's claim (1 s lease) is stale.
        second = stack.enter_context(
            worker(
                env.url,
                env.data_dir,
                tmp_path / "w2.log",
                gated=True,
                **_import_worker(import_lease_seconds="1", import_resume_seconds="1"),
            )
        )
        await lock.take()
        first.open_gate()
        # The claim, then chunk after chunk, until a chunk waits at its checkpoint after an
        # earlier one committed.
        await lock.waiting("import_batches")
        while (await batch())["processed_rows"] == 0:
            await lock.step()
            await lock.waiting("import_batches")
        before = await batch()
        first.kill()
        await lock.release()
        assert before["status"] == "running"
        assert 0 < before["processed_rows"] < BG_ROWS
        committed = await _count(
            pg, "SELECT count(*) FROM leads WHERE organization_id = $1", org.id
        )
        assert committed == before["imported_count"] > 0
        second.open_gate()
        await until("the resumed import", lambda: _status_is(pg, bid, "completed"))
    done = await batch()
    assert (done["total_rows"], done["processed_rows"]) == (BG_ROWS, BG_ROWS)
    assert (done["imported_count"], done["skipped_count"], done["error_count"]) == (
        BG_UNIQUE,
        BG_ROWS - BG_UNIQUE,
        0,
    )
    emails = Counter(
        r["email"]
        for r in await pg.fetch("SELECT email FROM leads WHERE organization_id = $1", org.id)
    )
    assert set(emails) == {f"bg{i}@example.com" for i in range(BG_UNIQUE)}
    assert set(emails.values()) == {1}
    history = await pg.fetch(
        "SELECT h.lead_id FROM lead_status_history h JOIN leads l ON l.id = h.lead_id"
        " WHERE l.organization_id = $1",
        org.id,
    )
    assert len(history) == len({r["lead_id"] for r in history}) == BG_UNIQUE
    assert await _count(pg, "SELECT count(*) FROM leads WHERE import_batch_id = $1", bid) == (
        BG_UNIQUE
    )
    finished = await _count(
        pg,
        "SELECT count(*) FROM audit_logs WHERE resource_id = $1 AND action = 'import.completed'",
        str(bid),
    )
    assert finished == 1


def _import_worker(**extra: str) -> dict[str, Any]:
    # Every background file is prepared in a child process, as a large one is: the kill
    # leaves that process to end on its own (its pipe breaks), the resume starts a new one.
    return {
        "import_chunk_rows": CHUNK,
        "worker_threads": "1",
        "import_prepare_process_min_bytes": "0",
        **extra,
    }


async def _status_is(pg: asyncpg.Connection, bid: uuid.UUID, status: str) -> bool:
    found = await pg.fetchval("SELECT status FROM import_batches WHERE id = $1", bid)
    assert found in ("pending", "running", status), found
    return bool(found == status)


async def _count(pg: asyncpg.Connection, sql: str, *args: Any) -> int:
    return int(await pg.fetchval(sql, *args) or 0)


async def test_api_killed_during_synchronous_import_writes_all_rows_or_none(
    env: Env, pg: asyncpg.Connection, lock_on: Callable[[str], TableLock], tmp_path: Path
) -> None:
    org, admin, _ = await people(env, "Sync crash GmbH")
    body = csv_of([(f"Sy{i}", "Crash", f"sy{i}@example.com") for i in range(50)])
    leads_of = "SELECT count(*) FROM leads WHERE organization_id = $1"
    lock = lock_on("lead_status_history")
    with serve(env.url, tmp_path, **API_SETTINGS) as doomed:
        await lock.take()
        request = asyncio.create_task(upload(doomed.base_url, admin, body))
        # The leads are inserted; their status history waits: the import is mid-transaction.
        await lock.waiting("lead_status_history")
        doomed.kill()
        await lock.release()
        with pytest.raises(httpx.TransportError):
            await request
    assert await _count(pg, leads_of, org.id) == 0
    assert (
        await _count(pg, "SELECT count(*) FROM import_batches WHERE organization_id = $1", org.id)
        == 0
    )
    # The same file again, on a live API: every row, once.
    again = await upload(env.api.base_url, admin, body)
    assert again.status_code == 200, again.text
    assert again.json()["imported_count"] == 50
    assert await _count(pg, leads_of, org.id) == 50


# -- 2. SLA sweep ---------------------------------------------------------------------------

REMIND = 400  # reminder due, deadline ahead
LATE = 800  # deadline passed: 500 in the sweep's first transaction, 300 in the second


async def test_worker_killed_mid_sla_sweep_then_each_lead_notified_once(
    env: Env, pg: asyncpg.Connection, lock_on: Callable[[str], TableLock], tmp_path: Path
) -> None:
    org, _, rep = await people(env, "SLA crash GmbH")
    now = datetime.now(UTC)
    async with env.db.sessionmaker() as session:
        for i in range(REMIND + LATE):
            late = i >= REMIND
            lead = Lead(
                organization_id=org.id,
                first_name=f"Sla{i}",
                email=f"sla{i}@example.com",
                status="new",
                tags=[],
                custom={},
                assignee_id=rep.user.id,
                sla_started_at=now - timedelta(hours=3),
                sla_deadline=now - timedelta(minutes=5) if late else now + timedelta(hours=2),
                sla_reminder_at=now - timedelta(minutes=30 if late else 1),
            )
            derive(lead)
            session.add(lead)
        await session.commit()
    notified = (
        "SELECT count(*) FROM notifications WHERE organization_id = $1 AND kind = ANY($2::text[])"
    )
    kinds = ["sla_reminder", "sla_breached"]
    lock = lock_on("audit_logs")
    sla: dict[str, Any] = {"sla_check_seconds": "1", "worker_threads": "1"}
    with ExitStack() as stack:
        first = stack.enter_context(
            worker(env.url, env.data_dir, tmp_path / "w1.log", gated=True, **sla)
        )
        second = stack.enter_context(
            worker(env.url, env.data_dir, tmp_path / "w2.log", gated=True, **sla)
        )
        await lock.take()
        first.open_gate()
        await lock.waiting("audit_logs")
        while await _count(pg, notified, org.id, kinds) == 0:
            await lock.step()  # the sweep's first transaction commits, the next one waits
            await lock.waiting("audit_logs")
        committed = await _count(pg, notified, org.id, kinds)
        first.kill()
        await lock.release()
        assert 0 < committed < REMIND + LATE
        second.open_gate()
        await until(
            "the sweep to finish",
            lambda: _at_least(pg, notified, REMIND + LATE, org.id, kinds),
        )
        # A later sweep, started after the last notification, finds nothing more to do.
        swept = datetime.now(UTC)
        await until("one more sweep", lambda: _periodic_after(pg, "sla.check", swept))
    per_lead = await pg.fetch(
        "SELECT kind, lead_id, count(*) AS n FROM notifications WHERE organization_id = $1"
        " GROUP BY kind, lead_id",
        org.id,
    )
    counts = Counter(r["kind"] for r in per_lead)
    assert counts == {"sla_reminder": REMIND, "sla_breached": LATE}
    assert {r["n"] for r in per_lead} == {1}
    emails = await pg.fetch(
        "SELECT split_part(delivery_key, ':', 1) AS kind, count(*) AS n FROM outbox"
        " WHERE organization_id = $1 GROUP BY 1",
        org.id,
    )
    assert {r["kind"]: r["n"] for r in emails} == {"sla-reminder": REMIND, "sla-breached": LATE}
    marked = await pg.fetchrow(
        "SELECT count(sla_reminded_at) AS reminded, count(sla_breached_at) AS breached"
        " FROM leads WHERE organization_id = $1",
        org.id,
    )
    assert (marked["reminded"], marked["breached"]) == (REMIND, LATE)
    audited = await pg.fetch(
        "SELECT action, count(*) AS n FROM audit_logs WHERE organization_id = $1"
        " AND action LIKE 'lead.sla_%' GROUP BY action",
        org.id,
    )
    assert {r["action"]: r["n"] for r in audited} == {
        "lead.sla_reminder": REMIND,
        "lead.sla_breached": LATE,
    }


async def _at_least(pg: asyncpg.Connection, sql: str, n: int, *args: Any) -> bool:
    return await _count(pg, sql, *args) >= n


async def _periodic_after(pg: asyncpg.Connection, name: str, after: datetime) -> bool:
    """A run of periodic job `name` claimed after `after` has finished."""
    return bool(
        await pg.fetchval(
            "SELECT count(*) FROM periodic_runs WHERE name = $1 AND slot > $2"
            " AND finished_at IS NOT NULL",
            name,
            after,
        )
    )


# -- 3. webhook batch -----------------------------------------------------------------------

HOOKS = 30
HOOK_BATCH = 10
HOLD_AT = 15  # the 15th request (in the second batch) is held until the worker is dead


class HoldingReceiver:
    """A webhook receiver that records the `webhook-id` of every request and holds one."""

    def __init__(self, hold_at: int) -> None:
        self.ids: list[str] = []
        self.leads: dict[str, str] = {}
        self.hold_at = hold_at
        self.held = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                msg = self.headers["webhook-id"]
                with receiver.lock:
                    receiver.ids.append(msg)
                    receiver.leads[msg] = json.loads(body)["data"]["lead"]["id"]
                    hold = len(receiver.ids) == receiver.hold_at
                if hold:
                    receiver.held.set()
                    receiver.release.wait(DEADLINE)
                try:
                    self.send_response(200)
                    self.end_headers()
                except OSError:
                    pass  # the sender is gone (killed while this request was held)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def distinct(self) -> set[str]:
        with self.lock:
            return set(self.ids)


@pytest.fixture
def receiver() -> Iterator[HoldingReceiver]:
    r = HoldingReceiver(HOLD_AT)
    r.thread.start()
    try:
        yield r
    finally:
        r.release.set()
        r.server.shutdown()
        r.server.server_close()


async def test_worker_killed_mid_webhook_batch_then_every_event_delivered(
    env: Env, pg: asyncpg.Connection, receiver: HoldingReceiver, tmp_path: Path
) -> None:
    org, admin, _ = await people(env, "Webhook crash GmbH")
    async with httpx.AsyncClient(base_url=env.api.base_url, timeout=30) as c:
        r = await c.post(
            "/api/v1/admin/integrations/webhooks",
            headers=admin.headers,
            json={"events": ["lead.created"], "endpoint_url": receiver.url},
        )
        assert r.status_code == 201, r.text
    endpoint = uuid.UUID(r.json()["id"])
    body = csv_of([(f"Wh{i}", "Crash", f"wh{i}@example.com") for i in range(HOOKS)])
    imported = await upload(env.api.base_url, admin, body)
    assert imported.status_code == 200 and imported.json()["imported_count"] == HOOKS
    hooks: dict[str, Any] = {
        "webhooks_batch_size": str(HOOK_BATCH),
        "webhooks_concurrency": "4",
        "webhooks_relay_seconds": "1",
        "webhooks_lock_seconds": "10",  # the least allowed: the crashed claim expires after it
        "webhooks_allow_private": "true",
        "worker_threads": "1",
    }
    deliveries = "SELECT * FROM webhook_deliveries WHERE endpoint_id = $1"
    with ExitStack() as stack:
        first = stack.enter_context(
            worker(env.url, env.data_dir, tmp_path / "w1.log", gated=True, **hooks)
        )
        second = stack.enter_context(
            worker(env.url, env.data_dir, tmp_path / "w2.log", gated=True, **hooks)
        )
        first.open_gate()
        assert await asyncio.to_thread(receiver.held.wait, DEADLINE), first.output()
        first.kill()
        receiver.release.set()
        rows = await pg.fetch(deliveries, endpoint)
        delivered_before = {r["message_id"] for r in rows if r["status"] == "delivered"}
        in_flight = {r["message_id"] for r in rows if r["locked_until"] is not None}
        assert len(rows) == HOOKS
        assert len(delivered_before) == HOOK_BATCH and len(in_flight) == HOOK_BATCH
        second.open_gate()
        await until(
            "every delivery delivered",
            lambda: _all_delivered(pg, endpoint),
            within=DEADLINE + 10,
        )
    rows = await pg.fetch(deliveries, endpoint)
    ids = {f"msg_{r['message_id'].hex}": r for r in rows}
    assert len(rows) == len(ids) == HOOKS  # one delivery per event, none added by the crash
    assert receiver.distinct() == set(ids)  # every event arrived
    received = Counter(receiver.ids)
    # At least once: only the batch in flight at the kill may arrive twice, with the same
    # webhook-id (receivers deduplicate by it); nothing delivered and recorded is sent again.
    again = {m for m, n in received.items() if n > 1}
    assert max(received.values()) <= 2
    assert again <= {f"msg_{m.hex}" for m in in_flight}
    assert {f"msg_{m.hex}" for m in delivered_before}.isdisjoint(again)
    assert {ids[m]["attempts"] for m in again} <= {2}
    lead_ids = {
        str(r["id"])
        for r in await pg.fetch("SELECT id FROM leads WHERE organization_id = $1", org.id)
    }
    assert set(receiver.leads.values()) == lead_ids
    attempts = await pg.fetch(
        "SELECT d.message_id, a.success, a.error FROM webhook_attempts a"
        " JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.endpoint_id = $1",
        endpoint,
    )
    # Every attempt is in the log, the ones the kill cut off too (written with the claim,
    # never completed): as many rows per delivery as its `attempts` counts.
    assert Counter(a["message_id"] for a in attempts) == {
        r["message_id"]: r["attempts"] for r in rows
    }
    cut = {a["message_id"] for a in attempts if not a["success"]}
    assert cut == in_flight
    assert {a["error"] for a in attempts if not a["success"]} == {INTERRUPTED}
    assert sum(a["success"] for a in attempts) == HOOKS


async def _all_delivered(pg: asyncpg.Connection, endpoint: uuid.UUID) -> bool:
    n = await _count(
        pg,
        "SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1 AND status = 'delivered'",
        endpoint,
    )
    return n == HOOKS


# -- 4. scheduled report --------------------------------------------------------------------


async def test_worker_killed_mid_scheduled_report_then_sent_once_for_the_period(
    env: Env,
    pg: asyncpg.Connection,
    lock_on: Callable[[str], TableLock],
    smtp: tuple[int, Inbox],  # noqa: F811
    tmp_path: Path,
) -> None:
    port, inbox = smtp
    _, admin, rep = await people(env, "Report crash GmbH")
    recipients = sorted([admin.user.email, rep.user.email])
    async with httpx.AsyncClient(base_url=env.api.base_url, timeout=30) as c:
        built = await c.post(
            "/api/v1/reports/build",
            headers=admin.headers,
            json={"name": "Crash report", "fields": ["full_name", "source"]},
        )
        assert built.status_code == 201, built.text
        r = await c.post(
            "/api/v1/reports/schedule",
            headers=admin.headers,
            json={
                "report_id": built.json()["report_id"],
                "frequency": "daily",
                "time": "08:00",
                "timezone": "UTC",
                "recipients": recipients,
                "format": "csv",
            },
        )
        assert r.status_code == 201, r.text
    schedule = uuid.UUID(r.json()["id"])
    due = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    await pg.execute("UPDATE report_schedules SET next_run = $1 WHERE id = $2", due, schedule)
    reports: dict[str, Any] = {
        "report_schedule_seconds": "1",
        "outbox_relay_seconds": "1",
        "smtp_host": "127.0.0.1",
        "smtp_port": str(port),
        "worker_threads": "2",
    }
    lock = lock_on("outbox")
    with ExitStack() as stack:
        first = stack.enter_context(
            worker(env.url, env.data_dir, tmp_path / "w1.log", gated=True, **reports)
        )
        second = stack.enter_context(
            worker(
                env.url,
                env.data_dir,
                tmp_path / "w2.log",
                gated=True,
                report_run_lease_seconds="1",
                **reports,
            )
        )
        await lock.take()
        first.open_gate()
        # Claimed (committed), file made and stored, its emails waiting to be queued.
        await lock.waiting("INSERT INTO outbox")
        first.kill()
        await lock.release()
        runs = await pg.fetch("SELECT * FROM report_runs WHERE schedule_id = $1", schedule)
        assert [(r["status"], r["due_at"]) for r in runs] == [("running", due)]
        assert (
            await pg.fetchval("SELECT next_run FROM report_schedules WHERE id = $1", schedule) > due
        )
        second.open_gate()
        assert await asyncio.to_thread(inbox.wait_for, len(recipients), DEADLINE), second.output()
        sent = datetime.now(UTC)
        await until("one more schedule check", lambda: _periodic_after(pg, "reports.due", sent))
        await until("one more outbox relay", lambda: _periodic_after(pg, "outbox.relay", sent))
    runs = await pg.fetch("SELECT * FROM report_runs WHERE schedule_id = $1", schedule)
    assert [(r["status"], r["due_at"]) for r in runs] == [("succeeded", due)]
    assert sorted(str(m["To"]) for m in inbox.messages) == recipients
    keys = {str(m["X-Leadflow-Delivery-Key"]).strip() for m in inbox.messages}
    assert len(keys) == len(recipients) and all(
        k.startswith(f"report-run:{runs[0]['id']}:") for k in keys
    )
    outbox = await pg.fetch(
        "SELECT status FROM outbox WHERE delivery_key LIKE $1", f"report-run:{runs[0]['id']}:%"
    )
    assert [r["status"] for r in outbox] == ["sent"] * len(recipients)
