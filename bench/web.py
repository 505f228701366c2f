"""Web pages at 1M leads on PostgreSQL: server time of the lead list, a lead's page and the
dashboard (the target is ≤ 100 ms each).

    .venv/bin/python -m bench web
    LEADFLOW_BENCH_REUSE=1 .venv/bin/python -m bench web     # the database leads_list loaded
    LEADFLOW_BENCH_ROWS=20000 LEADFLOW_BENCH_WEB_DB=leadflow_bench_web_small \\
        .venv/bin/python -m bench web                        # a small run of its own

Uses the scratch database `bench/leads_list.py` builds (`leadflow_bench_leads`, the same
1M leads; with LEADFLOW_BENCH_REUSE=1 it is reused when it holds LEADFLOW_BENCH_ROWS leads,
else it is loaded again). LEADFLOW_BENCH_WEB_DB names another database, so a small run does
not replace a loaded 1M one. Each page is requested straight through the ASGI application
with a signed-in browser's session cookie (the server's own time: routing, session check,
services, SQL and template rendering), p50/p95 over LEADFLOW_BENCH_RUNS requests.
"""

from __future__ import annotations

import asyncio
import os
import statistics
from collections.abc import Awaitable, Callable

import asyncpg
from sqlalchemy import select

from bench import leads_list
from bench._common import PG_ADMIN_URL, asgi_scope, fresh_database, pct, summary, timed_together
from leadflow.app import create_app
from leadflow.auth.service import start_session
from leadflow.db.engine import Database, session_scope
from leadflow.models.user import User
from leadflow.web.session import SESSION_COOKIE

ROWS = leads_list.ROWS
RUNS = int(os.environ.get("LEADFLOW_BENCH_RUNS", "100"))
REUSE = os.environ.get("LEADFLOW_BENCH_REUSE") == "1"
DB_NAME = os.environ.get("LEADFLOW_BENCH_WEB_DB", leads_list.DB_NAME)
TARGET_MS = 100.0


def _url(name: str) -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


async def _signed_in(db: Database) -> str:
    """A fresh login session of the bench user: the browser's session cookie value."""
    async with session_scope(db) as session:
        user = await session.scalar(select(User).where(User.email == "bench@example.com"))
        assert user is not None
        pair = await start_session(session, leads_list._settings(db), user)
    return pair.access_token


async def _database() -> Database:
    """The loaded database (reused when it holds ROWS leads and reuse is asked for)."""
    url = _url(DB_NAME)
    if REUSE:
        try:
            conn = await asyncpg.connect(url)
        except asyncpg.InvalidCatalogNameError:
            conn = None
        if conn is not None:
            try:
                count = await conn.fetchval("SELECT count(*) FROM leads")
            finally:
                await conn.close()
            if count == ROWS:
                print(f"reusing {DB_NAME} with {ROWS:,} leads")
                return Database(url.replace("postgresql://", "postgresql+asyncpg://"))
    url = await fresh_database(DB_NAME)
    db, _ = await leads_list._load(url)
    return db


async def page_get(app: object, path: str, query: str, cookie: str) -> bytes:
    """One GET of a page straight through the ASGI application (200 expected)."""
    headers = [(b"cookie", f"{SESSION_COOKIE}={cookie}".encode()), (b"accept", b"text/html")]
    scope = asgi_scope("GET", path, query, headers)
    status = 0
    body: list[bytes] = []

    async def receive() -> dict[str, object]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, object]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = int(message["status"])  # type: ignore[call-overload]
        elif message["type"] == "http.response.body":
            body.append(message.get("body", b""))  # type: ignore[arg-type]

    await app(scope, receive, send)  # type: ignore[operator]
    assert status == 200, (path, status, b"".join(body)[:500])
    return b"".join(body)


async def run() -> None:
    """Load (or reuse), then time every page in turn, round after round."""
    db = await _database()
    cookie = await _signed_in(db)
    conn = await asyncpg.connect(_url(DB_NAME))
    try:
        # A lead in the middle of the table (not the newest, which caches might favour).
        lead_id = await conn.fetchval(
            "SELECT id FROM leads ORDER BY created_at OFFSET $1 LIMIT 1", ROWS // 2
        )
    finally:
        await conn.close()
    app = create_app(leads_list._settings(db), database=db)
    pages: dict[str, tuple[str, str]] = {
        "lead list": ("/crm/leads", ""),
        "lead list, status filter": ("/crm/leads", "status=contacted"),
        "lead list, search": ("/crm/leads", "q=kramer"),
        "lead page": (f"/crm/leads/{lead_id}", ""),
        "lead page: tasks panel": (f"/crm/leads/{lead_id}/tasks", ""),
        "lead page: duplicates panel": (f"/crm/leads/{lead_id}/duplicates", ""),
        "dashboard": ("/", ""),
    }
    calls: list[Callable[[], Awaitable[object]]] = []
    for path, query in pages.values():

        async def call(path: str = path, query: str = query) -> None:
            await page_get(app, path, query, cookie)

        calls.append(call)
    print(f"{ROWS:,} leads; {RUNS} rounds after 10 warm-up rounds; server time per page")
    print(f"{'page':<30} {'server time':<28} p95 ≤ {TARGET_MS:.0f} ms")
    results = await timed_together(calls, runs=RUNS)
    for name, samples in zip(pages, results, strict=True):
        verdict = "yes" if pct(samples, 95) <= TARGET_MS else "NO"
        print(f"{name:<30} {summary(samples):<28} {verdict}  (mean {statistics.mean(samples):.1f})")
    await db.dispose()


def main() -> None:
    """Entry point for `python -m bench web`."""
    asyncio.run(run())
