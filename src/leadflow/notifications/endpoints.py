"""/api/v1/notifications: list, read, read-all, unread-count, and a server-sent event stream."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from leadflow.auth.dependencies import CurrentPerson
from leadflow.auth.streams import session_recheck, stream_slot
from leadflow.db.session import SessionDep, SessionFactoryDep
from leadflow.kit.pagination import Page, PageParams, page_params
from leadflow.kit.sse import (
    SSE_HEADERS,
    SlotStreamingResponse,
    parse_last_event_id,
)
from leadflow.notifications import service
from leadflow.notifications.schemas import NotificationRead, ReadAllOut, UnreadCount
from leadflow.notifications.stream import notification_events

router = APIRouter(tags=["notifications"])
Paging = Annotated[PageParams, Depends(page_params)]


@router.get("", response_model=Page[NotificationRead])
async def list_notifications(
    session: SessionDep, actor: CurrentPerson, page: Paging, unread: bool | None = None
) -> Page[NotificationRead]:
    """Your notifications, newest first (`unread=true` for unread only)."""
    rows, total = await service.list_for(session, actor, page, unread=unread)
    return Page(
        items=[NotificationRead.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/unread-count", response_model=UnreadCount)
async def unread_count(session: SessionDep, actor: CurrentPerson) -> UnreadCount:
    """How many notifications you have not read."""
    return UnreadCount(unread=await service.unread_count(session, actor))


@router.post("/read-all", response_model=ReadAllOut)
async def read_all(session: SessionDep, actor: CurrentPerson) -> ReadAllOut:
    """Mark all your notifications read."""
    return ReadAllOut(updated=await service.mark_all_read(session, actor))


@router.post("/{notification_id}/read", response_model=NotificationRead)
async def read_one(
    session: SessionDep, actor: CurrentPerson, notification_id: uuid.UUID
) -> NotificationRead:
    """Mark one notification read."""
    return NotificationRead.model_validate(await service.mark_read(session, actor, notification_id))


@router.get("/stream")
async def stream(
    request: Request,
    factory: SessionFactoryDep,
    actor: CurrentPerson,
    last_event_id: Annotated[uuid.UUID | None, Query(alias="after")] = None,
    max_events: Annotated[int | None, Query(ge=1, le=1000)] = None,
    max_seconds: Annotated[float, Query(gt=0, le=3600)] = 300,
) -> SlotStreamingResponse:
    """Server-sent events: one `notification` event per new notification.

    Resume with `?after=<last id>` (or the `Last-Event-ID` header; malformed is a 400); the
    stream ends after `max_seconds` (the browser reconnects by itself) or `max_events`, and with
    a `session_ended` event once the login session ends. A user may hold
    `LEADFLOW_STREAMS_PER_USER` streams open at once (429 beyond).
    """
    header = parse_last_event_id(request.headers.get("last-event-id"), uuid.UUID)
    after = last_event_id or header
    assert actor.user_id is not None  # CurrentPerson guarantees it
    guard = session_recheck(request, factory, actor)
    release = stream_slot(request, actor)
    return SlotStreamingResponse(
        notification_events(request, factory, actor.user_id, after, max_events, max_seconds, guard),
        release=release,
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )
