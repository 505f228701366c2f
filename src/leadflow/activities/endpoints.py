"""/api/v1/leads/{id}/interactions and /api/v1/leads/{id}/events (alias /leads/{id}/events)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, status

from leadflow.activities import service
from leadflow.activities.schemas import EventCreate, EventRead, InteractionCreate, InteractionRead
from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep
from leadflow.kit.pagination import Page, PageParams, page_params

router = APIRouter(tags=["activities"])
Reader = Annotated[Actor, Depends(require_permission("leads:read"))]
Writer = Annotated[Actor, Depends(require_permission("leads:write"))]
EventWriter = Annotated[Actor, Depends(require_permission("events:write"))]
Paging = Annotated[PageParams, Depends(page_params)]


@router.post(
    "/{lead_id}/interactions", response_model=InteractionRead, status_code=status.HTTP_201_CREATED
)
async def log_interaction(
    session: SessionDep, actor: Writer, lead_id: uuid.UUID, body: InteractionCreate
) -> InteractionRead:
    """Log a call, email, meeting, note, SMS or WhatsApp."""
    return InteractionRead.model_validate(
        await service.log_interaction(session, actor, lead_id, body)
    )


@router.get("/{lead_id}/interactions", response_model=Page[InteractionRead])
async def list_interactions(
    session: SessionDep, actor: Reader, lead_id: uuid.UUID, page: Paging
) -> Page[InteractionRead]:
    """Interactions, newest first."""
    rows, total = await service.interactions(session, actor, lead_id, page)
    return Page(
        items=[InteractionRead.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.post("/{lead_id}/events", response_model=EventRead, status_code=status.HTTP_201_CREATED)
async def record_event(
    session: SessionDep, actor: EventWriter, lead_id: uuid.UUID, body: EventCreate
) -> EventRead:
    """Record a delivery event (integrations; needs `events:write`)."""
    return EventRead.model_validate(await service.record_event(session, actor, lead_id, body))


@router.get("/{lead_id}/events", response_model=Page[EventRead])
async def list_events(
    session: SessionDep, actor: Reader, lead_id: uuid.UUID, page: Paging
) -> Page[EventRead]:
    """Delivery events ordered by `occurred_at desc`."""
    rows, total = await service.events(session, actor, lead_id, page)
    return Page(
        items=[EventRead.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
