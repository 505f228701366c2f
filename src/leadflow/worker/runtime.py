"""Huey wiring: the queue (SqliteHuey embedded, RedisHuey distributed), the consumer, and the
ticker that starts periodic jobs once per interval across all workers."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
import time
from datetime import UTC, datetime
from typing import Any

from huey import RedisHuey, SqliteHuey
from huey.api import Huey
from huey.consumer import Consumer
from sqlalchemy.exc import IntegrityError

from leadflow.config import Settings
from leadflow.db.engine import Database
from leadflow.kit.events import require_wired
from leadflow.kit.fanout import install_publisher, uninstall_publisher
from leadflow.models.outbox import PeriodicRun
from leadflow.worker.heartbeat import beat
from leadflow.worker.jobs import JobContext, JobQueue, run_job, set_queue

log = logging.getLogger("leadflow.worker")
_local = threading.local()


def build_huey(settings: Settings) -> Huey:
    """RedisHuey when `LEADFLOW_REDIS_URL` is set, else SqliteHuey in the data directory."""
    if settings.redis_url:
        return RedisHuey("leadflow", url=settings.redis_url, utc=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("leadflow", filename=str(settings.data_dir / "queue.db"), utc=True)


def _thread_runtime(settings: Settings) -> tuple[asyncio.Runner, JobContext]:
    # One event loop and one engine per worker thread: asyncpg pools belong to a loop.
    rt = getattr(_local, "rt", None)
    if rt is None:
        runner = asyncio.Runner()
        db = Database(settings.database_url, pool_size=2)
        rt = (runner, JobContext(settings=settings, session_factory=db.sessionmaker))
        _local.rt = rt
    return rt


class HueyQueue:
    """Hands committed jobs to Huey."""

    def __init__(self, huey: Huey, settings: Settings) -> None:
        self.huey = huey

        def leadflow_job(name: str, *args: Any) -> Any:
            runner, ctx = _thread_runtime(settings)
            return runner.run(run_job(ctx, name, *args))

        self.task = huey.task(name="leadflow_job")(leadflow_job)

    def enqueue(self, name: str, args: tuple[Any, ...], eta: datetime | None) -> None:
        """Queue now, or durably at `eta`."""
        if eta is None:
            self.task(name, *args)
        else:
            self.task.schedule(args=(name, *args), eta=eta.astimezone(UTC).replace(tzinfo=None))

    def depth(self) -> tuple[int, int]:
        """Huey's queue length and its schedule's (one round trip each to Redis/SQLite)."""
        return self.huey.pending_count(), self.huey.scheduled_count()


class _QuietConsumer(Consumer):
    """Consumer that leaves signal handling to its host (uvicorn in embedded mode)."""

    def _set_signal_handlers(self) -> None:
        return None


class Ticker(threading.Thread):
    """Claims each interval of each periodic job in the database and enqueues the winner's run.

    The claim is an INSERT into `periodic_runs` keyed by (job, interval start): however many
    workers tick, exactly one insert succeeds per interval. Every worker's ticker also renews
    the worker's heartbeat (`worker_heartbeats`) every `LEADFLOW_HEARTBEAT_SECONDS`.
    """

    def __init__(self, settings: Settings, queue: JobQueue) -> None:
        super().__init__(name="leadflow-ticker", daemon=True)
        self.settings = settings
        self.queue = queue
        self.stop_event = threading.Event()
        self.worker_name = f"{socket.gethostname()}:{os.getpid()}"
        self.specs = [
            ("outbox.relay", settings.outbox_relay_seconds),
            ("sla.check", settings.sla_check_seconds),
            ("imports.resume", settings.import_resume_seconds),
            ("imports.cleanup_files", settings.import_file_cleanup_seconds),
            ("calls.due", settings.call_due_seconds),
            ("tasks.due", settings.task_due_seconds),
            ("maintenance.prune", settings.prune_seconds),
            ("reports.due", settings.report_schedule_seconds),
            ("reports.cleanup_files", settings.report_file_cleanup_seconds),
            ("analytics.fold_rollups", settings.rollup_fold_seconds),
            ("health.sample", settings.health_sample_seconds),
            ("webhooks.dispatch", settings.webhooks_relay_seconds),
        ]
        self.last: dict[str, int] = {}
        self.last_beat = -1
        self.started_at = datetime.now(UTC)

    def run(self) -> None:
        """Tick once a second until stopped."""
        runner = asyncio.Runner()
        db = Database(self.settings.database_url, pool_size=1)
        try:
            while not self.stop_event.is_set():
                self.tick(runner, db, time.time())
                self.stop_event.wait(1.0)
        finally:
            runner.run(db.dispose())
            runner.close()

    def tick(self, runner: asyncio.Runner, db: Database, now: float) -> None:
        """One tick at Unix time `now`: beat when a heartbeat interval began since the last
        tick, and claim every periodic job whose interval began."""
        beat_slot = int(now // self.settings.heartbeat_seconds)
        if beat_slot != self.last_beat:
            self.last_beat = beat_slot
            try:
                runner.run(self._beat(db, self.started_at, datetime.fromtimestamp(now, UTC)))
            except Exception:
                log.exception("heartbeat failed")
        for name, interval in self.specs:
            slot = int(now // interval) * interval
            if self.last.get(name) == slot:
                continue
            self.last[name] = slot
            try:
                if runner.run(self._claim(db, name, slot)):
                    stamp = datetime.fromtimestamp(slot, UTC).isoformat()
                    self.queue.enqueue("periodic.run", (name, stamp), None)
            except Exception:
                log.exception("periodic claim failed", extra={"job": name})

    async def _beat(self, db: Database, started_at: datetime, now: datetime) -> None:
        async with db.sessionmaker() as session:
            await beat(session, name=self.worker_name, started_at=started_at, now=now)
            await session.commit()

    async def _claim(self, db: Database, name: str, slot: int) -> bool:
        async with db.sessionmaker() as session:
            session.add(
                PeriodicRun(
                    name=name, slot=datetime.fromtimestamp(slot, UTC), worker=self.worker_name
                )
            )
            try:
                await session.commit()
            except IntegrityError:
                return False
            return True


class Worker:
    """A Huey consumer plus the periodic ticker."""

    def __init__(self, settings: Settings, *, embedded: bool) -> None:
        self.settings = settings
        self.huey = build_huey(settings)
        self.queue = HueyQueue(self.huey, settings)
        set_queue(self.queue)
        consumer_cls = _QuietConsumer if embedded else Consumer
        # SIGTERM (what systemd, Docker and Kubernetes send to stop a service) lets running
        # jobs finish, so a delivered email is also marked sent; SIGINT stops at once.
        self.consumer = consumer_cls(
            self.huey,
            workers=settings.worker_threads,
            worker_type="thread",
            periodic=False,
            graceful_signal="TERM",
        )
        self.ticker = Ticker(settings, self.queue)

    def start(self) -> None:
        """Start consuming in background threads."""
        require_wired()  # every job is registered
        self.consumer.start()
        self.ticker.start()

    def stop(self) -> None:
        """Stop ticking and let running jobs finish."""
        self.ticker.stop_event.set()
        self.consumer.stop(graceful=True)

    def run_forever(self) -> None:
        """Standalone `leadflow worker`: block until SIGINT/SIGTERM."""
        require_wired()
        # Notifications the jobs commit (SLA reminders, breaches…) wake the API's streams.
        install_publisher(self.settings.redis_url)
        self.ticker.start()
        try:
            self.consumer.run()
        finally:
            self.ticker.stop_event.set()
            uninstall_publisher()
