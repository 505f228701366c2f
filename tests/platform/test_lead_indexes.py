"""Every index on `leads` earns its write cost: for each one, the query the product serves
that needs it, and PostgreSQL's plan of that very query showing the index used.

The queries are the real ones: an endpoint called through the in-process client (its SQL is
captured as it is sent, both through SQLAlchemy's cursor event and on the asyncpg
connection that `db/fastpath.py` uses directly), or the repository function a job calls.
Each captured statement that reads `leads` is then run again under `EXPLAIN (FORMAT JSON)`
with its own parameters.

The planner prefers a sequential scan on a small table, so the module loads some twenty
thousand leads (three organisations, COPY) into a database of its own once and runs ANALYZE,
as the import path does after a bulk load. No `enable_seqscan = off`: each plan is the one
PostgreSQL picks on its own at this size and distribution.

A new index on `leads` without an entry in `JUSTIFIED` fails `test_every_index_is_justified`;
an index no served query uses has no entry to give, and is dropped instead.
"""

from __future__ import annotations

import json
import os
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import asyncpg
import httpx
import pytest
from sqlalchemy import Table, event

from leadflow.app import create_app
from leadflow.config import Settings
from leadflow.db.engine import PG_SERVER_SETTINGS, Database
from leadflow.leads import repository as leads_repository
from leadflow.models.lead import Lead, reached_with
from leadflow.sla import repository as sla_repository
from tests.conftest import migrated_pg_database
from tests.fixtures.factories import Factory, Member
from tests.fixtures.services import require

ROWS_MAIN = 12_000  # the organisation under test
ROWS_OTHER = 4_000  # each of two others, so "organisation = X" is a real restriction
STATUSES = (("new", 45), ("contacted", 25), ("qualified", 15), ("proposal", 8), ("lost", 5))
FIRST = ("Lea", "Jonas", "Mia", "Felix", "Hannah", "Lukas", "Emma", "Paul", "Anna", "Max")
PRE = ("Kra", "Mül", "Schm", "Wag", "Beck", "Hoff", "Rich", "Klein", "Wolf", "Neu", "Zimm")
SUF = ("mer", "ler", "idt", "ner", "er", "mann", "ke", "berg", "ter", "stein", "feld", "bach")
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
    "next_action_at",
    "last_contacted_at",
    "analyzed_at",
    "import_batch_id",
    "search_text",
    "stages_reached",
    "version",
    "created_at",
    "updated_at",
    "assignee_id",
    "created_by",
    "sla_started_at",
    "sla_deadline",
    "sla_reminder_at",
    "sla_reminded_at",
    "sla_met_at",
    "sla_breached_at",
    "deleted_at",
)


@dataclass
class Loaded:
    """The loaded database, the app on it and the people and rows the cases use."""

    db: Database
    dsn: str
    client: httpx.AsyncClient
    admin: Member
    counselor: Member
    org_id: uuid.UUID
    lead_id: uuid.UUID
    batch_id: uuid.UUID
    email: str
    phone: str


def _rows(
    rng: random.Random,
    n: int,
    org_id: uuid.UUID,
    creator: uuid.UUID,
    owners: list[uuid.UUID],
    counselor: uuid.UUID | None,
    batches: list[uuid.UUID],
    now: datetime,
) -> list[tuple[Any, ...]]:
    statuses = [s for s, weight in STATUSES for _ in range(weight)] + ["won"] * 2
    out: list[tuple[Any, ...]] = []
    for i in range(n):
        first, last = rng.choice(FIRST), rng.choice(PRE) + rng.choice(SUF)
        full = f"{first} {last}"
        email = f"{first}.{last}.{i}.{org_id.hex[:6]}@example.com".lower()
        phone = f"+49151{i:08d}"
        company = f"{last} {rng.choice(('GmbH', 'AG', 'KG'))}" if i % 3 else None
        created = now - timedelta(days=365) + timedelta(seconds=i * (365 * 86400 // n))
        status = rng.choice(statuses)
        roll = rng.random()
        assignee = (
            counselor if counselor and roll < 0.03 else rng.choice(owners) if roll < 0.75 else None
        )
        started = deadline = reminder = reminded = met = breached = None
        if rng.random() < 0.15:  # a response clock: most met, some breached, some running
            started = created
            kind = rng.random()
            deadline = started + timedelta(hours=2)
            if kind > 0.70:  # open now: started up to 3 hours ago (late after 2)
                started = now - timedelta(minutes=rng.randint(0, 180))
                deadline = started + timedelta(hours=2)
                if rng.random() < 0.8:  # most on a policy of days: deadline and reminder ahead
                    deadline = now + timedelta(days=rng.randint(1, 30))
            reminder = deadline - timedelta(minutes=30)
            if kind < 0.60:
                met = started + timedelta(minutes=rng.randint(5, 200))
            elif kind < 0.70:
                breached = deadline + timedelta(minutes=5)
            elif reminder <= now and rng.random() < 0.7:
                reminded = reminder  # most reminders are sent on time; a few are due
        search = " ".join(p for p in (full, email, phone, company) if p).lower()
        out.append(
            (
                uuid.uuid4(),
                org_id,
                first,
                last,
                full,
                email,
                phone,
                company,
                "email",
                rng.choice(("web", "messe", "ads")),
                status,
                json.dumps(["vip"] if rng.random() < 0.02 else []),
                "{}",
                rng.randint(0, 100),
                rng.random() < 0.05,
                now + timedelta(days=rng.randint(-10, 30)) if rng.random() < 0.1 else None,
                created + timedelta(days=rng.randint(0, 30)) if rng.random() < 0.6 else None,
                created if rng.random() < 0.97 else None,
                rng.choice(batches) if rng.random() < 0.1 else None,
                search,
                reached_with(None, "new", status),
                1,
                created,
                created,
                assignee,
                counselor if counselor and rng.random() < 0.01 else creator,
                started,
                deadline,
                reminder,
                reminded,
                met,
                breached,
                now - timedelta(days=1) if rng.random() < 0.01 else None,
            )
        )
    return out


@pytest.fixture(scope="module")
async def loaded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Loaded]:
    """A PostgreSQL database of the module's own with three organisations' leads, analysed."""
    require("PostgreSQL")
    async with migrated_pg_database(f"leadflow_indexes_{os.getpid()}") as url:
        db = Database(url, pool_size=5)
        settings = Settings(
            env="test",
            database_url=url,
            secret_key="index-test-secret-" + "x" * 32,
            data_dir=tmp_path_factory.mktemp("indexes"),
        )
        async with db.sessionmaker() as session:
            factory = Factory(session, settings)
            org, *others = [await factory.org() for _ in range(3)]
            admin = await factory.member(org, "admin")
            counselor = await factory.member(org, "counselor")
            reps = [(await factory.user(org, "counselor")).id for _ in range(8)]
            other_people = [(await factory.user(o, "admin")).id for o in others]
        now = datetime.now(UTC)
        rng = random.Random(20)
        batches = [uuid.uuid4() for _ in range(5)]
        dsn = url.replace("+asyncpg", "")
        conn = await asyncpg.connect(dsn)
        try:
            main = _rows(
                rng, ROWS_MAIN, org.id, admin.user.id, reps, counselor.user.id, batches, now
            )
            await conn.copy_records_to_table("leads", records=main, columns=COLUMNS)
            for o, person in zip(others, other_people, strict=True):
                rows = _rows(rng, ROWS_OTHER, o.id, person, [person], None, [uuid.uuid4()], now)
                await conn.copy_records_to_table("leads", records=rows, columns=COLUMNS)
            # As the import path ends a bulk load: merge the GIN pending lists, then fresh
            # planner statistics (no VACUUM).
            await conn.execute("SELECT gin_clean_pending_list('pgx_leads_search_trgm')")
            await conn.execute("SELECT gin_clean_pending_list('pgx_leads_tags')")
            await conn.execute("ANALYZE")
        finally:
            await conn.close()
        # A live lead without a company (see the `ix_leads_org_last_name` case).
        sample = next(r for r in main if r[7] is None and r[-1] is None)
        app = create_app(settings, database=db)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield Loaded(
                db=db,
                dsn=dsn,
                client=client,
                admin=admin,
                counselor=counselor,
                org_id=org.id,
                lead_id=sample[0],
                batch_id=batches[0],
                email=sample[5],
                phone=sample[6],
            )
        await db.dispose()


Captured = list[tuple[str, tuple[Any, ...]]]


@contextmanager
def capture(db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[Captured]:
    """Every statement sent to PostgreSQL inside the block, with its parameters.

    SQLAlchemy's `before_cursor_execute` sees what runs through the session; the list and
    auth hot paths hand their compiled SQL to `asyncpg.Connection.fetch` directly.
    """
    seen: Captured = []

    def listen(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        seen.append((statement, tuple(params) if params else ()))

    fetch = asyncpg.Connection.fetch

    async def spy_fetch(self: asyncpg.Connection, query: str, *args: Any, **kw: Any) -> Any:
        seen.append((query, args))
        return await fetch(self, query, *args, **kw)

    event.listen(db.engine.sync_engine, "before_cursor_execute", listen)
    monkeypatch.setattr(asyncpg.Connection, "fetch", spy_fetch)
    try:
        yield seen
    finally:
        monkeypatch.undo()
        event.remove(db.engine.sync_engine, "before_cursor_execute", listen)


def _index_names(node: Any) -> set[str]:
    """Every index any node of a JSON plan (sub-plans and init-plans included) reads."""
    found: set[str] = set()
    if isinstance(node, dict):
        if "Index Name" in node:
            found.add(node["Index Name"])
        for value in node.values():
            found |= _index_names(value)
    elif isinstance(node, list):
        for item in node:
            found |= _index_names(item)
    return found


def _outline(node: Any, depth: int = 0) -> str:
    """A plan as indented lines: node type, index, estimated rows, index condition."""
    if isinstance(node, list):
        return "".join(_outline(item, depth) for item in node)
    plan = node.get("Plan", node)
    line = "  " * depth + plan["Node Type"]
    if "Index Name" in plan:
        line += f" using {plan['Index Name']}"
    line += f" rows={plan.get('Plan Rows')} cost={plan.get('Total Cost')}"
    for key in ("Index Cond", "Filter", "Recheck Cond"):
        if key in plan:
            line += f" {key.lower()}: {plan[key]}"
    return line + "\n" + "".join(_outline(child, depth + 1) for child in plan.get("Plans", []))


async def plans(dsn: str, statements: Captured) -> list[tuple[str, Any]]:
    """(statement, JSON plan) of each captured statement that reads or writes `leads`."""
    conn = await asyncpg.connect(dsn, server_settings=dict(PG_SERVER_SETTINGS))
    out: list[tuple[str, Any]] = []
    try:
        for sql, args in statements:
            head = sql.lstrip().split(None, 1)[0].upper()
            if head not in {"SELECT", "WITH", "UPDATE", "DELETE"} or " leads" not in sql:
                continue
            raw = await conn.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
            out.append((sql, json.loads(raw) if isinstance(raw, str) else raw))
    finally:
        await conn.close()
    return out


# ---- the product queries, one per index ----------------------------------------------------

Call = Callable[[Loaded], Awaitable[None]]


def _get(path: str, params: dict[str, str] | None = None, *, who: str = "admin") -> Call:
    async def call(ld: Loaded) -> None:
        member = ld.admin if who == "admin" else ld.counselor
        url = path.format(lead_id=ld.lead_id, batch_id=ld.batch_id, counselor=ld.counselor.id)
        values = {
            k: v.format(batch_id=ld.batch_id, counselor=ld.counselor.id)
            for k, v in (params or {}).items()
        }
        r = await ld.client.get(url, params=values, headers=member.headers)
        assert r.status_code == 200, r.text

    return call


async def _find_duplicate(ld: Loaded) -> None:
    # What creating a lead (API, import) asks first: a live lead with this email or phone.
    async with ld.db.sessionmaker() as session:
        found = await leads_repository.find_exact_duplicate(
            session, ld.org_id, email=ld.email, phone=ld.phone
        )
    assert found is not None and found.id == ld.lead_id


async def _sla_reminders(ld: Loaded) -> None:
    # The periodic SLA check (worker): reminders due across every organisation.
    async with ld.db.sessionmaker() as session:
        assert await sla_repository.due_reminder_ids(session, datetime.now(UTC), 500)


async def _sla_late(ld: Loaded) -> None:
    # The periodic SLA check (worker): clocks past their deadline across every organisation.
    async with ld.db.sessionmaker() as session:
        assert await sla_repository.late_ids(session, datetime.now(UTC), 500)


@dataclass(frozen=True)
class Case:
    """Why an index exists: the product query that needs it."""

    query: str
    call: Call


JUSTIFIED: dict[str, Case] = {
    "pk_leads": Case("GET /leads/{id}", _get("/api/v1/leads/{lead_id}")),
    "ix_leads_org_created": Case("GET /leads (default order, newest first)", _get("/api/v1/leads")),
    "ix_leads_org_status_created": Case(
        "GET /leads?status=won (the pipeline column, newest first)",
        _get("/api/v1/leads", {"status": "won"}),
    ),
    "ix_leads_org_assignee_created": Case(
        "GET /leads as a counselor (own scope: assignee or creator)",
        _get("/api/v1/leads", who="counselor"),
    ),
    "ix_leads_created_by": Case(
        "GET /leads as a counselor (own scope: the creator arm of the OR)",
        _get("/api/v1/leads", who="counselor"),
    ),
    "ix_leads_org_deleted": Case(
        "GET /analytics/counselor-performance (organisation-wide, less the deleted leads)",
        _get("/api/v1/analytics/counselor-performance"),
    ),
    "ix_leads_org_email": Case("duplicate check on create/import (email arm)", _find_duplicate),
    "ix_leads_org_phone": Case("duplicate check on create/import (phone arm)", _find_duplicate),
    # Only for a lead without a company: `company = …` has no index, so with a company the
    # OR cannot be a BitmapOr and the planner reads the whole organisation instead (reported).
    "ix_leads_org_last_name": Case(
        "GET /leads/{id}/duplicates (same last name; a lead without a company)",
        _get("/api/v1/leads/{lead_id}/duplicates"),
    ),
    "ix_leads_org_needs_action": Case(
        "GET /leads/needs-action (the sidebar)", _get("/api/v1/leads/needs-action")
    ),
    "ix_leads_org_last_contacted": Case(
        "GET /leads?sort=last_contacted_at",
        _get("/api/v1/leads", {"sort": "last_contacted_at"}),
    ),
    "ix_leads_org_next_action": Case(
        "GET /leads?sort=next_action_at", _get("/api/v1/leads", {"sort": "next_action_at"})
    ),
    "ix_leads_org_score": Case("GET /leads?sort=-score", _get("/api/v1/leads", {"sort": "-score"})),
    "ix_leads_org_name": Case("GET /leads?sort=name", _get("/api/v1/leads", {"sort": "name"})),
    "ix_leads_import_batch": Case(
        "GET /leads?import_batch_id= (an import's leads)",
        _get("/api/v1/leads", {"import_batch_id": "{batch_id}"}),
    ),
    "ix_leads_sla_deadline_open": Case("SLA check: late clocks", _sla_late),
    "ix_leads_sla_reminder_due": Case("SLA check: reminders due", _sla_reminders),
    "ix_leads_org_sla_met": Case(
        "GET /analytics/kpis (median response of the period)", _get("/api/v1/analytics/kpis")
    ),
    "ix_leads_org_sla_deadline": Case(
        "GET /analytics/kpis (SLA outcomes of the period)", _get("/api/v1/analytics/kpis")
    ),
    "pgx_leads_search_trgm": Case("GET /leads?q=kramer", _get("/api/v1/leads", {"q": "kramer"})),
    "pgx_leads_tags": Case("GET /leads?tag=vip", _get("/api/v1/leads", {"tag": "vip"})),
}


async def test_every_index_is_justified(loaded: Loaded) -> None:
    conn = await asyncpg.connect(loaded.dsn)
    try:
        in_db = {
            r["indexname"]
            for r in await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'leads'")
        }
    finally:
        await conn.close()
    in_model = {ix.name for ix in cast(Table, Lead.__table__).indexes}
    assert in_model <= in_db  # the model's indexes are the migrations' indexes
    listed = set(JUSTIFIED)
    assert listed == in_db, {
        "without a justifying query": sorted(in_db - listed),
        "listed but gone": sorted(listed - in_db),
    }


@pytest.mark.parametrize("index", sorted(JUSTIFIED))
async def test_index_used_by_its_query(
    loaded: Loaded, index: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = JUSTIFIED[index]
    with capture(loaded.db, monkeypatch) as seen:
        await case.call(loaded)
    explained = await plans(loaded.dsn, seen)
    assert explained, f"{case.query}: no statement on leads was captured"
    used = set().union(*(_index_names(plan) for _, plan in explained))
    if index not in used:
        # pytest.fail keeps the whole message (an assertion's would be cut): the plans say why.
        pytest.fail(
            f"{index} is not used by {case.query}; used: {sorted(used)}\n"
            + "\n".join(f"{sql}\n{_outline(plan)}" for sql, plan in explained)
        )
