"""Periodic SLA check at 1M leads on PostgreSQL.

    .venv/bin/python -m bench sla_check      # LEADFLOW_BENCH_ROWS=1000000 by default

Loads leads whose SLA clocks are spread over the next 30 days (so almost none is due), plus
50 with a due reminder and 50 past their deadline, runs ANALYZE, then times `sla.check` —
the same function the periodic job runs — while work is due and again when nothing is due.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from datetime import UTC, datetime, timedelta

import asyncpg
from uuid_utils.compat import uuid7

from bench._common import fresh_database
from leadflow.config import Settings
from leadflow.db.engine import Database, session_scope
from leadflow.models.user import User
from leadflow.organizations import repository as org_repo
from leadflow.organizations.service import create_organization
from leadflow.sla import service as sla

ROWS = int(os.environ.get("LEADFLOW_BENCH_ROWS", "1000000"))
DUE = 50
COLUMNS = (
    "id",
    "organization_id",
    "first_name",
    "full_name",
    "email",
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
    "sla_deadline",
    "sla_reminder_at",
    "sla_met_at",
)


async def run() -> None:
    """Load, then time the check with due work and with none."""
    url = await fresh_database("leadflow_bench_sla")
    db = Database(url.replace("postgresql://", "postgresql+asyncpg://"))
    async with session_scope(db) as session:
        org = await create_organization(session, name="SLA Bench")
        role = await org_repo.get_role_by_name(session, org.id, "counselor")
        assert role is not None
        rep = User(
            organization_id=org.id,
            email="sla-bench@example.com",
            full_name="Rep",
            role_id=role.id,
            status="active",
        )
        session.add(rep)
        await session.flush()
        org_id, rep_id = org.id, rep.id
    now = datetime.now(UTC)
    rng = random.Random(3)
    conn = await asyncpg.connect(url)
    t = time.perf_counter()
    for offset in range(0, ROWS, 100_000):
        rows = []
        for i in range(offset, min(ROWS, offset + 100_000)):
            if i < DUE:  # reminder due, deadline ahead
                deadline, remind, met = (
                    now + timedelta(minutes=20),
                    now - timedelta(minutes=1),
                    None,
                )
            elif i < 2 * DUE:  # deadline passed
                deadline, remind, met = now - timedelta(minutes=5), None, None
            else:
                deadline = now + timedelta(minutes=rng.randint(60, 60 * 24 * 30))
                remind = deadline - timedelta(minutes=30)
                met = now if i % 2 else None
            created = now - timedelta(days=1)
            rows.append(
                (
                    uuid7(),
                    org_id,
                    f"L{i}",
                    f"L{i}",
                    f"l{i}@example.com",
                    "new",
                    "[]",
                    "{}",
                    0,
                    False,
                    f"l{i}",
                    1,
                    created,
                    created,
                    rep_id,
                    None,
                    deadline,
                    remind,
                    met,
                )
            )
        await conn.copy_records_to_table("leads", records=rows, columns=COLUMNS)
    await conn.execute("ANALYZE leads")
    await conn.close()
    print(f"loaded {ROWS:,} leads with SLA clocks in {time.perf_counter() - t:.1f} s")
    settings = Settings(secret_key="bench-" + "x" * 40, database_url=db.url)
    for label in ("with 50 reminders + 50 breaches due", "nothing due (steady state)"):
        t = time.perf_counter()
        async with session_scope(db) as session:
            result = await sla.check(session, settings, now)
        print(f"sla.check {label}: {(time.perf_counter() - t) * 1000:.1f} ms -> {result}")
    await db.dispose()


def main() -> None:
    """Entry point for `python -m bench sla_check`."""
    asyncio.run(run())
