"""Assignment queries: rules, their target users and those users' open-lead loads."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.assignment.schemas import Strategy
from leadflow.models.assignment_rule import AssignmentRule
from leadflow.models.lead import Lead
from leadflow.models.pipeline_stage import PipelineStage
from leadflow.models.user import User


def _in_evaluation_order(*conds: ColumnElement[bool]) -> Select[AssignmentRule]:
    return (
        select(AssignmentRule)
        .where(*conds)
        .order_by(AssignmentRule.position, AssignmentRule.created_at)
    )


async def list_rules(session: AsyncSession, org_id: uuid.UUID) -> list[AssignmentRule]:
    """The organisation's rules in evaluation order."""
    rows = await session.scalars(_in_evaluation_order(AssignmentRule.organization_id == org_id))
    return list(rows)


async def lock_active_rules(session: AsyncSession, org_id: uuid.UUID) -> list[AssignmentRule]:
    """The organisation's active rules in evaluation order, locked (FOR UPDATE).

    The row locks are held until the transaction ends, so concurrent creations and imports
    evaluate the rules one after another and take distinct round-robin slots: each reads the
    counters the previous one advanced and flushed.
    """
    rows = await session.scalars(
        _in_evaluation_order(
            AssignmentRule.organization_id == org_id, AssignmentRule.is_active.is_(True)
        ).with_for_update()
    )
    return list(rows)


async def get_rule(
    session: AsyncSession, org_id: uuid.UUID, rule_id: uuid.UUID
) -> AssignmentRule | None:
    """A rule of the organisation."""
    return await session.scalar(
        select(AssignmentRule).where(
            AssignmentRule.id == rule_id, AssignmentRule.organization_id == org_id
        )
    )


async def user_ids_in_org(
    session: AsyncSession, org_id: uuid.UUID, ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of `ids` that are users of the organisation."""
    return set(
        await session.scalars(
            select(User.id).where(User.id.in_(ids), User.organization_id == org_id)
        )
    )


async def active_targets(session: AsyncSession, rule: AssignmentRule) -> list[User]:
    """Active users of the rule's organisation the rule targets, by id; none if it targets none.

    The fixed user for a fixed-user rule, else its listed users, else its team's members.
    """
    stmt = select(User).where(User.organization_id == rule.organization_id, User.status == "active")
    if rule.strategy == Strategy.FIXED_USER:
        stmt = stmt.where(User.id == rule.fixed_user_id)
    elif rule.user_ids:
        stmt = stmt.where(User.id.in_([uuid.UUID(u) for u in rule.user_ids]))
    elif rule.team_id is not None:
        stmt = stmt.where(User.team_id == rule.team_id)
    else:
        return []
    return list(await session.scalars(stmt.order_by(User.id)))


async def open_loads(
    session: AsyncSession, org_id: uuid.UUID, ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Open (not deleted, open-stage) lead count of each of `ids`, 0 for those with none."""
    open_keys = select(PipelineStage.key).where(
        PipelineStage.organization_id == org_id, PipelineStage.category == "open"
    )
    rows = await session.execute(
        select(Lead.assignee_id, func.count())
        .where(
            Lead.organization_id == org_id,
            Lead.assignee_id.in_(ids),
            Lead.deleted_at.is_(None),
            Lead.status.in_(open_keys),
        )
        .group_by(Lead.assignee_id)
    )
    loads = {i: 0 for i in ids}
    loads.update({uid: int(n) for uid, n in rows.all() if uid is not None})
    return loads


async def set_rr_counter(session: AsyncSession, rule_id: uuid.UUID, counter: int) -> None:
    """Advance a rule's round-robin counter to `counter` (never back: a writer that held
    the rule's lock earlier may have taken slots since)."""
    await session.execute(
        update(AssignmentRule)
        .where(AssignmentRule.id == rule_id, AssignmentRule.rr_counter < counter)
        .values(rr_counter=counter)
    )
