"""Every query of the AI bridge. Organisation and row scope are applied here."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ai.providers import LocalProvider
from leadflow.authz.actor import Actor
from leadflow.authz.permissions import RowScope
from leadflow.authz.scopes import lead_scope_conditions as scope_conditions
from leadflow.authz.scopes import row_scope_clause
from leadflow.models.ai_generation import AiGeneration
from leadflow.models.lead import Lead
from leadflow.models.task import Task


async def add_generation(session: AsyncSession, row: AiGeneration) -> AiGeneration:
    """Store one AI call."""
    session.add(row)
    await session.flush()
    return row


async def list_generations(
    session: AsyncSession,
    actor: Actor,
    *,
    lead_id: uuid.UUID | None,
    action: str | None,
    limit: int,
    offset: int,
) -> tuple[list[AiGeneration], int]:
    """A page of the organisation's AI calls, newest first.

    With `lead_id` (already checked to be in scope) every call about that lead; without it,
    an organisation-wide role sees all calls and everyone else the calls they made or that
    concern leads in their scope — inputs hold lead notes, so scope matters here too.
    """
    conds: list[ColumnElement[bool]] = [AiGeneration.organization_id == actor.organization_id]
    if lead_id is not None:
        conds.append(AiGeneration.lead_id == lead_id)
    elif actor.row_scope is not RowScope.ORG:
        leads_in_scope = select(Lead.id).where(*scope_conditions(actor))
        conds.append(
            row_scope_clause(actor, [AiGeneration.actor_user_id])
            | AiGeneration.lead_id.in_(leads_in_scope)
        )
    if action:
        conds.append(AiGeneration.action == action)
    total = int(
        await session.scalar(select(func.count()).select_from(AiGeneration).where(*conds)) or 0
    )
    rows = await session.scalars(
        select(AiGeneration)
        .where(*conds)
        .order_by(AiGeneration.created_at.desc(), AiGeneration.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total


async def task_counts(session: AsyncSession, lead_id: uuid.UUID, now: datetime) -> tuple[int, int]:
    """Open and overdue tasks of a lead."""
    row = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(Task.due_at.is_not(None), Task.due_at < now),
            ).where(Task.lead_id == lead_id, Task.status == "open")
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0)


async def count_needing_action(session: AsyncSession, actor: Actor) -> int:
    """Live leads in the actor's scope flagged `needs_action`."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Lead)
            .where(*scope_conditions(actor), Lead.needs_action.is_(True))
        )
        or 0
    )


async def count_provider_calls(
    session: AsyncSession, organization_id: uuid.UUID, since: datetime
) -> int:
    """The organisation's calls since `since` that went to a remote provider.

    A call the local rules answered alone cost nothing; a fallback (or a failed call stored
    with the remote provider's name) was still sent to the remote provider.
    """
    return int(
        await session.scalar(
            select(func.count())
            .select_from(AiGeneration)
            .where(
                AiGeneration.organization_id == organization_id,
                AiGeneration.created_at >= since,
                (AiGeneration.provider != LocalProvider.name) | AiGeneration.fallback.is_(True),
            )
        )
        or 0
    )
