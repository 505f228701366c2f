"""GET /api/v1/leads/{id}/timeline."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep
from leadflow.kit.pagination import Page, PageParams, page_params
from leadflow.timeline import service
from leadflow.timeline.schemas import TimelineItem

router = APIRouter(tags=["activities"])
Reader = Annotated[Actor, Depends(require_permission("leads:read"))]


@router.get("/{lead_id}/timeline", response_model=Page[TimelineItem])
async def lead_timeline(
    session: SessionDep,
    actor: Reader,
    lead_id: uuid.UUID,
    page: Annotated[PageParams, Depends(page_params)],
    kind: Annotated[list[str] | None, Query(description="Only these kinds (repeatable)")] = None,
) -> Page[TimelineItem]:
    """Everything that happened to the lead, newest first: `{kind, occurred_at, actor,
    summary, data}`."""
    items, total = await service.timeline(session, actor, lead_id, page, kind)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
