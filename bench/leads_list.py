"""Lead list at 1M leads on PostgreSQL: the API endpoint vs the same SQL through asyncpg.

    make bench                    # all benchmarks
    .venv/bin/python -m bench leads_list
    LEADFLOW_BENCH_ROWS=200000 .venv/bin/python -m bench leads_list   # smaller run
    LEADFLOW_BENCH_REUSE=1 .venv/bin/python -m bench leads_list       # keep a loaded database

Loads LEADFLOW_BENCH_ROWS leads (default 1,000,000) into a scratch database with COPY, laid
out as an import writes them (each chunk of the import's size in `layout_key` order: surname
first), merges the GIN pending lists and runs ANALYZE (as the import path does; no VACUUM),
then measures p50/p95 of
(a) a status filter, (b) a `q` search, (c) both plus sort=name, each at limit=50.

For (b) and (c) the page query is also timed on a copy of the leads in the order they were
made (`bench_leads_arrival`, with the trigram index and primary key: leads created one at a
time lie so), after checking it returns the same page and total.

For (b) and (c) it also builds a narrow search table in the scratch database (the searched
and sorted columns of each live lead, with its own trigram index: `bench_lead_search`) and
times the same search answered from it — matches collected and counted there, only the page's
50 leads read from `leads` — beside the endpoint's own page query, after checking that both
return the same page and total. The product keeps the search on `leads` (docs/performance.md
says why).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

import asyncpg
import httpx
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from bench._cluster import bench_targets
from bench._common import (
    BENCH_SECRET,
    PG_ADMIN_URL,
    asgi_scope,
    fresh_database,
    pct,
    summary,
    timed_together,
)
from leadflow.app import create_app
from leadflow.auth.service import start_session
from leadflow.config import Settings
from leadflow.db.engine import Database, session_scope
from leadflow.imports.prepare import CHUNK_ROWS
from leadflow.leads.repository import LIST_COLUMNS, layout_key
from leadflow.models.user import User
from leadflow.organizations import repository as org_repo
from leadflow.organizations.service import create_organization

ROWS = int(os.environ.get("LEADFLOW_BENCH_ROWS", "1000000"))
RUNS = int(os.environ.get("LEADFLOW_BENCH_RUNS", "200"))
# Reuse the scratch database of an earlier run when it holds ROWS leads (loading 1M takes
# minutes); the database is then left in place for the next run.
REUSE = os.environ.get("LEADFLOW_BENCH_REUSE") == "1"
DB_NAME = "leadflow_bench_leads"
STATUSES = ("new", "contacted", "qualified", "proposal", "won", "lost")
FIRST = (
    "Lea",
    "Jonas",
    "Mia",
    "Felix",
    "Hannah",
    "Lukas",
    "Emma",
    "Paul",
    "Sophie",
    "Leon",
    "Anna",
    "Max",
    "Laura",
    "Tim",
    "Julia",
    "Olivia",
    "James",
    "Emily",
    "Oliver",
    "Grace",
)
PRE = (
    "Kra",
    "Mül",
    "Schm",
    "Wag",
    "Beck",
    "Hoff",
    "Rich",
    "Klein",
    "Wolf",
    "Neu",
    "Zimm",
    "Braun",
    "Krü",
    "Hof",
    "Hart",
    "Lang",
    "Wer",
    "Sto",
    "Fran",
    "Bau",
)
SUF = (
    "mer",
    "ler",
    "idt",
    "ner",
    "er",
    "mann",
    "ke",
    "berg",
    "ter",
    "hardt",
    "inger",
    "stein",
    "feld",
    "haus",
    "bach",
)
COLUMNS = (
    "id",
    "organization_id",
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "company",
    "channel",
    "source",
    "status",
    "tags",
    "custom",
    "score",
    "needs_action",
    "search_text",
    "version",
    "created_at",
    "updated_at",
    "assignee_id",
    "created_by",
)


def _rows(org_id: object, user_id: object, n: int) -> list[tuple[object, ...]]:
    rng = random.Random(7)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    out: list[tuple[object, ...]] = []
    for i in range(n):
        first = rng.choice(FIRST)
        last = rng.choice(PRE) + rng.choice(SUF)
        full = f"{first} {last}"
        email = f"{first}.{last}.{i}@example.com".lower()
        phone = f"+49151{i:08d}"
        company = f"{last} {rng.choice(('GmbH', 'AG', 'KG'))}" if i % 3 else None
        created = start + timedelta(seconds=i * 90 + rng.randint(0, 60))
        search = " ".join(p for p in (full, email, phone, company) if p).lower()
        out.append(
            (
                uuid7(),
                org_id,
                first,
                last,
                full,
                email,
                phone,
                company,
                "email",
                rng.choice(("web", "messe", "ads")),
                rng.choice(STATUSES),
                json.dumps(rng.sample(["vip", "b2b", "hot", "cold"], rng.randint(0, 2))),
                "{}",
                rng.randint(0, 100),
                rng.random() < 0.2,
                search,
                1,
                created,
                created,
                user_id,
                user_id,
            )
        )
    return out


def _db_url(admin_url: str) -> str:
    return admin_url.rsplit("/", 1)[0] + f"/{DB_NAME}"


async def _reuse(admin_url: str = PG_ADMIN_URL) -> tuple[Database, str] | None:
    """The loaded database of an earlier run with a new bench session, if it is complete."""
    url = _db_url(admin_url)
    try:
        conn = await asyncpg.connect(url)
    except asyncpg.InvalidCatalogNameError:
        return None
    try:
        if await conn.fetchval("SELECT count(*) FROM leads") != ROWS:
            return None
        if await conn.fetchval("SELECT obj_description('leads'::regclass)") != LAYOUT:
            return None
    finally:
        await conn.close()
    db = Database(url.replace("postgresql://", "postgresql+asyncpg://"))
    async with session_scope(db) as session:
        user = await session.scalar(select(User).where(User.email == "bench@example.com"))
        assert user is not None
        pair = await start_session(session, _settings(db), user)
    print(f"reusing {DB_NAME} with {ROWS:,} leads")
    return db, pair.access_token


def _settings(db: Database) -> Settings:
    return Settings(secret_key=BENCH_SECRET, database_url=db.url)


async def _bench_admin(session: AsyncSession) -> User:
    """A new organisation "Bench GmbH" and its admin `bench@example.com`."""
    org = await create_organization(session, name="Bench GmbH")
    role = await org_repo.get_role_by_name(session, org.id, "admin")
    assert role is not None
    user = User(
        organization_id=org.id,
        email="bench@example.com",
        full_name="Bench",
        role_id=role.id,
        status="active",
    )
    user.role = role
    session.add(user)
    await session.flush()
    return user


# The leads are laid out as an import writes them: each chunk of CHUNK_ROWS in the order
# of `layout_key` (surname first), ids and times in the order of the input. `_reuse` takes
# an earlier database only if it was loaded so.
LAYOUT = f"bench layout: import chunks of {CHUNK_ROWS} by layout_key"


def _import_layout(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    def key(r: tuple[object, ...]) -> str:
        return layout_key({"last_name": r[3], "company": r[7], "full_name": r[4]})

    out: list[tuple[object, ...]] = []
    for start in range(0, len(rows), CHUNK_ROWS):
        out += sorted(rows[start : start + CHUNK_ROWS], key=key)
    return out


async def _load(url: str) -> tuple[Database, str]:
    db = Database(url.replace("postgresql://", "postgresql+asyncpg://"))
    async with session_scope(db) as session:
        user = await _bench_admin(session)
        pair = await start_session(session, _settings(db), user)
        org_id, user_id = user.organization_id, user.id
    conn = await asyncpg.connect(url)
    t = time.perf_counter()
    batch = 100_000  # a multiple of the import's chunk
    for offset in range(0, ROWS, batch):
        rows = _import_layout(_rows(org_id, user_id, min(batch, ROWS - offset)))
        await conn.copy_records_to_table("leads", records=rows, columns=COLUMNS)
    await conn.execute(f"COMMENT ON TABLE leads IS '{LAYOUT}'")
    # As the import path ends a bulk load: merge the trigram/tag GIN pending lists, then
    # fresh planner statistics. No VACUUM.
    await conn.execute("SELECT gin_clean_pending_list('pgx_leads_search_trgm'::regclass)")
    await conn.execute("SELECT gin_clean_pending_list('pgx_leads_tags'::regclass)")
    await conn.execute("ANALYZE leads")
    print(f"loaded {ROWS:,} leads in {time.perf_counter() - t:.1f} s (COPY + flush + ANALYZE)")
    await conn.close()
    return db, pair.access_token


async def load_sqlite(database_url: str, n: int) -> None:
    """The same organisation, admin (`bench@example.com`) and `n` leads on a migrated SQLite
    database (for the load benchmark's one-process run)."""
    from sqlalchemy import insert

    from leadflow.models.lead import Lead, reached_with

    db = Database(database_url)
    async with session_scope(db) as session:
        user = await _bench_admin(session)
        org_id, user_id = user.organization_id, user.id
    rows = [dict(zip(COLUMNS, r, strict=True)) for r in _import_layout(_rows(org_id, user_id, n))]
    for row in rows:
        row["tags"] = json.loads(str(row["tags"]))
        row["custom"] = {}
        row["stages_reached"] = reached_with(None, str(row["status"]))
    async with session_scope(db) as session:
        for i in range(0, len(rows), 5000):
            await session.execute(insert(Lead), rows[i : i + 5000])
    await db.dispose()


async def _capture(
    db: Database, call: Callable[[], Awaitable[None]]
) -> list[tuple[str, str, tuple]]:
    """The SQL one API call sends to PostgreSQL, in order: (method, statement, parameters).

    Statements executed through SQLAlchemy are seen by its cursor event; the hot paths that
    run on the asyncpg connection directly (`db/fastpath.py`) call `Connection.fetch`, and
    transaction control (BEGIN/COMMIT, when a request opens a transaction) goes through
    `Connection.execute`.
    """
    seen: list[tuple[str, str, tuple]] = []

    def listen(_c: object, _cur: object, statement: str, params: object, *_: object) -> None:
        seen.append(("fetch", statement, tuple(params) if params else ()))  # type: ignore[arg-type]

    fetch, execute = asyncpg.Connection.fetch, asyncpg.Connection.execute

    async def spy_fetch(
        self: asyncpg.Connection, query: str, *args: object, **kw: object
    ) -> object:
        seen.append(("fetch", query, args))
        return await fetch(self, query, *args, **kw)

    async def spy_execute(
        self: asyncpg.Connection, query: str, *args: object, **kw: object
    ) -> object:
        if not args:  # BEGIN / COMMIT / ROLLBACK
            seen.append(("execute", query, args))
        return await execute(self, query, *args, **kw)

    event.listen(db.engine.sync_engine, "before_cursor_execute", listen)
    asyncpg.Connection.fetch = spy_fetch
    asyncpg.Connection.execute = spy_execute
    try:
        await call()
    finally:
        asyncpg.Connection.fetch = fetch
        asyncpg.Connection.execute = execute
        event.remove(db.engine.sync_engine, "before_cursor_execute", listen)
    return seen


async def asgi_get(app: object, path: str, params: dict[str, str], token: str) -> bytes:
    """One GET straight through the ASGI application: the server's own time per request,
    without an HTTP client's request building and response parsing around it."""
    scope = asgi_scope(
        "GET", path, urlencode(params), [(b"authorization", f"Bearer {token}".encode())]
    )
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
    assert status == 200, (status, body)
    return b"".join(body)


def _label(sql: str) -> str:
    words = sql.split()
    if words[0] in ("BEGIN", "COMMIT", "ROLLBACK", "EXPLAIN"):
        return words[0]
    return "auth" if "auth_sessions" in sql else "leads"


# The narrow search table: the columns a search filters and sorts on, one row per live lead.
_NARROW_TABLE = (
    "CREATE TABLE bench_lead_search AS SELECT id AS lead_id, organization_id, status,"
    " created_at, full_name, search_text FROM leads WHERE deleted_at IS NULL",
    "ALTER TABLE bench_lead_search ADD PRIMARY KEY (lead_id)",
    "CREATE INDEX bench_lead_search_trgm ON bench_lead_search USING gin (search_text gin_trgm_ops)",
    "ANALYZE bench_lead_search",
)
# The endpoint's search statement with the matches taken from the narrow table:
# {filters} and {order} per case; $1 organisation, $2 pattern, $3 cap + 1, $4 statuses.
_NARROW_SQL = """
WITH m AS (
  SELECT s.lead_id AS mid, s.{sort} AS sv FROM bench_lead_search s
   WHERE s.organization_id = $1 AND s.search_text LIKE $2 {filters} LIMIT $3)
SELECT (SELECT count(*) FROM m) AS match_total, {columns}
  FROM (SELECT mid, sv FROM m ORDER BY {order} LIMIT 50) p JOIN leads l ON l.id = p.mid
 ORDER BY {order}
"""
_NARROW_CASES: dict[str, dict[str, str]] = {
    "q": {"sort": "created_at", "filters": "", "order": "sv DESC, mid DESC"},
    "status+q+sort": {
        "sort": "full_name",
        "filters": "AND s.status = ANY($4::text[])",
        "order": "sv, mid",
    },
}


# The same leads in the order they were made (their uuid7 ids), as leads created one at a
# time lie, with the indexes the search uses.
_ARRIVAL_TABLE = (
    "CREATE TABLE bench_leads_arrival AS SELECT * FROM leads ORDER BY id",
    "ALTER TABLE bench_leads_arrival ADD PRIMARY KEY (id)",
    "CREATE INDEX bench_leads_arrival_trgm ON bench_leads_arrival"
    " USING gin (search_text gin_trgm_ops) WHERE deleted_at IS NULL",
    "ANALYZE bench_leads_arrival",
)


async def _arrival_table(conn: asyncpg.Connection) -> None:
    t = time.perf_counter()
    await conn.execute("DROP TABLE IF EXISTS bench_leads_arrival")
    for sql in _ARRIVAL_TABLE:
        await conn.execute(sql)
    print(f"the leads in arrival order copied in {time.perf_counter() - t:.1f} s")


def _arrival_sql(sql: str) -> str:
    return re.sub(r"\bleads\b", "bench_leads_arrival", sql)


def _arrival_call(
    raw: asyncpg.Connection, page_sql: tuple[str, str, tuple]
) -> Callable[[], Awaitable[list[asyncpg.Record]]]:
    """The endpoint's page query on the arrival-order copy."""
    sql = _arrival_sql(page_sql[1])

    async def call() -> list[asyncpg.Record]:
        return await raw.fetch(sql, *page_sql[2])

    return call


async def _narrow_table(conn: asyncpg.Connection) -> None:
    """(Re)build `bench_lead_search` from the loaded leads and print its size beside theirs."""
    t = time.perf_counter()
    await conn.execute("DROP TABLE IF EXISTS bench_lead_search")
    for sql in _NARROW_TABLE:
        await conn.execute(sql)
    sizes = await conn.fetchrow(
        "SELECT pg_relation_size('bench_lead_search') AS narrow, pg_relation_size('leads')"
        " AS leads, pg_relation_size('bench_lead_search_trgm') AS trgm"
    )
    assert sizes is not None
    mb = {k: v / 2**20 for k, v in dict(sizes).items()}
    print(
        f"narrow search table built in {time.perf_counter() - t:.1f} s: {mb['narrow']:.0f} MB"
        f" (leads {mb['leads']:.0f} MB), its trigram index {mb['trgm']:.0f} MB"
    )


def _narrow_call(
    raw: asyncpg.Connection, name: str, params: dict[str, str], org: object
) -> Callable[[], Awaitable[list[asyncpg.Record]]]:
    """The case's search answered from the narrow table (same page, same total)."""
    case = _NARROW_CASES[name]
    sql = _NARROW_SQL.format(columns=", ".join(f"l.{c.name}" for c in LIST_COLUMNS), **case)
    cap = Settings.model_fields["list_count_cap"].default
    args: list[object] = [org, f"%{params['q'].lower()}%", cap + 1]
    if "status" in params:
        args.append([params["status"]])

    async def call() -> list[asyncpg.Record]:
        return await raw.fetch(sql, *args)

    return call


CASES: dict[str, dict[str, str]] = {
    "status": {"status": "contacted"},
    "q": {"q": "kramer"},
    "status+q+sort": {"status": "won", "q": "kramer", "sort": "name"},
}


async def _buffers(raw: asyncpg.Connection, sql: str, args: tuple) -> str:
    """Shared buffers the statement found in PostgreSQL's cache and read from outside it."""
    plan = await raw.fetchval(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", *args)
    top = json.loads(plan)[0]["Plan"]
    return f"{top['Shared Hit Blocks']:,} buffers hit, {top['Shared Read Blocks']:,} read"


async def measure(label: str, admin_url: str) -> None:
    """Load (or reuse, on the shared server) 1M leads, then measure each case."""
    print(f"== PostgreSQL {label}")
    reused = await _reuse(admin_url) if REUSE and admin_url == PG_ADMIN_URL else None
    if reused is None:
        db, token = await _load(await fresh_database(DB_NAME, admin_url=admin_url))
    else:
        db, token = reused
    url = _db_url(admin_url)
    app = create_app(_settings(db), database=db)
    headers = {"Authorization": f"Bearer {token}"}
    # Same planner setting as the application's pool, so both run the same plans.
    raw = await asyncpg.connect(url, server_settings={"plan_cache_mode": "force_custom_plan"})
    await _narrow_table(raw)
    await _arrival_table(raw)
    org = await raw.fetchval("SELECT organization_id FROM users WHERE email = 'bench@example.com'")
    transport = httpx.ASGITransport(app=app)
    print(f"{RUNS} runs each after 10 warm-up runs; limit=50")
    print(
        f"{'case':<15} {'API (ASGI, server time)':<28} {'API via httpx client':<28}"
        f" {'same SQL via asyncpg':<28} {'page query alone':<28} API/SQL p95"
    )
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        for name, params in CASES.items():

            async def api(params: dict[str, str] = params) -> None:
                await asgi_get(app, "/api/v1/leads", params, token)

            async def via_httpx(params: dict[str, str] = params) -> None:
                r = await client.get("/api/v1/leads", params=params, headers=headers)
                assert r.status_code == 200, r.text

            await api()  # warm: the statements of a repeated view (cached estimate reused)
            statements = await _capture(db, api)

            async def same_sql(statements: list[tuple[str, str, tuple]] = statements) -> None:
                # Exactly what the API sent, round trip for round trip (BEGIN/COMMIT included
                # when it sent them).
                for method, sql, args in statements:
                    if method == "execute":
                        await raw.execute(sql)
                    else:
                        await raw.fetch(sql, *args)

            page_sql = next(st for st in statements if "FROM leads" in st[1])

            async def page(page_sql: tuple[str, str, tuple] = page_sql) -> None:
                await raw.fetch(page_sql[1], *page_sql[2])

            calls: list[Callable[[], Awaitable[object]]] = [api, via_httpx, same_sql, page]
            if name in _NARROW_CASES:
                ours = [dict(r) for r in await raw.fetch(page_sql[1], *page_sql[2])]
                narrow = _narrow_call(raw, name, params, org)
                arrival = _arrival_call(raw, page_sql)
                for other in (narrow, arrival):
                    assert ours == [dict(r) for r in await other()], name
                calls += [narrow, arrival]
            a, h, r, p, *n = await timed_together(calls, runs=RUNS)
            print(
                f"{name:<15} {summary(a):<28} {summary(h):<28} {summary(r):<28} {summary(p):<28}"
                f" {pct(a, 95) / pct(r, 95):.2f}x   ({len(statements)} round trips:"
                f" {', '.join(_label(st[1]) for st in statements)})"
            )
            # Whether the page query's rows came from shared_buffers or from the OS (its
            # last run, after the timed ones).
            print(f"{'':<15} page query: {await _buffers(raw, page_sql[1], page_sql[2])}")
            if n:
                print(
                    f"{'':<15} narrow search table, same page and total: {summary(n[0])}"
                    f" ({pct(n[0], 95) / pct(p, 95):.2f}x the page query's p95)"
                )
                print(
                    f"{'':<15} page query on the leads in arrival order: {summary(n[1])}"
                    f" ({pct(n[1], 95) / pct(p, 95):.2f}x the page query's p95);"
                    f" {await _buffers(raw, _arrival_sql(page_sql[1]), page_sql[2])}"
                )
    await raw.close()
    await db.dispose()


async def run() -> None:
    """Each PostgreSQL target in turn: the shared server, and with LEADFLOW_BENCH_PGDATA a
    throwaway cluster with a production-like configuration (shared_buffers sized to RAM)."""
    async with contextlib.aclosing(bench_targets()) as targets:
        async for label, admin_url in targets:
            await measure(label, admin_url)


def main() -> None:
    """Entry point for `python -m bench leads_list`."""
    asyncio.run(run())
