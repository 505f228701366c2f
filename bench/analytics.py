"""Analytics at 1M leads on PostgreSQL: the API endpoints vs the same SQL through asyncpg.

    .venv/bin/python -m bench analytics
    LEADFLOW_BENCH_ROWS=200000 .venv/bin/python -m bench analytics   # smaller run
    LEADFLOW_BENCH_REUSE=1 .venv/bin/python -m bench analytics       # keep a loaded database
LEADFLOW_BENCH_CASES=kpis,funnel .venv/bin/python -m bench analytics   # only these cases
LEADFLOW_BENCH_EXPLAIN=1 …                                            # plans of each statement

Loads one organisation with LEADFLOW_BENCH_ROWS leads (default 1,000,000) over the two years
up to now, ~3 status-history rows, one assignment and ~2 interactions per lead, and SLA clocks
on 90% of them, with COPY, then VACUUM (ANALYZE). Measures p50/p95 of kpis, funnel and
counselor-performance (the default period: the last 30 days) and lead-volume (the last year
by week), each for the admin and for one counselor, through the ASGI app and as the bare SQL
the endpoint sent replayed on asyncpg. No result cache is involved; the lead rollups (kept by
the database, see analytics/rollups.py) are, as in production.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
import uuid
from datetime import datetime, timedelta

import asyncpg
from sqlalchemy import select
from uuid_utils.compat import uuid7

from bench._common import BENCH_SECRET, PG_ADMIN_URL, fresh_database, pct, summary, timed_together
from bench.leads_list import _capture, asgi_get
from leadflow.analytics import rollups
from leadflow.app import create_app
from leadflow.auth.service import start_session
from leadflow.config import Settings
from leadflow.db.engine import PG_SERVER_SETTINGS, Database, session_scope
from leadflow.kit.clock import utcnow
from leadflow.models.lead import reached_with
from leadflow.models.team import Team
from leadflow.models.user import User
from leadflow.organizations import repository as org_repo
from leadflow.organizations.service import create_organization

ROWS = int(os.environ.get("LEADFLOW_BENCH_ROWS", "1000000"))
RUNS = int(os.environ.get("LEADFLOW_BENCH_RUNS", "100"))
REUSE = os.environ.get("LEADFLOW_BENCH_REUSE") == "1"
# Comma-separated case names to run (e.g. "kpis,funnel"); all of them by default.
ONLY = {c for c in os.environ.get("LEADFLOW_BENCH_CASES", "").split(",") if c}
# Print every statement of every case with its EXPLAIN ANALYZE plan (to see where time goes).
EXPLAIN = os.environ.get("LEADFLOW_BENCH_EXPLAIN") == "1"
DB_NAME = "leadflow_bench_analytics"
ADMIN_EMAIL = "bench-admin@example.com"
COUNSELOR_EMAIL = "counselor-0@example.com"
TEAMS = 4
COUNSELORS = 20
DAYS = 730
# Current stage shares (70% open) and the path a lead walks to get there.
PATH = ("new", "contacted", "qualified", "proposal", "won")
STATUS_WEIGHTS = {
    "new": 20,
    "contacted": 20,
    "qualified": 17,
    "proposal": 13,
    "won": 12,
    "lost": 18,
}
SOURCES = ("web", "messe", "ads", "referral", "partner", None)
SOURCE_WEIGHTS = (35, 15, 25, 10, 10, 5)

LEAD_COLUMNS = (
    "id",
    "organization_id",
    "first_name",
    "last_name",
    "full_name",
    "email",
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
    "sla_started_at",
    "sla_deadline",
    "sla_met_at",
    "sla_breached_at",
    "last_contacted_at",
    "stages_reached",
)
HISTORY_COLUMNS = (
    "id",
    "organization_id",
    "lead_id",
    "actor_user_id",
    "created_at",
    "from_status",
    "to_status",
)
ASSIGNMENT_COLUMNS = (
    "id",
    "organization_id",
    "lead_id",
    "actor_user_id",
    "created_at",
    "from_user_id",
    "to_user_id",
)
INTERACTION_COLUMNS = (
    "id",
    "organization_id",
    "lead_id",
    "type",
    "direction",
    "occurred_at",
    "actor_user_id",
    "created_at",
)

Batch = dict[str, list[tuple[object, ...]]]


def _batch(
    rng: random.Random,
    org_id: uuid.UUID,
    admin_id: uuid.UUID,
    counselors: list[uuid.UUID],
    first: int,
    n: int,
    now: datetime,
) -> Batch:
    """Rows of leads `first`..`first + n` and of their histories."""
    out: Batch = {"leads": [], "history": [], "assignments": [], "interactions": []}
    start = now - timedelta(days=DAYS)
    span = DAYS * 86400
    statuses = list(STATUS_WEIGHTS)
    weights = list(STATUS_WEIGHTS.values())
    for i in range(first, first + n):
        lead_id = uuid7()
        # Spread evenly over the two years, in lead order (as they arrive).
        created = start + timedelta(seconds=(i + rng.random()) * span / ROWS)
        age = (now - created).total_seconds()
        status = rng.choices(statuses, weights)[0]
        assignee = rng.choice(counselors) if rng.random() < 0.95 else None
        name = f"Lead {i}"
        deadline = met = breached = None
        if rng.random() < 0.9:
            deadline = created + timedelta(hours=1)
            if rng.random() < 0.8:
                met = created + timedelta(minutes=rng.expovariate(1 / 40))
                if met > now:
                    met = None
            if deadline <= now and (met is None or met > deadline):
                breached = deadline
        value = rng.randint(500, 20000) if rng.random() < 0.6 else None
        # Status history: the creation row, then each step along the path to the current
        # stage (a lost lead drops out after a random number of steps).
        if status == "lost":
            steps = [*PATH[: rng.randint(1, 4)], "lost"]
        else:
            steps = list(PATH[: PATH.index(status) + 1])
        out["leads"].append(
            (
                lead_id,
                org_id,
                "Lead",
                str(i),
                name,
                f"lead{i}@example.com",
                "email",
                rng.choices(SOURCES, SOURCE_WEIGHTS)[0],
                status,
                "[]",
                json.dumps({"value": value}) if value is not None else "{}",
                rng.randint(0, 100),
                False,
                name.lower(),
                1,
                created,
                created,
                assignee,
                admin_id,
                # The clock starts at the assignment (at creation); unassigned leads have a
                # deadline from their policy but no start, as data from before starts were kept.
                created if deadline is not None and assignee is not None else None,
                deadline,
                met,
                breached,
                met,
                reached_with(None, *steps),
            )
        )
        at = created
        previous: str | None = None
        for to in steps:
            out["history"].append((uuid7(), org_id, lead_id, assignee, at, previous, to))
            previous = to
            at = min(at + timedelta(hours=rng.uniform(1, 24 * 7)), now)
        if assignee is not None:
            out["assignments"].append((uuid7(), org_id, lead_id, admin_id, created, None, assignee))
        for _ in range(rng.choice((0, 1, 2, 2, 3, 4))):
            occurred = created + timedelta(seconds=rng.uniform(0, min(age, 30 * 86400)))
            out["interactions"].append(
                (
                    uuid7(),
                    org_id,
                    lead_id,
                    rng.choice(("call", "email")),
                    "outbound",
                    occurred,
                    assignee or admin_id,
                    occurred,
                )
            )
    return out


def _settings(db: Database) -> Settings:
    return Settings(secret_key=BENCH_SECRET, database_url=db.url)


async def _tokens(db: Database) -> tuple[str, str]:
    """Fresh access tokens of the admin and of the first counselor."""
    tokens = []
    async with session_scope(db) as session:
        for email in (ADMIN_EMAIL, COUNSELOR_EMAIL):
            user = await session.scalar(select(User).where(User.email == email))
            assert user is not None
            tokens.append((await start_session(session, _settings(db), user)).access_token)
    return tokens[0], tokens[1]


def _url() -> str:
    return PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{DB_NAME}"


async def _reusable() -> bool:
    try:
        conn = await asyncpg.connect(_url())
    except asyncpg.InvalidCatalogNameError:
        return False
    try:
        return bool(await conn.fetchval("SELECT count(*) FROM leads") == ROWS)
    finally:
        await conn.close()


async def _load(url: str) -> Database:
    db = Database(url.replace("postgresql://", "postgresql+asyncpg://"))
    async with session_scope(db) as session:
        org = await create_organization(session, name="Bench GmbH")
        admin_role = await org_repo.get_role_by_name(session, org.id, "admin")
        counselor_role = await org_repo.get_role_by_name(session, org.id, "counselor")
        assert admin_role is not None and counselor_role is not None
        teams = [Team(organization_id=org.id, name=f"Team {t}") for t in range(TEAMS)]
        session.add_all(teams)
        await session.flush()
        admin = User(
            organization_id=org.id,
            email=ADMIN_EMAIL,
            full_name="Bench Admin",
            role_id=admin_role.id,
            status="active",
        )
        counselors = [
            User(
                organization_id=org.id,
                email=f"counselor-{c}@example.com",
                full_name=f"Counselor {c:02d}",
                role_id=counselor_role.id,
                team_id=teams[c % TEAMS].id,
                status="active",
                capacity=3000,
            )
            for c in range(COUNSELORS)
        ]
        session.add_all([admin, *counselors])
        await session.flush()
        org_id, admin_id = org.id, admin.id
        counselor_ids = [c.id for c in counselors]
    conn = await asyncpg.connect(url)
    # Bulk load: the rows are consistent by construction, so skip the per-row foreign-key
    # checks (superuser-only; this connection is the loader's alone). The rollup triggers
    # fire anyway (migration 0026); the rebuild below recounts from scratch.
    await conn.execute("SET session_replication_role = replica")
    rng = random.Random(16)
    now = utcnow()
    t = time.perf_counter()
    counts = {"leads": 0, "history": 0, "assignments": 0, "interactions": 0}
    tables = {
        "leads": ("leads", LEAD_COLUMNS),
        "history": ("lead_status_history", HISTORY_COLUMNS),
        "assignments": ("lead_assignments", ASSIGNMENT_COLUMNS),
        "interactions": ("interactions", INTERACTION_COLUMNS),
    }
    step = 50_000
    for first in range(0, ROWS, step):
        rows = _batch(rng, org_id, admin_id, counselor_ids, first, min(step, ROWS - first), now)
        for key, (table, columns) in tables.items():
            await conn.copy_records_to_table(table, records=rows[key], columns=columns)
            counts[key] += len(rows[key])
    await conn.execute("SELECT gin_clean_pending_list('pgx_leads_search_trgm'::regclass)")
    await conn.execute("SELECT gin_clean_pending_list('pgx_leads_tags'::regclass)")
    # VACUUM as well as ANALYZE: autovacuum does it soon after a bulk insert (PostgreSQL 13+
    # vacuums on inserts too), and only then do the visibility map's pages let the counts run
    # as index-only scans. Measuring before it would measure the first minutes after a load.
    await conn.close()
    # COPY with triggers off left the lead rollups empty: count them once, as the migration
    # does for existing data.
    async with session_scope(db) as session:
        await rollups.rebuild(session, org_id, "Europe/Berlin")
    conn = await asyncpg.connect(url)
    for table in (*(t for t, _ in tables.values()), "lead_rollup_days", "lead_rollup_stages"):
        await conn.execute(f"VACUUM (ANALYZE) {table}")
    await conn.close()
    print(
        f"loaded {counts['leads']:,} leads, {counts['history']:,} status changes,"
        f" {counts['assignments']:,} assignments, {counts['interactions']:,} interactions"
        f" in {time.perf_counter() - t:.1f} s (COPY + VACUUM ANALYZE)"
    )
    return db


def _cases() -> dict[str, tuple[str, dict[str, str]]]:
    today = utcnow().date()
    year = {
        "date_from": (today - timedelta(days=364)).isoformat(),
        "date_to": today.isoformat(),
        "granularity": "week",
    }
    base = "/api/v1/analytics"
    return {
        "kpis": (f"{base}/kpis", {}),
        "funnel": (f"{base}/funnel", {}),
        "lead-volume (year/week)": (f"{base}/lead-volume", year),
        "counselor-performance": (f"{base}/counselor-performance", {}),
    }


async def _explain(
    raw: asyncpg.Connection, title: str, statements: list[tuple[str, str, tuple]]
) -> None:
    """Each statement of a case, its execution time and plan (EXPLAIN ANALYZE, BUFFERS)."""
    print(f"---- {title}")
    for method, sql, args in statements:
        if method == "execute":
            continue
        plan = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *args)
        lines = [r[0] for r in plan]
        print(f"{lines[-1]}\n  {' '.join(sql.split())[:300]}")
        print("\n".join(f"    {line}" for line in lines[:-2]))


async def run() -> None:
    """Load (or reuse), then measure every case for the admin and for a counselor."""
    if REUSE and await _reusable():
        print(f"reusing {DB_NAME} with {ROWS:,} leads")
        db = Database(_url().replace("postgresql://", "postgresql+asyncpg://"))
    else:
        db = await _load(await fresh_database(DB_NAME))
    admin_token, counselor_token = await _tokens(db)
    app = create_app(_settings(db), database=db)
    # The application's session settings, so both sides run the same plans.
    raw = await asyncpg.connect(_url(), server_settings=dict(PG_SERVER_SETTINGS))
    print(f"{RUNS} runs each after 10 warm-up runs; no result cache")
    print(
        f"{'case':<24} {'actor':<10} {'API (ASGI, server time)':<28}"
        f" {'same SQL via asyncpg':<28} API/SQL p95"
    )
    for name, (path, params) in _cases().items():
        if ONLY and name.split(" ")[0] not in ONLY:
            continue
        for actor, token in (("admin", admin_token), ("counselor", counselor_token)):

            async def api(
                path: str = path, params: dict[str, str] = params, t: str = token
            ) -> None:
                await asgi_get(app, path, params, t)

            statements = await _capture(db, api)
            if EXPLAIN:
                await _explain(raw, f"{name} / {actor}", statements)

            async def same_sql(statements: list[tuple[str, str, tuple]] = statements) -> None:
                for method, sql, args in statements:
                    if method == "execute":
                        await raw.execute(sql)
                    else:
                        await raw.fetch(sql, *args)

            a, r = await timed_together([api, same_sql], runs=RUNS)
            print(
                f"{name:<24} {actor:<10} {summary(a):<28} {summary(r):<28}"
                f" {pct(a, 95) / pct(r, 95):.2f}x  ({len(statements)} statements)",
                flush=True,
            )
    await raw.close()
    await db.dispose()


def main() -> None:
    """Entry point for `python -m bench analytics`."""
    asyncio.run(run())
