"""A 100,000-lead import with and without an active webhook endpoint: what writing the
deliveries (one per lead, set-based with each chunk) costs the import.

    .venv/bin/python -m bench webhooks_import        # 100,000 rows, PostgreSQL and SQLite
    LEADFLOW_BENCH_ROWS=30000 LEADFLOW_BENCH_ENGINES=postgresql \
        .venv/bin/python -m bench webhooks_import

Each run imports the same generated CSV (`bench.import_leads.generate`) through the worker's
background path into a fresh database; "with" adds an active endpoint subscribed to every lead
event first (nothing is sent: the bench measures the import, the worker sends later). Runs
alternate without/with, `LEADFLOW_BENCH_REPEAT` (2) times each; the ratio compares the medians.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import func, select

from bench._common import fresh_database
from bench.import_leads import generate
from leadflow.auth.service import actor_for_user
from leadflow.config import Settings
from leadflow.db import migrate
from leadflow.db.engine import Database, session_scope
from leadflow.imports.batches import file_chunks, start_async
from leadflow.imports.jobs import run_job
from leadflow.imports.options import ImportOptions
from leadflow.imports.rows import Source
from leadflow.kit import crypto
from leadflow.models.user import User
from leadflow.models.webhook import WebhookBatch, WebhookDelivery, WebhookEndpoint
from leadflow.organizations import repository as org_repo
from leadflow.organizations.service import create_organization
from leadflow.webhooks.catalogue import EVENTS
from leadflow.webhooks.signing import new_secret
from leadflow.worker.jobs import JobContext

ROWS = int(os.environ.get("LEADFLOW_BENCH_ROWS", "100000"))
REPEAT = int(os.environ.get("LEADFLOW_BENCH_REPEAT", "2"))
ENGINES = os.environ.get("LEADFLOW_BENCH_ENGINES", "postgresql,sqlite").split(",")


async def one_import(
    url: str, path: Path, settings: Settings, *, webhook: bool
) -> tuple[float, int]:
    """Seconds for the background import of `path`; deliveries written."""
    db = Database(url)
    try:
        async with session_scope(db) as session:
            org = await create_organization(session, name="Webhook Bench")
            role = await org_repo.get_role_by_name(session, org.id, "admin")
            assert role is not None
            user = User(
                organization_id=org.id,
                email=f"bench{time.time_ns()}@example.com",
                full_name="Bench",
                role_id=role.id,
                status="active",
            )
            user.role = role
            session.add(user)
            if webhook:
                session.add(
                    WebhookEndpoint(
                        organization_id=org.id,
                        url="https://93.184.215.14/hooks",
                        events=list(EVENTS),
                        secret=crypto.encrypt(settings, new_secret()),
                        status="active",
                        consecutive_failures=0,
                    )
                )
            await session.flush()
            actor = actor_for_user(user)
        t0 = time.perf_counter()
        async with session_scope(db) as session:
            source = Source(fmt="csv", chunks=file_chunks(path), filename=path.name)
            batch = await start_async(session, actor, source, ImportOptions())
            batch_id = str(batch.id)
        ctx = JobContext(settings=settings, session_factory=db.sessionmaker)
        status = await run_job(ctx, batch_id)
        elapsed = time.perf_counter() - t0
        assert status == "completed", status
        async with db.sessionmaker() as session:
            # Owed: delivery rows plus those still in batches (the worker has not run).
            n = await session.scalar(select(func.count()).select_from(WebhookDelivery))
            batched = await session.scalar(select(func.coalesce(func.sum(WebhookBatch.size), 0)))
        return elapsed, int(n or 0) + int(batched or 0)
    finally:
        await db.dispose()


async def engine_runs(engine: str, path: Path, tmp: Path, settings: Settings) -> None:
    """Alternate without/with on fresh databases; print the medians and the ratio."""
    times: dict[bool, list[float]] = {False: [], True: []}
    written = 0
    for i in range(REPEAT):
        for webhook in (False, True):
            if engine == "postgresql":
                raw = await fresh_database(f"leadflow_bench_webhooks_{int(webhook)}")
                url = raw.replace("postgresql://", "postgresql+asyncpg://")
            else:
                url = f"sqlite+aiosqlite:///{tmp / f'wh-{i}-{int(webhook)}.db'}"
                await asyncio.to_thread(migrate.upgrade, url)
            s = settings.model_copy(update={"database_url": url})
            seconds, n = await one_import(url, path, s, webhook=webhook)
            times[webhook].append(seconds)
            if webhook:
                written = n
            label = "with webhook" if webhook else "without"
            print(f"  {engine:<10} {label:<13} {seconds:7.1f} s  ({n:,} deliveries owed)")
    without, with_ = statistics.median(times[False]), statistics.median(times[True])
    print(
        f"{engine}: {ROWS:,} rows — without {without:.1f} s, with an active endpoint "
        f"{with_:.1f} s ({written:,} deliveries owed): ratio {with_ / without:.3f} "
        f"(+{(with_ / without - 1) * 100:.1f}%)"
    )


async def run() -> None:
    """Generate the file once, then run each engine."""
    tmp = Path(tempfile.mkdtemp(prefix="leadflow-bench-"))
    path = tmp / "leads.csv"
    generate(path, ROWS)
    settings = Settings(secret_key="bench-" + "x" * 40, data_dir=tmp)
    for engine in ENGINES:
        await engine_runs(engine.strip(), path, tmp, settings)


def main() -> None:
    """Entry point for `python -m bench webhooks_import`."""
    asyncio.run(run())
