"""Interaction and message-event queries (the lead is checked for scope by the service)."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.pagination import PageParams
from leadflow.models.activity import Interaction, MessageEvent


async def list_interactions(
    session: AsyncSession, lead_id: uuid.UUID, page: PageParams
) -> tuple[list[Interaction], int]:
    """Interactions of a lead, newest first."""
    total = await session.scalar(
        select(func.count()).select_from(Interaction).where(Interaction.lead_id == lead_id)
    )
    rows = await session.scalars(
        select(Interaction)
        .where(Interaction.lead_id == lead_id)
        .order_by(Interaction.occurred_at.desc(), Interaction.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    return list(rows), int(total or 0)


async def list_events(
    session: AsyncSession, lead_id: uuid.UUID, page: PageParams
) -> tuple[list[MessageEvent], int]:
    """Message events of a lead ordered by `occurred_at desc`."""
    total = await session.scalar(
        select(func.count()).select_from(MessageEvent).where(MessageEvent.lead_id == lead_id)
    )
    rows = await session.scalars(
        select(MessageEvent)
        .where(MessageEvent.lead_id == lead_id)
        .order_by(MessageEvent.occurred_at.desc(), MessageEvent.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    return list(rows), int(total or 0)
