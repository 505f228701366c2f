"""Lead export at 1M leads on PostgreSQL: memory stays flat, speed against raw `COPY … TO`.

    .venv/bin/python -m bench leads_export
    LEADFLOW_BENCH_REUSE=1 .venv/bin/python -m bench leads_export   # reuse the list's database

Uses the database of `bench/leads_list.py` (loading it first when needed, in a child process
so that the loader's memory does not count here). Streams `POST /api/v1/leads/export` through
the ASGI application for the whole organisation (CSV) and for one status (CSV and XLSX),
sampling the process's resident memory on every chunk, and compares with PostgreSQL's own
`COPY (SELECT the same columns) TO STDOUT WITH CSV` through asyncpg.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import time
from collections.abc import Mapping
from dataclasses import dataclass

import asyncpg

from bench import leads_list
from bench._common import PG_ADMIN_URL, asgi_scope
from leadflow.app import create_app
from leadflow.leads.export import EXPORT_COLUMNS


def _rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


@dataclass
class Streamed:
    """What one export sent: bytes, seconds, and the resident memory seen while streaming."""

    bytes: int
    seconds: float
    rss_start: float
    rss_peak: float
    rss_at_10_percent: float


async def _export(app: object, token: str, query: str, body: Mapping[str, object]) -> Streamed:
    """One export straight through the ASGI app; chunks are counted, not kept."""
    payload = json.dumps(body).encode()
    scope = asgi_scope(
        "POST",
        "/api/v1/leads/export",
        query,
        [
            (b"authorization", f"Bearer {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ],
    )
    sent = False
    status = 0
    size = 0
    samples: list[float] = []

    async def receive() -> dict[str, object]:
        nonlocal sent
        if sent:
            await asyncio.Event().wait()  # the client stays connected until the end
        sent = True
        return {"type": "http.request", "body": payload, "more_body": False}

    async def send(message: dict[str, object]) -> None:
        nonlocal status, size
        if message["type"] == "http.response.start":
            status = int(message["status"])  # type: ignore[call-overload]
        elif message["type"] == "http.response.body":
            size += len(message.get("body", b""))  # type: ignore[arg-type]
            samples.append(_rss_mb())

    start_rss = _rss_mb()
    t = time.perf_counter()
    await app(scope, receive, send)  # type: ignore[operator]
    seconds = time.perf_counter() - t
    assert status == 200, status
    return Streamed(
        size, seconds, start_rss, max(samples), samples[len(samples) // 10] if samples else 0
    )


async def _raw_copy(url: str, org_filter: str) -> tuple[int, float]:
    conn = await asyncpg.connect(url)
    cols = ", ".join(EXPORT_COLUMNS)
    size = 0

    async def sink(chunk: bytes) -> None:
        nonlocal size
        size += len(chunk)

    t = time.perf_counter()
    await conn.copy_from_query(
        f"SELECT {cols} FROM leads WHERE deleted_at IS NULL {org_filter} "
        "ORDER BY created_at DESC, id DESC",
        output=sink,
        format="csv",
        header=True,
    )
    seconds = time.perf_counter() - t
    await conn.close()
    return size, seconds


def _load_in_child() -> None:
    async def load() -> None:
        url = await leads_list.fresh_database(leads_list.DB_NAME)
        db, _token = await leads_list._load(url)
        await db.dispose()

    asyncio.run(load())


async def run() -> None:
    """Export the bench organisation's leads three ways and print speed and memory."""
    reused = await leads_list._reuse()
    if reused is None:
        child = multiprocessing.get_context("spawn").Process(target=_load_in_child)
        child.start()
        child.join()
        assert child.exitcode == 0, child.exitcode
        reused = await leads_list._reuse()
        assert reused is not None
    db, token = reused
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{leads_list.DB_NAME}"
    app = create_app(leads_list._settings(db), database=db)
    rows = leads_list.ROWS
    print(f"{rows:,} leads; resident memory sampled on every streamed chunk (~1,000 rows)")
    print(
        f"{'export':<30} {'rows':>9} {'MB out':>8} {'seconds':>8} {'rows/s':>9}"
        f" {'RSS start':>10} {'RSS @10%':>9} {'RSS peak':>9} {'raw COPY s':>10} {'ratio':>6}"
    )
    contacted = await _count(url, "contacted")
    cases = [
        ("CSV, every lead", "", {}, rows, ""),
        ("CSV, status=contacted", "", {"status": ["contacted"]}, contacted, "contacted"),
        ("XLSX, status=contacted", "format=xlsx", {"status": ["contacted"]}, contacted, None),
    ]
    for name, query, body, n, status in cases:
        got = await _export(app, token, query, body)
        raw = ""
        ratio = ""
        if status is not None:
            where = f"AND status = '{status}'" if status else ""
            _size, raw_s = await _raw_copy(url, where)
            raw = f"{raw_s:.1f}"
            ratio = f"{raw_s / got.seconds:.2f}"
        print(
            f"{name:<30} {n:>9,} {got.bytes / 1e6:>8.1f} {got.seconds:>8.1f}"
            f" {n / got.seconds:>9,.0f} {got.rss_start:>8.0f}MB {got.rss_at_10_percent:>7.0f}MB"
            f" {got.rss_peak:>7.0f}MB {raw:>10} {ratio:>6}"
        )
    await db.dispose()


async def _count(url: str, status: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        n = await conn.fetchval(
            "SELECT count(*) FROM leads WHERE deleted_at IS NULL AND status = $1", status
        )
    finally:
        await conn.close()
    return int(n)


def main() -> None:
    """Entry point for `python -m bench leads_export`."""
    asyncio.run(run())
