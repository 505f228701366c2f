"""Where the health figures come from: route groups, the per-process request figures and
their flush (several processes at once), worker heartbeats, the flusher's lifecycle, and
pruning after the retention."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

import leadflow.wiring  # noqa: F401  (registers every job)
from leadflow.config import Settings
from leadflow.db.engine import Database
from leadflow.health.requests import RequestFlusher, flush
from leadflow.kit.clock import clock
from leadflow.kit.requeststats import (
    BIN_COUNT,
    LATENCY_BOUNDS_MS,
    MAX_PENDING_MINUTES,
    RequestStats,
    bin_of,
    minute_of,
    quantile_ms,
    route_group,
)
from leadflow.models.health import BIN_COLUMNS, HealthSample, RequestSample, WorkerHeartbeat
from leadflow.models.outbox import PeriodicRun
from leadflow.worker.heartbeat import beat
from leadflow.worker.jobs import JobContext, RecordingQueue, run_job
from leadflow.worker.runtime import Ticker
from tests.fixtures.factories import Factory

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def test_route_groups_are_the_first_segment_below_the_api() -> None:
    assert route_group("/api/v1/leads") == "leads"
    assert route_group("/api/v1/leads/{lead_id}/notes") == "leads"
    assert route_group("/api/v1/admin/jobs/{job_id}/retry") == "admin/jobs"
    assert route_group("/api/v1/admin/health/metrics") == "admin/health"
    assert route_group("/api/v1/health") == "health"
    assert route_group("/health/ready") == "health"
    assert route_group("/metrics") == "metrics"
    assert route_group("/api/process-request") == "process-request"
    assert route_group("unmatched") == "unmatched"
    assert route_group("/") == "unmatched"


def test_bins_and_quantiles() -> None:
    assert len(BIN_COLUMNS) == BIN_COUNT == len(LATENCY_BOUNDS_MS) + 1
    assert all(hasattr(RequestSample, c) for c in BIN_COLUMNS)
    assert [bin_of(ms) for ms in (0, 5, 5.01, 10, 9999, 10000, 10001)] == [0, 0, 1, 1, 14, 14, 15]
    assert quantile_ms([0] * BIN_COUNT, 0.95) is None
    only_slow = [0] * BIN_COUNT
    only_slow[-1] = 3
    assert quantile_ms(only_slow, 0.95) == 10000.0  # the open bin reads as its lower bound
    first = [0] * BIN_COUNT
    first[0] = 4
    assert quantile_ms(first, 0.5) == 2.5


def test_unflushed_figures_stay_bounded_when_the_database_is_away() -> None:
    stats = RequestStats()
    stats.record("leads", 200, 0.01, NOW - timedelta(minutes=MAX_PENDING_MINUTES + 1))
    stats.record("leads", 200, 0.01, NOW - timedelta(minutes=1))
    taken = stats.take(minute_of(NOW))
    assert len(taken) == 2 and stats.pending == {}
    stats.record("leads", 200, 0.01, NOW - timedelta(minutes=1))
    stats.restore(taken, minute_of(NOW))
    # The too-old minute is dropped; the other is merged with what came in meanwhile.
    assert list(stats.pending) == [(minute_of(NOW) - 1, "leads")]
    assert stats.pending[(minute_of(NOW) - 1, "leads")].requests == 2


async def test_requests_are_counted_by_route_group(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    clock.freeze(NOW)
    org = await factory.org()
    admin = await factory.member(org)
    counselor = await factory.member(org, "counselor")
    stats: RequestStats = app.state.request_stats
    assert (await client.get("/api/v1/leads", headers=admin.headers)).status_code == 200
    assert (await client.get("/leads", headers=admin.headers)).status_code == 200  # alias
    assert (await client.get("/api/v1/admin/jobs", headers=counselor.headers)).status_code == 403
    assert (await client.get("/api/v1/no-such-thing")).status_code == 404
    assert (await client.get("/health")).status_code == 200
    minute = minute_of(NOW)
    counts = {group: s.requests for (m, group), s in stats.pending.items() if m == minute}
    assert counts == {"leads": 2, "admin/jobs": 1, "unmatched": 1, "health": 1}
    assert all(s.errors == 0 for s in stats.pending.values())


async def test_flush_adds_up_the_figures_of_every_process(
    committed_db: Database,
) -> None:
    """Several API processes flush the same minutes at once: one row per (minute, group)
    holding the sum, whichever process came first."""
    clock.freeze(NOW)
    processes = [RequestStats() for _ in range(4)]
    for i, stats in enumerate(processes):
        for _ in range(10 + i):
            stats.record("leads", 200, 0.02, NOW - timedelta(minutes=1))
        stats.record("leads", 502, 0.7, NOW - timedelta(minutes=1))
        stats.record("tasks", 200, 0.004, NOW - timedelta(minutes=2))
    written = await asyncio.gather(*(flush(s, committed_db.sessionmaker) for s in processes))
    assert written == [2, 2, 2, 2]
    # And once more later: a process that flushes a minute late still adds to the same row.
    late = RequestStats()
    late.record("leads", 200, 0.02, NOW - timedelta(minutes=1))
    await flush(late, committed_db.sessionmaker)
    async with committed_db.sessionmaker() as session:
        rows = {r.route_group: r for r in await session.scalars(select(RequestSample))}
    assert set(rows) == {"leads", "tasks"}
    leads, tasks = rows["leads"], rows["tasks"]
    assert leads.minute == minute_of(NOW) - 1 and tasks.minute == minute_of(NOW) - 2
    assert (leads.requests, leads.errors) == (10 + 11 + 12 + 13 + 4 + 1, 4)
    assert (leads.le_25ms, leads.le_1000ms) == (47, 4)
    assert leads.latency_ms_sum == pytest.approx(47 * 20 + 4 * 700)
    assert (tasks.requests, tasks.le_5ms, tasks.errors) == (4, 4, 0)


async def test_a_failed_flush_keeps_the_figures(tmp_path: Path) -> None:
    clock.freeze(NOW)
    stats = RequestStats()
    stats.record("leads", 200, 0.02, NOW - timedelta(minutes=1))
    dead = Database("postgresql+asyncpg://nobody@127.0.0.1:1/none")
    with pytest.raises(OSError):  # connection refused
        await flush(stats, dead.sessionmaker)
    await dead.dispose()
    assert stats.pending[(minute_of(NOW) - 1, "leads")].requests == 1


async def test_the_flusher_writes_the_open_minute_when_the_server_stops(
    committed_db: Database,
) -> None:
    clock.freeze(NOW)
    stats = RequestStats()
    flusher = RequestFlusher(stats, committed_db.sessionmaker)
    flusher.start()
    stats.record("auth", 200, 0.05, NOW)  # the current minute
    await flusher.stop()
    assert flusher.task is not None and flusher.task.cancelled()
    assert stats.pending == {}
    async with committed_db.sessionmaker() as session:
        row = await session.scalar(select(RequestSample))
    assert row is not None and (row.minute, row.route_group, row.requests) == (
        minute_of(NOW),
        "auth",
        1,
    )


async def test_a_heartbeat_renews_one_row_per_worker(session: AsyncSession) -> None:
    started = NOW - timedelta(hours=1)
    await beat(session, name="host:1", started_at=started, now=NOW)
    await beat(session, name="host:1", started_at=started, now=NOW + timedelta(seconds=15))
    await beat(session, name="host:2", started_at=NOW, now=NOW)
    await session.commit()
    rows = {r.name: r for r in await session.scalars(select(WorkerHeartbeat))}
    assert set(rows) == {"host:1", "host:2"}
    await session.refresh(rows["host:1"])
    assert rows["host:1"].started_at == started
    assert rows["host:1"].last_seen_at == NOW + timedelta(seconds=15)


async def test_the_workers_ticker_beats_every_interval(
    committed_db_url: str, tmp_path: Path
) -> None:
    """The ticker of a worker beats on its first tick and once per heartbeat interval, and
    claims the minute sampler once a minute with the other periodic jobs."""
    settings = Settings(
        env="test", database_url=committed_db_url, secret_key="t" * 40, data_dir=tmp_path
    )
    queue = RecordingQueue()
    ticker = Ticker(settings, queue)
    t0 = NOW.timestamp()

    def ticks() -> None:
        runner = asyncio.Runner()
        db = Database(committed_db_url, pool_size=1)
        try:
            for offset in (0, 1, 14, 15, 29, 31, 60):
                ticker.tick(runner, db, t0 + offset)
        finally:
            runner.run(db.dispose())
            runner.close()

    await asyncio.to_thread(ticks)  # the ticker runs in a thread with its own event loop
    db = Database(committed_db_url)
    async with db.sessionmaker() as s:
        row = await s.scalar(select(WorkerHeartbeat))
        samplers = list(
            await s.scalars(select(PeriodicRun.slot).where(PeriodicRun.name == "health.sample"))
        )
    await db.dispose()
    assert row is not None and row.name == ticker.worker_name
    assert row.last_seen_at == NOW + timedelta(seconds=60)
    assert row.started_at == ticker.started_at
    assert sorted(samplers) == [NOW, NOW + timedelta(minutes=1)]
    assert [args for name, args, _ in queue.items if args[0] == "health.sample"] == [
        ("health.sample", NOW.isoformat()),
        ("health.sample", (NOW + timedelta(minutes=1)).isoformat()),
    ]


async def test_samples_and_gone_workers_are_pruned_after_30_days(
    session: AsyncSession, jobs: JobContext
) -> None:
    clock.freeze(NOW)
    await run_job(jobs, "health.sample")
    stats = RequestStats()
    stats.record("leads", 200, 0.01, NOW - timedelta(minutes=1))
    await flush(stats, jobs.session_factory)
    await beat(session, name="old:1", started_at=NOW, now=NOW)
    await session.commit()
    # 30 days later, to the minute: nothing is old enough yet.
    clock.advance(timedelta(days=30) - timedelta(minutes=1))
    await run_job(jobs, "health.sample")
    stats.record("leads", 200, 0.01, clock.now() - timedelta(minutes=1))
    await flush(stats, jobs.session_factory)
    await beat(session, name="new:1", started_at=clock.now(), now=clock.now())
    await session.commit()
    result = await run_job(jobs, "maintenance.prune")
    assert (result["request_samples"], result["health_samples"], result["worker_heartbeats"]) == (
        0,
        0,
        0,
    )
    # Two minutes later the first minute's samples and the old worker are past 30 days.
    clock.advance(timedelta(minutes=2))
    result = await run_job(jobs, "maintenance.prune")
    assert result["request_samples"] == 1
    assert result["health_samples"] == 6  # the six metrics of the first minute
    assert result["worker_heartbeats"] == 1
    session.expunge_all()
    assert await session.scalar(select(func.count()).select_from(RequestSample)) == 1
    assert set(await session.scalars(select(HealthSample.minute))) == {
        minute_of(NOW + timedelta(days=30) - timedelta(minutes=1))
    }
    assert list(await session.scalars(select(WorkerHeartbeat.name))) == ["new:1"]
