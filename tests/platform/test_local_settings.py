"""Planner settings changed for a few statements only (`db.dialect.local_settings`, the
import's duplicate lookup), and the COPY of many rows checking its foreign keys with one
query (or, without the privilege for that, per row with the generic plan)."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from leadflow.db.dialect import bulk_insert, is_postgres, local_settings
from leadflow.db.engine import Database
from leadflow.kit.clock import utcnow
from leadflow.models.audit_log import AuditLog
from leadflow.models.lead import Lead
from leadflow.models.lead_history import LeadStatusChange
from tests.fixtures.factories import Factory, make_settings


async def _setting(session: AsyncSession, name: str) -> str:
    return str(await session.scalar(text("SELECT current_setting(:n)"), {"n": name}))


async def test_settings_hold_inside_the_block_and_are_restored_after(
    session: AsyncSession,
) -> None:
    if not is_postgres(session):
        async with local_settings(session, random_page_cost="1.1"):
            pass  # SQLite has no such settings: the block runs, nothing is sent
        return
    before = await _setting(session, "random_page_cost")
    plan_mode = await _setting(session, "plan_cache_mode")
    assert before != "1.1"
    async with local_settings(session, random_page_cost="1.1", enable_seqscan="off"):
        assert await _setting(session, "random_page_cost") == "1.1"
        assert await _setting(session, "enable_seqscan") == "off"
        assert await _setting(session, "plan_cache_mode") == plan_mode
    assert await _setting(session, "random_page_cost") == before
    assert await _setting(session, "enable_seqscan") == "on"


async def test_a_failing_block_leaves_the_restore_to_the_rollback(
    session: AsyncSession,
) -> None:
    before = await _setting(session, "random_page_cost") if is_postgres(session) else None
    with pytest.raises(RuntimeError):
        async with session.begin_nested(), local_settings(session, random_page_cost="1.1"):
            raise RuntimeError("boom")
    if before is not None:
        assert await _setting(session, "random_page_cost") == before


def _history_row(org_id: object, lead_id: object, now: datetime) -> dict[str, object]:
    return {
        "id": uuid7(),
        "organization_id": org_id,
        "lead_id": lead_id,
        "actor_user_id": None,
        "from_status": None,
        "to_status": "contacted",
        "reason": "test",
        "created_at": now,
    }


async def test_bulk_insert_writes_its_rows_and_refuses_a_missing_key(
    session: AsyncSession, factory: Factory
) -> None:
    org = await factory.org()
    lead = await factory.lead(org)
    mode = await _setting(session, "plan_cache_mode") if is_postgres(session) else None
    now = utcnow()
    rows = [_history_row(org.id, lead.id, now) for _ in range(20)]
    await bulk_insert(session, LeadStatusChange, rows, columns=list(rows[0]))
    n = await session.scalar(
        select(func.count()).where(
            LeadStatusChange.lead_id == lead.id, LeadStatusChange.reason == "test"
        )
    )
    assert n == 20
    if mode is not None:
        # The pool plans every statement for its values; the COPY checked its keys with
        # one statement, so nothing needed generic plans.
        assert mode == "force_custom_plan"
        assert await _setting(session, "plan_cache_mode") == "force_custom_plan"
    # A row for a lead that does not exist is still refused by its foreign key.
    bad = {**rows[0], "id": uuid7(), "lead_id": uuid.uuid4()}
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        async with session.begin_nested():
            await bulk_insert(session, LeadStatusChange, [bad], columns=list(bad))


def _lead_row(org_id: object, user_id: object, n: int) -> dict[str, object]:
    now = utcnow()
    return {
        "id": uuid7(),
        "organization_id": org_id,
        "first_name": f"Copy{n}",
        "last_name": "Test",
        "full_name": f"Copy{n} Test",
        "email": f"copy{n}@example.com",
        "status": "new",
        "tags": [],
        "custom": {},
        "score": 0,
        "needs_action": False,
        "search_text": f"copy{n} test",
        "version": 1,
        "created_by": user_id,
        "assignee_id": user_id,
        "created_at": now,
        "updated_at": now,
    }


async def test_a_copy_checks_its_keys_once_and_leaves_the_role_as_it_was(
    session: AsyncSession, factory: Factory
) -> None:
    org = await factory.org()
    user = await factory.user(org)
    rows = [_lead_row(org.id, user.id, n) for n in range(30)]
    await bulk_insert(session, Lead, rows, columns=list(rows[0]), json_columns=("tags", "custom"))
    assert await session.scalar(select(func.count()).where(Lead.organization_id == org.id)) == 30
    if is_postgres(session):
        assert await _setting(session, "session_replication_role") == "origin"
    # One missing user among many present ones: refused, nothing written, role restored.
    bad = [_lead_row(org.id, user.id, n) for n in range(30, 40)]
    bad[7]["assignee_id"] = uuid.uuid4()
    with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
        async with session.begin_nested():
            await bulk_insert(
                session, Lead, bad, columns=list(bad[0]), json_columns=("tags", "custom")
            )
    assert await session.scalar(select(func.count()).where(Lead.organization_id == org.id)) == 30
    if is_postgres(session):
        assert await _setting(session, "session_replication_role") == "origin"


async def test_a_copy_asks_checks_and_switches_in_one_statement(
    session: AsyncSession, factory: Factory
) -> None:
    """An import sends a COPY per chunk: the privilege question, the key counts and the
    switch to the replica role are one round trip before it, the switch back one after; a
    key column whose rows the transaction wrote itself (a new lead's history) is not
    looked up."""
    if not is_postgres(session):
        return  # SQLite: one executemany INSERT, no COPY
    org = await factory.org()
    user = await factory.user(org)
    sent: list[str] = []

    def listen(conn: object, cursor: object, statement: str, *args: object) -> None:
        sent.append(statement)

    sync = (await session.connection()).sync_connection
    assert sync is not None
    event.listen(sync, "before_cursor_execute", listen)
    try:
        rows = [_lead_row(org.id, user.id, n) for n in range(3)]
        await bulk_insert(
            session, Lead, rows, columns=list(rows[0]), json_columns=("tags", "custom")
        )
        leads_sent, sent[:] = list(sent), []
        history = [
            {
                "id": uuid7(),
                "organization_id": org.id,
                "lead_id": r["id"],
                "actor_user_id": user.id,
                "from_status": None,
                "to_status": "new",
                "reason": "import",
                "created_at": r["created_at"],
            }
            for r in rows
        ]
        await bulk_insert(
            session,
            LeadStatusChange,
            history,
            columns=list(history[0]),
            written_here=("lead_id",),
        )
    finally:
        event.remove(sync, "before_cursor_execute", listen)
    assert len(leads_sent) == 2, leads_sent
    assert "replica" in leads_sent[0] and "FOR KEY SHARE" in leads_sent[0]
    assert "origin" in leads_sent[1]
    assert len(sent) == 2, sent
    # The history's one key is its lead's: nothing to look up, only the switch.
    assert "replica" in sent[0] and "FOR KEY SHARE" not in sent[0], sent[0]
    assert (
        await session.scalar(
            select(func.count()).where(LeadStatusChange.lead_id.in_([r["id"] for r in rows]))
        )
        == 3
    )


async def test_a_copy_runs_without_the_per_row_checks(
    session: AsyncSession, factory: Factory
) -> None:
    """The COPY itself runs in the replica role (seen from inside it by a trigger), and the
    role is back to origin for the statements after it."""
    org = await factory.org()
    lead = await factory.lead(org)
    if not is_postgres(session):
        return  # SQLite: no roles; its executemany INSERT checks each row
    assert await session.scalar(
        text("SELECT has_parameter_privilege('session_replication_role', 'SET')")
    ), "the test database's role may not skip the per-row checks: the fast path is untested"
    await session.execute(text("CREATE TEMP TABLE copy_roles (role text)"))
    await session.execute(
        text(
            "CREATE FUNCTION pg_temp.copy_role() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN INSERT INTO copy_roles"
            " VALUES (current_setting('session_replication_role')); RETURN NULL; END $$"
        )
    )
    await session.execute(
        text(
            "CREATE TRIGGER copy_role AFTER INSERT ON lead_status_history"
            " FOR EACH STATEMENT EXECUTE FUNCTION pg_temp.copy_role()"
        )
    )
    await session.execute(text("ALTER TABLE lead_status_history ENABLE ALWAYS TRIGGER copy_role"))
    row = _history_row(org.id, lead.id, utcnow())
    await bulk_insert(session, LeadStatusChange, [row], columns=list(row))
    assert list(await session.scalars(text("SELECT role FROM copy_roles"))) == ["replica"]
    assert await _setting(session, "session_replication_role") == "origin"
    await session.execute(text("DROP TRIGGER copy_role ON lead_status_history"))


async def test_a_copy_that_fails_reports_its_own_error_and_rolls_the_role_back(
    session: AsyncSession, factory: Factory
) -> None:
    org = await factory.org()
    user = await factory.user(org)
    rows = [_lead_row(org.id, user.id, n) for n in range(3)]
    rows[2]["id"] = rows[0]["id"]  # a second row with the same key: refused during the COPY
    # The database's own error (the driver's on PostgreSQL, whose COPY bypasses SQLAlchemy),
    # not "transaction aborted" from a statement sent after it.
    with pytest.raises(Exception, match=r"(?i)unique|duplicate") as caught:
        async with session.begin_nested():
            await bulk_insert(
                session, Lead, rows, columns=list(rows[0]), json_columns=("tags", "custom")
            )
    assert "aborted" not in str(caught.value)
    if is_postgres(session):
        assert await _setting(session, "session_replication_role") == "origin"
    assert await session.scalar(select(func.count()).where(Lead.organization_id == org.id)) == 0


async def test_a_copy_without_the_replica_privilege_is_checked_per_row(
    session: AsyncSession, factory: Factory
) -> None:
    org = await factory.org()
    user = await factory.user(org)
    if not is_postgres(session):
        # No roles: SQLite checks each row's keys itself (PRAGMA foreign_keys).
        bad = [_lead_row(org.id, uuid.uuid4(), 9)]
        with pytest.raises(IntegrityError, match=r"(?i)foreign key"):
            async with session.begin_nested():
                await bulk_insert(session, Lead, bad, columns=list(bad[0]))
        return
    await session.execute(text("CREATE ROLE leadflow_test_copier"))
    await session.execute(text("GRANT ALL ON ALL TABLES IN SCHEMA public TO leadflow_test_copier"))
    await session.execute(text("SET LOCAL ROLE leadflow_test_copier"))
    assert not await session.scalar(
        text("SELECT has_parameter_privilege('session_replication_role', 'SET')")
    )
    rows = [_lead_row(org.id, user.id, n) for n in range(5)]
    await bulk_insert(session, Lead, rows, columns=list(rows[0]), json_columns=("tags", "custom"))
    assert await _setting(session, "session_replication_role") == "origin"
    # The per-row checks keep their generic plan (a primary-key probe) for the rest of
    # the transaction instead of being planned for every row.
    assert await _setting(session, "plan_cache_mode") == "auto"
    bad = [_lead_row(org.id, uuid.uuid4(), 9)]
    # Refused by PostgreSQL's own per-row check (no statement of ours ran for the keys).
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        async with session.begin_nested():
            await bulk_insert(
                session, Lead, bad, columns=list(bad[0]), json_columns=("tags", "custom")
            )
    await session.execute(text("RESET ROLE"))
    assert await session.scalar(select(func.count()).where(Lead.organization_id == org.id)) == 5


async def test_the_rows_a_copy_references_stay_locked_until_it_commits(
    committed_pg: Database, tmp_path: Path
) -> None:
    """As PostgreSQL's own per-row check: a user the COPY's leads reference cannot be
    deleted by another transaction before the COPY's commits."""
    async with committed_pg.sessionmaker() as setup:
        factory = Factory(setup, make_settings(committed_pg.url, tmp_path))
        org = await factory.org()
        user = await factory.user(org)
    async with committed_pg.sessionmaker() as writer:
        rows = [_lead_row(org.id, user.id, n) for n in range(3)]
        await bulk_insert(
            writer, Lead, rows, columns=list(rows[0]), json_columns=("tags", "custom")
        )
        async with committed_pg.engine.connect() as other:
            await other.execute(text("SET lock_timeout = '200ms'"))
            with pytest.raises(DBAPIError, match=r"(?i)lock timeout"):
                await other.execute(text("DELETE FROM users WHERE id = :u"), {"u": user.id})
            await other.rollback()
        await writer.commit()
    async with committed_pg.sessionmaker() as check:
        assert await check.scalar(select(func.count()).where(Lead.assignee_id == user.id)) == 3


async def test_data_keeping_triggers_fire_in_the_replica_role(
    session: AsyncSession, factory: Factory
) -> None:
    """A COPY's transaction runs in the replica role for a moment: the lead rollups are
    kept and the audit stays append-only in it."""
    org = await factory.org()
    user = await factory.user(org)
    rows = [_lead_row(org.id, user.id, n) for n in range(4)]
    await bulk_insert(session, Lead, rows, columns=list(rows[0]), json_columns=("tags", "custom"))
    if not is_postgres(session):
        return  # SQLite: no replication role; rollups and the audit guard are PostgreSQL's
    # A trigger added later must be enabled ALWAYS too, or a COPY would skip it.
    origin_only = await session.scalars(
        text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgenabled <> 'A'")
    )
    assert list(origin_only) == []
    delta = text("SELECT sum(leads) FROM lead_rollup_deltas WHERE organization_id = :o")
    assert await session.scalar(delta, {"o": org.id}) == 4
    session.add(AuditLog(organization_id=org.id, action="test.copy", resource_type="lead"))
    await session.flush()
    await session.execute(text("SELECT set_config('session_replication_role', 'replica', true)"))
    with pytest.raises(DBAPIError, match=r"(?i)append-only"):
        async with session.begin_nested():
            await session.execute(
                text("UPDATE audit_logs SET action = 'x' WHERE organization_id = :o"), {"o": org.id}
            )
