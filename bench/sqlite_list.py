"""Lead list on SQLite (the default deployment): the search's index and the capped count.

    .venv/bin/python -m bench sqlite_list
    LEADFLOW_BENCH_SQLITE_LIST_ROWS=100000 .venv/bin/python -m bench sqlite_list

Migrates a SQLite file, loads LEADFLOW_BENCH_SQLITE_LIST_ROWS leads (default 50,000, the
load benchmark's SQLite size) of one organisation and copies the file; the copy loses
`sqx_leads_search` (migration 0029). Each case is then served from both files by the same
application code through ASGI, the two calls interleaved in every round, and both answers
must be the same bytes. Below that, the capped count of a broad status filter is timed as
sent (`SELECT 1 … LIMIT cap`) beside the same count selecting the id (as before), on the
same file: the constant lets SQLite answer from the status index without reading a row.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from bench._common import BENCH_SECRET, summary, timed_together
from bench.leads_list import asgi_get, load_sqlite
from bench.load import session_token
from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.db import migrate
from leadflow.db.engine import Database

ROWS = int(os.environ.get("LEADFLOW_BENCH_SQLITE_LIST_ROWS", "50000"))
RUNS = int(os.environ.get("LEADFLOW_BENCH_RUNS", "100"))
CASES: dict[str, dict[str, str]] = {
    "list": {},
    "status": {"status": "contacted"},
    "q=kramer": {"q": "kramer"},
    "q=sch": {"q": "sch"},
    "q=müll": {"q": "müll"},
    "q=a": {"q": "a"},
    "status+q+sort": {"status": "won", "q": "kramer", "sort": "name"},
}
_COUNT = (
    "SELECT count(*) FROM (SELECT {what} FROM leads WHERE organization_id = ? "
    "AND deleted_at IS NULL AND status IN (?) LIMIT 10001)"
)


def _raw_counts(path: Path) -> tuple[list[float], list[float]]:
    conn = sqlite3.connect(path)
    try:
        org = conn.execute("SELECT organization_id FROM leads LIMIT 1").fetchone()[0]
        out: tuple[list[float], list[float]] = ([], [])
        for i in range(RUNS + 10):
            for samples, what in zip(out, ("1", "id"), strict=True):
                t = time.perf_counter()
                conn.execute(_COUNT.format(what=what), (org, "contacted")).fetchall()
                if i >= 10:
                    samples.append((time.perf_counter() - t) * 1000)
        return out
    finally:
        conn.close()


async def run() -> None:
    """Load, copy without the index, and time each case from both files."""
    tmp = Path(tempfile.mkdtemp(prefix="leadflow-bench-sqlite-"))
    try:
        with_index, without = tmp / "with.db", tmp / "without.db"
        url = f"sqlite+aiosqlite:///{with_index}"
        t = time.perf_counter()
        await asyncio.to_thread(migrate.upgrade, url)
        await load_sqlite(url, ROWS)
        print(f"loaded {ROWS:,} leads in {time.perf_counter() - t:.1f} s")
        token, _ = await session_token(url, "bench@example.com", BENCH_SECRET)
        shutil.copy(with_index, without)
        conn = sqlite3.connect(without)
        conn.execute("DROP INDEX sqx_leads_search")
        conn.commit()
        conn.close()
        served = []
        for path in (with_index, without):
            file_url = f"sqlite+aiosqlite:///{path}"
            db = Database(file_url)
            served.append(
                (db, create_app(Settings(secret_key=BENCH_SECRET, database_url=file_url), db))
            )
        print(f"{RUNS} rounds per case after 10 warm-up rounds, limit=50, API server time (ASGI)")
        print(f"{'case':<15} {'with sqx_leads_search':<30} {'without':<30} with/without p50")
        for name, params in CASES.items():
            answers: list[bytes] = [b"", b""]

            def call(
                k: int, params: dict[str, str] = params, answers: list[bytes] = answers
            ) -> Callable[[], Awaitable[None]]:
                async def one() -> None:
                    answers[k] = await asgi_get(served[k][1], "/api/v1/leads", params, token)

                return one

            a, b = await timed_together([call(0), call(1)], runs=RUNS)
            assert answers[0] == answers[1], name
            ratio = sorted(a)[len(a) // 2] / sorted(b)[len(b) // 2]
            print(f"{name:<15} {summary(a):<30} {summary(b):<30} {ratio:.2f}x")
        for db, _ in served:
            await db.dispose()
        one, by_id = _raw_counts(with_index)
        print(
            f"capped count of status=contacted, raw sqlite3: SELECT 1 {summary(one)}; "
            f"SELECT id {summary(by_id)}"
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    """Entry point for `python -m bench sqlite_list`."""
    asyncio.run(run())
