"""SLA queries: policies, the due/late scans and claims of the periodic check, SLA lists."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from leadflow.authz.actor import Actor
from leadflow.authz.scopes import lead_scope_conditions as scope_conditions
from leadflow.db.claims import claim
from leadflow.kit.pagination import PageParams
from leadflow.models.assignment_rule import SlaPolicy
from leadflow.models.lead import Lead

# A running clock; the partial indexes on leads cover exactly these rows, so the due and late
# scans stay proportional to the leads that are due.
_OPEN = and_(Lead.sla_met_at.is_(None), Lead.sla_breached_at.is_(None), Lead.deleted_at.is_(None))


async def policies(
    session: AsyncSession, org_id: uuid.UUID, *, active_only: bool = False
) -> list[SlaPolicy]:
    """The organisation's policies (or only the active ones) in evaluation order."""
    stmt = select(SlaPolicy).where(SlaPolicy.organization_id == org_id)
    if active_only:
        stmt = stmt.where(SlaPolicy.is_active.is_(True))
    rows = await session.scalars(stmt.order_by(SlaPolicy.position, SlaPolicy.created_at))
    return list(rows)


async def get_policy(session: AsyncSession, actor: Actor, policy_id: uuid.UUID) -> SlaPolicy | None:
    """A policy of the actor's organisation."""
    return await session.scalar(
        select(SlaPolicy).where(
            SlaPolicy.id == policy_id, SlaPolicy.organization_id == actor.organization_id
        )
    )


async def due_reminder_ids(session: AsyncSession, now: datetime, limit: int) -> list[uuid.UUID]:
    """Open leads whose reminder time has passed, not yet reminded, deadline still ahead."""
    rows = await session.scalars(
        select(Lead.id)
        .where(
            Lead.sla_reminder_at.is_not(None),
            Lead.sla_reminder_at <= now,
            Lead.sla_reminded_at.is_(None),
            Lead.sla_deadline > now,
            _OPEN,
        )
        .limit(limit)
    )
    return list(rows)


async def claim_reminder(session: AsyncSession, lead_id: uuid.UUID, now: datetime) -> bool:
    """Mark an open lead reminded; True only for the one caller whose UPDATE matched.

    A conditional UPDATE (`… IS NULL`), so concurrent checks never remind twice.
    """
    return await claim(
        session,
        Lead,
        Lead.id == lead_id,
        Lead.sla_reminded_at.is_(None),
        _OPEN,
        sla_reminded_at=now,
    )


async def late_ids(session: AsyncSession, now: datetime, limit: int) -> list[uuid.UUID]:
    """Open leads whose deadline has passed."""
    rows = await session.scalars(
        select(Lead.id)
        .where(Lead.sla_deadline.is_not(None), Lead.sla_deadline <= now, _OPEN)
        .limit(limit)
    )
    return list(rows)


async def claim_breach(session: AsyncSession, lead_id: uuid.UUID, now: datetime) -> bool:
    """Mark an open lead past its deadline breached; True only for the one caller that did.

    A conditional UPDATE like `claim_reminder`, so concurrent checks never notify twice.
    """
    return await claim(
        session, Lead, Lead.id == lead_id, _OPEN, Lead.sla_deadline <= now, sla_breached_at=now
    )


def state_conditions(state: str, now: datetime) -> list[ColumnElement[bool]]:
    """Leads whose SLA clock is in `state` at `now`: `met` (the response came, in time or
    late), `breached` (no response and the deadline passed, whether or not the periodic check
    has marked it yet), `at_risk` (running, past its reminder time), else `running`."""
    conds: list[ColumnElement[bool]] = [Lead.sla_deadline.is_not(None)]
    if state == "met":
        conds.append(Lead.sla_met_at.is_not(None))
    elif state == "breached":
        conds.extend(
            [
                Lead.sla_met_at.is_(None),
                (Lead.sla_breached_at.is_not(None)) | (Lead.sla_deadline <= now),
            ]
        )
    elif state == "at_risk":
        conds.extend(
            [
                Lead.sla_met_at.is_(None),
                Lead.sla_breached_at.is_(None),
                Lead.sla_deadline > now,
                Lead.sla_reminder_at <= now,
            ]
        )
    else:
        conds.extend(
            [Lead.sla_met_at.is_(None), Lead.sla_breached_at.is_(None), Lead.sla_deadline > now]
        )
    return conds


async def leads_in_state(
    session: AsyncSession, actor: Actor, state: str, now: datetime, page: PageParams
) -> tuple[list[Lead], int]:
    """Leads in the actor's scope whose SLA is in `state` at `now`, most urgent first."""
    conds: list[Any] = [*scope_conditions(actor), *state_conditions(state, now)]
    total = await session.scalar(select(func.count()).select_from(Lead).where(*conds))
    rows = await session.scalars(
        select(Lead)
        .where(*conds)
        .order_by(Lead.sla_deadline, Lead.id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return list(rows), int(total or 0)


def _loaded(session: AsyncSession, lead_ids: Sequence[uuid.UUID]) -> list[Lead]:
    """The leads among `lead_ids` this session holds (an API request's lead), without SQL."""
    held = session.sync_session.identity_map
    found = (held.get(identity_key(Lead, i)) for i in lead_ids)
    return [lead for lead in found if isinstance(lead, Lead)]


async def start_clocks(
    session: AsyncSession,
    lead_ids: Sequence[uuid.UUID],
    *,
    policy_id: uuid.UUID | None,
    started_at: datetime,
    deadline: datetime,
    reminder_at: datetime | None,
) -> None:
    """Start one clock on many leads: nothing reminded, met or breached yet. Leads this
    session holds get the same values, so a response built from them shows the clock."""
    values: dict[str, Any] = {
        "sla_policy_id": policy_id,
        "sla_started_at": started_at,
        "sla_deadline": deadline,
        "sla_reminder_at": reminder_at,
        "sla_reminded_at": None,
        "sla_met_at": None,
        "sla_breached_at": None,
    }
    await session.execute(
        update(Lead)
        .where(Lead.id.in_(lead_ids))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    for lead in _loaded(session, lead_ids):
        for key, value in values.items():
            set_committed_value(lead, key, value)


async def mark_met(session: AsyncSession, lead_ids: Sequence[uuid.UUID], now: datetime) -> None:
    """Stop the running clocks among `lead_ids` (those with a deadline and not yet met)."""
    await session.execute(
        update(Lead)
        .where(Lead.id.in_(lead_ids), Lead.sla_deadline.is_not(None), Lead.sla_met_at.is_(None))
        .values(sla_met_at=now)
        .execution_options(synchronize_session=False)
    )
    for lead in _loaded(session, lead_ids):
        if lead.sla_deadline is not None and lead.sla_met_at is None:
            set_committed_value(lead, "sla_met_at", now)
