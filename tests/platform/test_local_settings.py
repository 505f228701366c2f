"""Planner settings changed for a few statements only (`db.dialect.local_settings`, the
import's duplicate lookup), and the COPY of many rows checking its foreign keys with the
generic plan."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from leadflow.db.dialect import bulk_insert, is_postgres, local_settings
from leadflow.kit.clock import utcnow
from leadflow.models.lead_history import LeadStatusChange
from tests.fixtures.factories import Factory


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


async def test_bulk_insert_checks_foreign_keys_with_the_generic_plan(
    session: AsyncSession, factory: Factory
) -> None:
    org = await factory.org()
    lead = await factory.lead(org)
    mode = await _setting(session, "plan_cache_mode") if is_postgres(session) else None
    now = utcnow()
    rows = [
        {
            "id": uuid7(),
            "organization_id": org.id,
            "lead_id": lead.id,
            "actor_user_id": None,
            "from_status": None,
            "to_status": "contacted",
            "reason": "test",
            "created_at": now,
        }
        for _ in range(20)
    ]
    await bulk_insert(session, LeadStatusChange, rows, columns=list(rows[0]))
    n = await session.scalar(
        select(func.count()).where(
            LeadStatusChange.lead_id == lead.id, LeadStatusChange.reason == "test"
        )
    )
    assert n == 20
    if mode is not None:
        # The pool plans every statement for its values; the rest of a bulk write's
        # transaction may keep generic plans (the per-row foreign-key probes).
        assert mode == "force_custom_plan"
        assert await _setting(session, "plan_cache_mode") == "auto"
    # A row for a lead that does not exist is still refused by its foreign key.
    bad = {**rows[0], "id": uuid7(), "lead_id": uuid.uuid4()}
    with pytest.raises(Exception, match=r"(?i)foreign key"):
        async with session.begin_nested():
            await bulk_insert(session, LeadStatusChange, [bad], columns=list(bad))
