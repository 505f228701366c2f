"""db/fastpath: SQLAlchemy statements run on the driver connection give the same rows."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db.fastpath import fetch_all, fetch_one
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
