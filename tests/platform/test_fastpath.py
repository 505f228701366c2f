"""db/fastpath: SQLAlchemy statements run on the driver connection give the same rows."""

from __future__ import annotations

import uuid

import asyncpg
import pytest
from sqlalchemy import Integer, Text, bindparam, func, literal, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth.service import authenticate
from leadflow.config import Settings
from leadflow.db.engine import Database
from leadflow.db.fastpath import fetch_all, fetch_one
from leadflow.leads import repository as leads_repository
from leadflow.leads.schemas import LeadFilter
from leadflow.models.lead import Lead
from tests.fixtures.factories import Factory


async def test_rows_match_the_session(session: AsyncSession, factory: Factory) -> None:
    org, other = await factory.org(), await factory.org()
    for i in range(3):
        await factory.lead(org, first_name=f"F{i}", tags=[f"t{i}"])
    await factory.lead(other, first_name="F0")
    stmt = (
        select(Lead.id, Lead.first_name, Lead.tags, Lead.created_at)
        .where(Lead.organization_id == org.id)
        .order_by(Lead.first_name)
    )
    rows = await fetch_all(session, stmt)
    expected = (await session.execute(stmt)).all()
    assert [tuple(r[k] for k in ("id", "first_name", "tags", "created_at")) for r in rows] == [
        tuple(e) for e in expected
    ]
    assert [r["tags"] for r in rows] == [["t0"], ["t1"], ["t2"]]
    assert all(r["created_at"].tzinfo is not None for r in rows)
    # The same shape with other values reuses the compiled SQL and binds the new ones.
    again = await fetch_all(
        session, select(Lead.first_name).where(Lead.organization_id == other.id)
    )
    assert [r["first_name"] for r in again] == ["F0"]


async def test_in_lists_and_named_parameters(session: AsyncSession, factory: Factory) -> None:
    org = await factory.org()
    leads = [await factory.lead(org, first_name=f"N{i}") for i in range(3)]
    # An IN list needs SQLAlchemy's expansion at execution time: it takes the session path.
    picked = await fetch_all(
        session, select(Lead.id).where(Lead.id.in_([leads[0].id, leads[2].id]))
    )
    assert {r["id"] for r in picked} == {leads[0].id, leads[2].id}
    template = select(Lead.first_name).where(Lead.id == bindparam("lead_id"))
    for lead in leads:
        row = await fetch_one(session, template, {"lead_id": lead.id})
        assert row is not None and row["first_name"] == lead.first_name
    assert await fetch_one(session, template, {"lead_id": org.id}) is None


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_a_lone_read_opens_no_transaction(database: Database) -> None:
    """Reads before anything else in the request run on their own (no BEGIN/COMMIT); the
    first write still opens a transaction that later reads join."""
    clock = select(func.now().label("t"))  # now() is the start of the current transaction
    async with database.sessionmaker() as s:
        first, second = await fetch_one(s, clock), await fetch_one(s, clock)
        assert first is not None and second is not None
        assert second["t"] > first["t"]  # two statements, two transactions
        await s.execute(text("CREATE TEMP TABLE fastpath_probe (n int) ON COMMIT DROP"))
        await s.execute(text("INSERT INTO fastpath_probe VALUES (1)"))
        probe = select(text("count(*) AS n")).select_from(text("fastpath_probe"))
        seen = await fetch_one(s, probe)
        assert seen is not None and seen["n"] == 1  # the uncommitted row, so the same txn
        third, fourth = await fetch_one(s, clock), await fetch_one(s, clock)
        assert third is not None and fourth is not None
        assert third["t"] == fourth["t"]
        await s.rollback()


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_a_lost_connection_is_dropped_from_the_pool(database: Database) -> None:
    """A read that finds its connection ended by the server invalidates it, as SQLAlchemy's
    own execution would, instead of handing it back to the pool."""
    pid_of = select(func.pg_backend_pid().label("pid"))
    async with database.sessionmaker() as s:
        row = await fetch_one(s, pid_of)
        assert row is not None
        # A failing statement is not a lost connection: it stays in the pool.
        with pytest.raises(asyncpg.DivisionByZeroError):
            await fetch_one(
                s, select((literal(1) / bindparam("zero", type_=Integer)).label("x")), {"zero": 0}
            )
        assert not (await s.connection()).invalidated
        async with database.sessionmaker() as admin:
            # With a timeout PostgreSQL waits until the backend has exited: no race with
            # the next read.
            await admin.execute(select(func.pg_terminate_backend(row["pid"], 5000)))
            await admin.commit()
        with pytest.raises(
            (asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError)
        ):
            await fetch_one(s, pid_of)
        conn = await s.connection()
        assert conn.invalidated
    async with database.sessionmaker() as s:
        again = await fetch_one(s, pid_of)
        assert again is not None and again["pid"] != row["pid"]


def _assert_plain(row: object) -> None:
    """A dict whose UUIDs are `uuid.UUID` itself (not a driver subclass)."""
    assert type(row) is dict
    for value in row.values():
        if isinstance(value, uuid.UUID):
            assert type(value) is uuid.UUID, type(value)


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_driver_types_stay_in_the_data_layer(
    session: AsyncSession, factory: Factory, settings: Settings
) -> None:
    """asyncpg hands out Records and its own UUID subclass; callers get dicts and uuid.UUID."""
    org = await factory.org()
    member = await factory.member(org)
    lead = await factory.lead(org, assignee_id=member.user.id)
    row = await fetch_one(session, select(Lead.id, Lead.assignee_id).where(Lead.id == lead.id))
    assert row is not None
    _assert_plain(row)
    assert type(row["id"]) is uuid.UUID and type(row["assignee_id"]) is uuid.UUID
    # The two callers of the fast path: authentication and the lead list.
    actor = await authenticate(session, settings, member.headers["Authorization"][7:])
    for value in (actor.organization_id, actor.user_id, actor.session_id):
        assert type(value) is uuid.UUID
    page = await leads_repository.list_leads(
        session,
        actor,
        LeadFilter(),
        sort="created_at",
        limit=10,
        offset=0,
        cursor=None,
        count_cap=1000,
    )
    assert [item["id"] for item in page.items] == [lead.id]
    for item in page.items:
        _assert_plain(item)
        assert type(item["assignee_id"]) is uuid.UUID


@pytest.mark.parametrize("database", ["postgresql"], indirect=True)
async def test_a_uuid_column_the_statement_does_not_type_is_converted_too(
    session: AsyncSession, factory: Factory
) -> None:
    """Only the columns typed UUID are converted per row, plus those the first row shows as a
    UUID or NULL: a later row's UUID in an untyped column is still plain."""
    org = await factory.org()
    member = await factory.member(org)
    await factory.lead(org, assignee_id=None, email="a@example.com")
    await factory.lead(org, assignee_id=member.user.id, email="b@example.com")
    owner = literal_column("leads.assignee_id::text::uuid", Text()).label("owner")
    rows = await fetch_all(
        session,
        select(Lead.id, owner).where(Lead.organization_id == org.id).order_by(Lead.email),
    )
    assert [r["owner"] for r in rows] == [None, member.user.id]
    for row in rows:
        _assert_plain(row)
        assert type(row["id"]) is uuid.UUID
    assert type(rows[1]["owner"]) is uuid.UUID
