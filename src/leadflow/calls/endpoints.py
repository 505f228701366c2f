"""/api/v1/call-requests and seed 001's alias POST /api/process-request."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from pydantic_core import from_json
from sqlalchemy.ext.asyncio import AsyncSession

import leadflow.calls.jobs  # noqa: F401  (registers the jobs the service queues)
from leadflow.auth.dependencies import current_actor, require_permission
from leadflow.auth.streams import session_recheck, stream_slot
from leadflow.authz.actor import Actor
from leadflow.calls import repository, service
from leadflow.calls.repository import CallFilter
from leadflow.calls.schemas import (
    CallAccepted,
    CallEventRead,
    CallRequestIn,
    CallRequestRead,
    CallStatus,
    ProviderEventOut,
)
from leadflow.db.session import SessionDep, SessionFactoryDep
from leadflow.exceptions import BadRequest, LeadflowError, TooManyRequests, ValidationFailed
from leadflow.kit.fanout import Wakeups
from leadflow.kit.nultext import DETAIL as NUL_DETAIL
from leadflow.kit.nultext import nul_path
from leadflow.kit.pagination import Page, PageParams, page_params
from leadflow.kit.sse import (
    SESSION_ENDED_EVENT,
    SSE_HEADERS,
    SessionRecheck,
    SlotStreamingResponse,
    parse_last_event_id,
)
from leadflow.models.call_request import CallRequest

router = APIRouter(tags=["calls"])
alias_router = APIRouter(include_in_schema=False)
Reader = Annotated[Actor, Depends(require_permission("calls:read"))]
Writer = Annotated[Actor, Depends(require_permission("calls:write"))]
Paging = Annotated[PageParams, Depends(page_params)]

_STREAM_BATCH = 100


def _accepted(row: CallRequest, created: bool) -> CallAccepted:
    return CallAccepted(
        request_id=row.request_id,
        message="Request is being processed" if created else "Request already received",
        id=row.id,
        call_status=CallStatus(row.status),
        duplicate=not created,
        warnings=service.warnings_of(row),
    )


@router.post(
    "",
    response_model=CallAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses={200: {"model": CallAccepted, "description": "The request_id was sent before"}},
)
async def submit(
    request: Request, response: Response, session: SessionDep, actor: Writer, body: CallRequestIn
) -> CallAccepted:
    """Accept a call request (seed 001's body, optional `lead_id`); the call runs in the worker.

    202 for a new request; the same `request_id` again answers 200 with the existing request
    and starts nothing. Outside business hours the call is scheduled for the next opening.
    """
    row, created = await service.submit(session, actor, request.app.state.settings, body)
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = f"{request.url.path}/{row.id}"
    return _accepted(row, created)


@router.get("", response_model=Page[CallRequestRead])
async def list_requests(
    session: SessionDep,
    actor: Reader,
    page: Paging,
    status_: Annotated[CallStatus | None, Query(alias="status")] = None,
    user: Annotated[
        str | None,
        Query(max_length=200, description="`me`, a user id (requester) or the client's user_id"),
    ] = None,
    lead_id: uuid.UUID | None = None,
) -> Page[CallRequestRead]:
    """Call requests you may see (yours; your team's or organisation's by role), newest first."""
    requested_by: uuid.UUID | None = None
    external_user_id: str | None = None
    if user == "me":
        # An actor without a user (none today) has no requests of its own: match nothing.
        requested_by = actor.user_id or uuid.UUID(int=0)
    elif user is not None:
        external_user_id = user
        try:
            requested_by = uuid.UUID(user)
        except ValueError:
            requested_by = None
    f = CallFilter(
        status=status_.value if status_ else None,
        requested_by=requested_by,
        external_user_id=external_user_id,
        lead_id=lead_id,
    )
    rows, total = await service.list_requests(session, actor, f, page)
    return Page(
        items=[CallRequestRead.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{call_id}", response_model=CallRequestRead)
async def get_request(session: SessionDep, actor: Reader, call_id: str) -> CallRequestRead:
    """One call request by its id or by the client's `request_id`."""
    return CallRequestRead.model_validate(await service.get_request(session, actor, call_id))


@router.get("/{call_id}/events", response_model=Page[CallEventRead])
async def list_events(
    session: SessionDep, actor: Reader, call_id: str, page: Paging
) -> Page[CallEventRead]:
    """The request's events, oldest first."""
    _, rows, total = await service.list_events(session, actor, call_id, page)
    return Page(
        items=[CallEventRead.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


async def _stream(
    request: Request,
    factory: Callable[[], AsyncSession],
    call_id: uuid.UUID,
    after: int,
    max_events: int | None,
    max_seconds: float,
    guard: SessionRecheck,
) -> AsyncIterator[bytes]:
    # The events come from the database, whichever process wrote them; between reads the
    # stream waits for a wake-up of its call (Redis pub/sub) or, without Redis, re-reads
    # every second (see kit/fanout.py).
    wakeups: Wakeups = getattr(request.app.state, "wakeups", None) or Wakeups()
    sent = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    yield b"retry: 3000\n\n"
    async with wakeups.watch(service.stream_topic(call_id)) as watch:
        while loop.time() < deadline:
            if not await guard.still_valid():
                yield SESSION_ENDED_EVENT
                return
            async with factory() as session:
                rows = await repository.events_after(session, call_id, after, _STREAM_BATCH)
                current = await session.get(CallRequest, call_id)
                settled = current is None or CallStatus(current.status) in service.FINAL
            for row in rows:
                after = row.seq
                data = CallEventRead.model_validate(row).model_dump_json()
                yield f"id: {row.seq}\nevent: call_event\ndata: {data}\n\n".encode()
                sent += 1
                if max_events is not None and sent >= max_events:
                    return
            if len(rows) == _STREAM_BATCH:
                continue  # more are waiting
            if settled:
                # Nothing will happen any more: tell the client, so it does not reconnect.
                yield b"event: end\ndata: {}\n\n"
                return
            if await request.is_disconnected():
                return
            yield b": keep-alive\n\n"
            await watch.wait(deadline - loop.time())


@router.get("/{call_id}/events/stream")
async def stream_events(
    request: Request,
    session: SessionDep,
    factory: SessionFactoryDep,
    actor: Reader,
    call_id: str,
    after: Annotated[
        int | None, Query(ge=0, le=2_147_483_647, description="Last `seq` seen")
    ] = None,
    max_events: Annotated[int | None, Query(ge=1, le=1000)] = None,
    max_seconds: Annotated[float, Query(gt=0, le=3600)] = 300,
) -> SlotStreamingResponse:
    """Server-sent events: one `call_event` per event (`id` = its `seq`), then `end` once the
    request is settled.

    Resume with `?after=<seq>` (or the `Last-Event-ID` header; malformed is a 400); the stream
    also ends after `max_seconds` (the browser reconnects by itself) or `max_events`, and with a
    `session_ended` event once the caller's session or key stops authenticating. A user may hold
    `LEADFLOW_STREAMS_PER_USER` streams open at once (429 beyond).
    """
    row = await service.get_request(session, actor, call_id)
    header = parse_last_event_id(request.headers.get("last-event-id"), _event_seq)
    start = after if after is not None else (header or 0)
    guard = session_recheck(request, factory, actor, permission="calls:read")
    release = stream_slot(request, actor)
    return SlotStreamingResponse(
        _stream(request, factory, row.id, start, max_events, max_seconds, guard),
        release=release,
        media_type="text/event-stream",
        headers=SSE_HEADERS,
    )


def _event_seq(value: str) -> int:
    """A call event `seq` as sent in `id:` (digits only; ValueError otherwise)."""
    if not value.isascii() or not value.isdigit():
        raise ValueError(value)
    return int(value)


@router.post("/{call_id}/cancel", response_model=CallRequestRead)
async def cancel(session: SessionDep, actor: Writer, call_id: str) -> CallRequestRead:
    """Cancel a request that is not booked, failed or canceled yet (409 `illegal_transition`)."""
    return CallRequestRead.model_validate(await service.cancel(session, actor, call_id))


@router.post("/{call_id}/provider-events", response_model=ProviderEventOut)
async def provider_events(
    request: Request, session: SessionDep, call_id: uuid.UUID
) -> ProviderEventOut:
    """Twilio status callbacks. No bearer auth: a valid `X-Twilio-Signature` is required (403).

    The signature is checked against `LEADFLOW_PUBLIC_URL` + this path, the URL the call was
    created with.
    """
    settings = request.app.state.settings
    form = await request.form()
    params = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
    url = f"{settings.public_url.rstrip('/')}{request.url.path}"
    if request.url.query:
        url += f"?{request.url.query}"
    return await service.provider_event(
        session,
        settings,
        call_id,
        url=url,
        params=params,
        signature=request.headers.get("x-twilio-signature"),
    )


# --------------------------------------------------------------------------- seed alias


def _seed_error(
    status_code: int,
    request_id: str | None,
    error: str,
    code: str,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """Seed 001's error shape (plus a stable `code`)."""
    return JSONResponse(
        {"status": "error", "request_id": request_id, "error": error, "code": code},
        status_code=status_code,
        headers=headers,
    )


def _describe(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        msg = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


async def _alias_actor(request: Request, session: AsyncSession) -> Actor:
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    actor = await current_actor(request, session, bearer, request.headers.get("x-api-key"))
    actor.require("calls:write")
    return actor


@alias_router.post("/process-request")
async def process_request(request: Request, session: SessionDep) -> JSONResponse:
    """Seed 001's `POST /api/process-request`: same rules, seed-shaped answers and errors."""
    raw = await request.body()
    try:
        payload: Any = from_json(raw) if raw else None
    except ValueError:
        return _seed_error(400, None, "The body is not valid JSON", BadRequest.code)
    rid = payload.get("request_id") if isinstance(payload, dict) else None
    request_id = rid if isinstance(rid, str) else None
    if nul_path(payload) is not None:  # as the API's routers answer it (kit/nultext.py)
        return _seed_error(422, request_id, NUL_DETAIL, ValidationFailed.code)
    try:
        actor = await _alias_actor(request, session)
        data = CallRequestIn.model_validate(payload)
        row, created = await service.submit(session, actor, request.app.state.settings, data)
    except ValidationError as exc:
        await session.rollback()
        found = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return _seed_error(422, request_id, _describe(found), ValidationFailed.code)
    except LeadflowError as exc:
        await session.rollback()
        listed = exc.extra.get("errors")
        detail = _describe(listed) if listed else exc.detail
        headers = (
            {"Retry-After": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else None
        )
        return _seed_error(exc.status, request_id, detail, exc.code, headers)
    return JSONResponse(
        _accepted(row, created).model_dump(mode="json"),
        status_code=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK,
    )
