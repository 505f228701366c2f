"""Shared benchmark helpers: a scratch PostgreSQL database and latency statistics."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable

import asyncpg

from leadflow.db import migrate

PG_ADMIN_URL = os.environ.get(
    "LEADFLOW_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
# The secret key every benchmark signs its tokens with (a scratch database's only users).
BENCH_SECRET = "bench-secret-" + "x" * 40


async def fresh_database(name: str, *, admin_url: str = PG_ADMIN_URL) -> str:
    """Drop and recreate database `name` on the server of `admin_url`, migrate it, return its
    URL (plain `postgresql://`; add `+asyncpg` for SQLAlchemy)."""
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    await asyncio.to_thread(migrate.upgrade, url.replace("postgresql://", "postgresql+asyncpg://"))
    return url


async def timed(fn: Callable[[], Awaitable[object]], *, runs: int, warmup: int = 10) -> list[float]:
    """Milliseconds of `runs` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        await fn()
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


async def timed_together(
    fns: list[Callable[[], Awaitable[object]]], *, runs: int, warmup: int = 10
) -> list[list[float]]:
    """Milliseconds of each of `fns`, called in turn within every round.

    Interleaving puts the compared calls under the same machine conditions, so a ratio
    between them does not depend on when a noisy neighbour happened to run.
    """
    for _ in range(warmup):
        for fn in fns:
            await fn()
    out: list[list[float]] = [[] for _ in fns]
    for _ in range(runs):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            await fn()
            out[i].append((time.perf_counter() - t) * 1000)
    return out


def pct(samples: list[float], p: float) -> float:
    """The p-th percentile (0–100) of `samples`."""
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def summary(samples: list[float]) -> str:
    """ "p50 x ms, p95 y ms"."""
    return f"p50 {statistics.median(samples):6.2f} ms  p95 {pct(samples, 95):6.2f} ms"


def asgi_scope(
    method: str, path: str, query: str, headers: list[tuple[bytes, bytes]]
) -> dict[str, object]:
    """An HTTP scope for calling the ASGI application directly (no client, no server)."""
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
        "state": {},
    }
