"""Call-request rules: accept once per request_id, business hours, the status machine,
provider updates, retries, cancel.

Status machine (`TRANSITIONS`; final: booked, failed, canceled)::

    queued                 → outside_business_hours | calling
    outside_business_hours → calling
    calling                → in_progress | waiting_for_callback | failed
    in_progress            → booked | waiting_for_callback | failed
    waiting_for_callback   → calling
    any state not final    → canceled

`waiting_for_callback` is not final: a failed attempt with attempts left waits there with
`scheduled_for` set until the retry moves it back to `calling`; without a retry it waits for
the other side to call back and can still be canceled.

Every change is one conditional UPDATE (`WHERE status IN (…) AND attempts = …`): whoever
moves a request first wins, and a job or provider callback that arrives late (the request
was canceled, or a newer attempt runs) changes nothing. The same UPDATE bumps
`event_count`, which numbers the events it appends.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Collection, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import record, record_create
from leadflow.authz.actor import Actor
from leadflow.calendar import BusinessCalendar
from leadflow.calendar.organization import calendar_of
from leadflow.calls import repository, twilio
from leadflow.calls.errors import (
    PHONE_UNVERIFIED,
    CallCountryNotAllowed,
    CallLimitExceeded,
    DuplicateRequestId,
    IllegalTransition,
    InvalidSignature,
)
from leadflow.calls.events import CallRequestUpdated
from leadflow.calls.integration import auth_token_for
from leadflow.calls.providers import CallUpdate, OutboundCall, UpdateKind
from leadflow.calls.repository import ON_CALL, WAITING, CallFilter
from leadflow.calls.schemas import (
    CallRequestIn,
    CallStatus,
    CallWarning,
    EventType,
    ProviderEventOut,
)
from leadflow.config import Settings
from leadflow.exceptions import NotFound, ValidationFailed
from leadflow.kit.clock import utcnow
from leadflow.kit.events import publish
from leadflow.kit.fanout import announce
from leadflow.kit.normalize import is_valid_phone, normalize_phone, normalize_possible_phone
from leadflow.kit.pagination import PageParams
from leadflow.leads import service as leads
from leadflow.leads.registry import register_lead_child
from leadflow.models.call_request import CallRequest, CallRequestEvent
from leadflow.organizations.service import org_settings
from leadflow.timeline.registry import model_source, register_source
from leadflow.worker.jobs import enqueue_job

S = CallStatus
FINAL: frozenset[CallStatus] = frozenset({S.BOOKED, S.FAILED, S.CANCELED})
NOT_FINAL: frozenset[CallStatus] = frozenset(set(CallStatus) - FINAL)
TRANSITIONS: dict[CallStatus, frozenset[CallStatus]] = {
    S.QUEUED: frozenset({S.OUTSIDE_BUSINESS_HOURS, S.CALLING, S.CANCELED}),
    S.OUTSIDE_BUSINESS_HOURS: frozenset({S.CALLING, S.CANCELED}),
    S.CALLING: frozenset({S.IN_PROGRESS, S.WAITING_FOR_CALLBACK, S.FAILED, S.CANCELED}),
    S.IN_PROGRESS: frozenset({S.BOOKED, S.WAITING_FOR_CALLBACK, S.FAILED, S.CANCELED}),
    S.WAITING_FOR_CALLBACK: frozenset({S.CALLING, S.CANCELED}),
    S.BOOKED: frozenset(),
    S.FAILED: frozenset(),
    S.CANCELED: frozenset(),
}
# A call with no final word from the provider after this long counts as a failed attempt
# (a worker that died mid-call, a status callback that never came). Booking calls are short.
CALL_TIMEOUT = timedelta(minutes=30)
TIMELINE_KIND = "call_request"
_DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")

Event = tuple[EventType, str, dict[str, Any] | None]


def check_transition(current: CallStatus, target: CallStatus) -> None:
    """Raise IllegalTransition unless `current → target` is in the status machine."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(
            f"A call request cannot go from {current.value} to {target.value}",
            current=current.value,
            target=target.value,
        )


# --------------------------------------------------------------------------- timeline


def _timeline_entry(row: CallRequest) -> tuple[str, dict[str, Any]]:
    return f"Call request '{row.title}': {row.status}", {
        "call_request_id": str(row.id),
        "request_id": row.request_id,
        "status": row.status,
        "number_to_call": row.number_to_call,
        "attempts": row.attempts,
        "scheduled_for": row.scheduled_for.isoformat() if row.scheduled_for else None,
        "summary": row.summary,
    }


# One entry per request (its current status and summary); the step-by-step log is
# GET /api/v1/call-requests/{id}/events.
register_source(
    model_source(
        TIMELINE_KIND,
        CallRequest,
        CallRequest.created_at,
        _timeline_entry,
        actor_col="requested_by",
    )
)
register_lead_child(CallRequest)  # merging leads moves their call requests with them


# --------------------------------------------------------------------------- calendar


def local_label(calendar: BusinessCalendar, at: datetime) -> str:
    """`Mon 30.03.2026 08:00 (Europe/Berlin)`: the calendar's wall time, locale-independent."""
    local = at.astimezone(ZoneInfo(calendar.timezone))
    return f"{_DAY_NAMES[local.weekday()]} {local:%d.%m.%Y %H:%M} ({calendar.timezone})"


# --------------------------------------------------------------------------- core


def stream_topic(call_id: uuid.UUID) -> str:
    """The wake-up topic of a call request's event streams."""
    return f"call-request:{call_id}"


async def _advance(
    session: AsyncSession,
    call_id: uuid.UUID,
    *,
    expect: Collection[CallStatus],
    to: CallStatus,
    events: Sequence[Event],
    attempt: int | None = None,
    **values: Any,
) -> CallRequest | None:
    """Move the request from one of `expect` to `to` and append `events`, atomically.

    `to` may equal the current status (a step that only logs, e.g. booking_in_progress).
    Returns None, changing nothing, when the request is no longer in `expect` (or runs
    another attempt than `attempt`).
    """
    for current in expect:
        if current != to:
            check_transition(current, to)
    n = len(events)
    moved = await repository.move_status(
        session,
        call_id,
        expect=[s.value for s in expect],
        to=to.value,
        attempt=attempt,
        new_events=n,
        values=values,
    )
    if moved is None:
        return None
    last, org_id = moved
    now = utcnow()
    for i, (kind, message, data) in enumerate(events):
        session.add(
            CallRequestEvent(
                organization_id=org_id,
                call_request_id=call_id,
                seq=last - n + 1 + i,
                type=kind.value,
                status=to.value,
                message=message,
                data=data,
                created_at=now,
            )
        )
    await session.flush()
    # Event streams of this call in every API process read the new events after commit.
    announce(session, stream_topic(call_id))
    row = await session.get(CallRequest, call_id, populate_existing=True)
    if row is not None:
        await publish(
            session, CallRequestUpdated(organization_id=org_id, call_request=row, now=now)
        )
    return row


async def _schedule(
    session: AsyncSession,
    row: CallRequest,
    *,
    to: CallStatus,
    at: datetime,
    message: str,
    attempt: int,
    expect: Collection[CallStatus] | None = None,
    events: Sequence[Event] = (),
    **values: Any,
) -> CallRequest | None:
    """Set the next attempt for `at` with a `scheduled` event, and queue it durably then."""
    data = {"scheduled_for": at.isoformat(), "attempt": attempt + 1}
    moved = await _advance(
        session,
        row.id,
        expect=expect if expect is not None else {CallStatus(row.status)},
        to=to,
        attempt=attempt,
        events=[*events, (EventType.SCHEDULED, message, data)],
        scheduled_for=at,
        **values,
    )
    if moved is not None:
        # Huey keeps eta jobs durably; the periodic `calls.due` scan is the safety net.
        enqueue_job(session, "calls.process", str(row.id), eta=at)
    return moved


# --------------------------------------------------------------------------- limits


async def check_limits(session: AsyncSession, actor: Actor, settings: Settings) -> None:
    """429 `call_limit_exceeded` (with Retry-After) when a new request would exceed
    `LEADFLOW_CALLS_PER_ORG_PER_DAY` (UTC day), `LEADFLOW_CALLS_PER_ORG_PER_HOUR` or
    `LEADFLOW_CALLS_PER_USER_PER_HOUR` (moving hour); 0 turns a limit off.

    Counted from the stored requests, so every process sees the same counts and they
    survive restarts; the organisation's row lock makes concurrent submissions count in turn.
    """
    now = utcnow()
    org_id = actor.organization_id
    day = datetime(now.year, now.month, now.day, tzinfo=UTC)
    hour_ago = now - timedelta(hours=1)
    checks: list[tuple[str, int, datetime, uuid.UUID | None, str]] = [
        ("org_day", settings.calls_per_org_per_day, day, None, "This organisation"),
        ("org_hour", settings.calls_per_org_per_hour, hour_ago, None, "This organisation"),
    ]
    if actor.user_id is not None:
        checks.append(
            ("user_hour", settings.calls_per_user_per_hour, hour_ago, actor.user_id, "You")
        )
    if not any(limit > 0 for _, limit, *_ in checks):
        return
    await repository.lock_organization(session, org_id)
    for name, limit, since, user, who in checks:
        if limit <= 0:
            continue
        # The moving hour is (now - 1 h, now]: a request leaves it exactly an hour later, when
        # the Retry-After below runs out. The day starts at midnight UTC inclusive.
        strict = name != "org_day"
        used = await repository.count_created_since(
            session, org_id, since, requested_by=user, strict=strict
        )
        if used < limit:
            continue
        if name == "org_day":
            frees_at = since + timedelta(days=1)
            when = "today (UTC)"
        else:
            # The window frees up when enough of its oldest requests have aged out of it.
            oldest = await repository.nth_created_since(
                session, org_id, since, used - limit, requested_by=user, strict=strict
            )
            frees_at = (oldest or now) + timedelta(hours=1)
            when = "in the last hour"
        retry_after = max(1, math.ceil((frees_at - now).total_seconds()))
        raise CallLimitExceeded(
            f"{who} made {limit} call requests {when}; try again in {retry_after} s",
            retry_after=retry_after,
            limit=name,
        )


async def allowed_countries(
    session: AsyncSession, organization_id: uuid.UUID, settings: Settings
) -> list[str]:
    """Countries (ISO 3166-1 alpha-2) outbound calls may go to: the organisation's
    `allowed_call_countries`, else its business calendar's country, else
    `LEADFLOW_DEFAULT_PHONE_REGION`."""
    prefs = await org_settings(session, organization_id)
    if prefs.allowed_call_countries:
        return prefs.allowed_call_countries
    country = (prefs.calendar or {}).get("country")
    if isinstance(country, str) and country:
        return [country.upper()]
    return [settings.default_phone_region.upper()]


def country_of(number: str, region: str) -> str | None:
    """The country a phone number belongs to (None when it cannot be told)."""
    try:
        parsed = phonenumbers.parse(number, region.upper())
    except phonenumbers.NumberParseException:
        return None
    found = phonenumbers.region_code_for_number(parsed)
    return found if found and found != phonenumbers.UNKNOWN_REGION else None


# --------------------------------------------------------------------------- accept


async def _existing(session: AsyncSession, actor: Actor, row: CallRequest) -> CallRequest:
    """The earlier request with the same request_id, if the actor may see it; else 409."""
    if not await repository.in_scope(session, actor, row.id):
        # The id belongs to a request this caller may not see: say so without showing it.
        raise DuplicateRequestId("This request_id is already used in your organisation")
    return row


async def _resolve(
    session: AsyncSession, actor: Actor, settings: Settings, data: CallRequestIn
) -> tuple[str, str, uuid.UUID | None]:
    """Normalised callback number, number to call and linked lead; 422 naming bad fields."""
    errors: list[dict[str, Any]] = []
    region = settings.default_phone_region
    callback: str | None = None
    number: str | None = None
    try:
        # Only the caller's own number: a possible but unassigned-looking one (the seed's own
        # example) is kept and flagged, while the number we dial must be valid.
        callback, _ = normalize_possible_phone(data.callback_number, region)
    except ValueError as exc:
        errors.append({"loc": ["body", "callback_number"], "msg": str(exc)})
    if data.number_to_call:
        try:
            number = normalize_phone(data.number_to_call, region)
        except ValueError as exc:
            errors.append({"loc": ["body", "number_to_call"], "msg": str(exc)})
    if errors or callback is None:
        names = ", ".join(str(e["loc"][-1]) for e in errors) or "callback_number"
        raise ValidationFailed(f"Invalid phone number: {names}", errors=errors)
    lead_id: uuid.UUID | None = None
    if data.lead_id is not None:
        lead = await leads.get_lead(session, actor, data.lead_id)
        lead_id = lead.id
        number = number or lead.phone
    if number is None:
        raise ValidationFailed(
            "number_to_call is required unless lead_id names a lead with a phone number",
            errors=[
                {
                    "loc": ["body", "number_to_call"],
                    "msg": "required unless lead_id names a lead with a phone number",
                }
            ],
        )
    allowed = await allowed_countries(session, actor.organization_id, settings)
    country = country_of(number, region)
    if country not in allowed:
        msg = (
            f"calls to {country or 'this number'} are not allowed for this organisation "
            f"(allowed: {', '.join(allowed)})"
        )
        source = "number_to_call" if data.number_to_call else "number_to_call (the lead's phone)"
        raise CallCountryNotAllowed(
            f"{source}: {msg}", errors=[{"loc": ["body", "number_to_call"], "msg": msg}]
        )
    if lead_id is None:
        lead_id = await repository.lead_by_phone(session, actor.organization_id, [number, callback])
    return callback, number, lead_id


def warnings_of(row: CallRequest) -> list[CallWarning]:
    """What was accepted with a doubt: a callback number not known to be valid.

    Derived from the stored row, so a replayed request_id answers with the same warnings.
    """
    if is_valid_phone(row.callback_number):
        return []
    return [
        CallWarning(
            field="callback_number",
            code=PHONE_UNVERIFIED,
            message=(
                f"{row.callback_number} is a possible number but not known to be valid; "
                "it was accepted as given"
            ),
        )
    ]


async def submit(
    session: AsyncSession, actor: Actor, settings: Settings, data: CallRequestIn
) -> tuple[CallRequest, bool]:
    """Accept a request (True) or return the existing one with its request_id (False).

    A replayed request_id is answered before the limits are checked (it starts nothing);
    a new one counts against them (429) and may only call an allowed country (422).
    Inside business hours the call is queued to start at once; outside them the request
    becomes `outside_business_hours` and the call is queued for the next opening.
    """
    existing = await repository.by_request_id(session, actor.organization_id, data.request_id)
    if existing is not None:
        return await _existing(session, actor, existing), False
    await check_limits(session, actor, settings)
    callback, number, lead_id = await _resolve(session, actor, settings, data)
    now = utcnow()
    row = CallRequest(
        organization_id=actor.organization_id,
        request_id=data.request_id,
        external_user_id=data.user_id,
        requested_by=actor.user_id,
        lead_id=lead_id,
        title=data.title,
        description=data.description,
        callback_number=callback,
        number_to_call=number,
        preferred_time=data.preferred_time,
        user_profile=data.user_profile,
        status=CallStatus.QUEUED.value,
        attempts=0,
        scheduled_for=now,
        event_count=1,
    )
    try:
        # A concurrent twin with the same request_id loses on the unique key, not with a 500.
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        existing = await repository.by_request_id(session, actor.organization_id, data.request_id)
        if existing is None:
            raise
        return await _existing(session, actor, existing), False
    session.add(
        CallRequestEvent(
            organization_id=row.organization_id,
            call_request_id=row.id,
            seq=1,
            type=EventType.REQUEST_RECEIVED.value,
            status=CallStatus.QUEUED.value,
            message=f"Request received: {row.title}",
            data=_warnings_data(row),
            created_at=now,
        )
    )
    await session.flush()
    await publish(
        session, CallRequestUpdated(organization_id=row.organization_id, call_request=row, now=now)
    )
    calendar = await calendar_of(session, row.organization_id)
    result: CallRequest | None = row
    if calendar.is_open(now):
        enqueue_job(session, "calls.process", str(row.id))
    else:
        at = calendar.next_open(now)
        result = await _schedule(
            session,
            row,
            to=CallStatus.OUTSIDE_BUSINESS_HOURS,
            at=at,
            message=f"Scheduled for {local_label(calendar, at)}",
            attempt=0,
        )
    assert result is not None  # nobody else can see the row before we commit
    await record_create(session, actor, result, "call_request.create", "call_request")
    return result, True


def _warnings_data(row: CallRequest) -> dict[str, Any] | None:
    """The request_received event's record of the warnings (None when there are none)."""
    found = warnings_of(row)
    return {"warnings": [w.model_dump() for w in found]} if found else None


# --------------------------------------------------------------------------- read


async def get_request(session: AsyncSession, actor: Actor, ident: str) -> CallRequest:
    """A request in scope by our id or the client's request_id, or 404."""
    row = await repository.get(session, actor, ident)
    if row is None:
        raise NotFound("Call request not found")
    return row


async def list_requests(
    session: AsyncSession, actor: Actor, f: CallFilter, page: PageParams
) -> tuple[list[CallRequest], int]:
    """Requests in the actor's scope, newest first."""
    return await repository.list_requests(session, actor, f, page)


async def list_events(
    session: AsyncSession, actor: Actor, ident: str, page: PageParams
) -> tuple[CallRequest, list[CallRequestEvent], int]:
    """The request and a page of its events, oldest first."""
    row = await get_request(session, actor, ident)
    rows, total = await repository.events(session, row.id, page)
    return row, rows, total


# --------------------------------------------------------------------------- cancel


async def cancel(session: AsyncSession, actor: Actor, ident: str) -> CallRequest:
    """Cancel a request that is not final; canceling a canceled one changes nothing.

    A running call is hung up by the worker (`calls.hangup`); a job in the middle of a
    simulated call notices the cancel at its next step.
    """
    row = await get_request(session, actor, ident)
    before = CallStatus(row.status)
    if before is CallStatus.CANCELED:
        return row
    check_transition(before, CallStatus.CANCELED)
    now = utcnow()
    moved = await _advance(
        session,
        row.id,
        expect=NOT_FINAL,
        to=CallStatus.CANCELED,
        events=[(EventType.CANCELED, "Request canceled", {"by": str(actor.user_id)})],
        scheduled_for=None,
        call_deadline_at=None,
        finished_at=now,
    )
    if moved is None:  # settled meanwhile (booked or failed a moment ago)
        fresh = await session.get(CallRequest, row.id, populate_existing=True)
        assert fresh is not None
        if fresh.status == CallStatus.CANCELED:
            return fresh
        check_transition(CallStatus(fresh.status), CallStatus.CANCELED)
        raise AssertionError("unreachable: a non-final request can always be canceled")
    if before in ON_CALL and row.provider == "twilio" and row.provider_call_id:
        enqueue_job(session, "calls.hangup", row.provider, row.provider_call_id, str(row.id))
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="call_request.cancel",
        resource_type="call_request",
        resource_id=row.id,
        before={"status": before.value},
        after={"status": CallStatus.CANCELED.value},
    )
    return moved


# --------------------------------------------------------------------------- attempts


def outbound_call(settings: Settings, row: CallRequest) -> OutboundCall:
    """What the provider needs for the request's current attempt."""
    profile = row.user_profile or {}
    name = profile.get("username") or profile.get("name")
    return OutboundCall(
        call_request_id=row.id,
        attempt=row.attempts,
        to=row.number_to_call,
        callback_number=row.callback_number,
        title=row.title,
        description=row.description,
        preferred_time=row.preferred_time,
        caller_name=str(name) if name else None,
        status_callback_url=(
            f"{settings.public_url.rstrip('/')}/api/v1/call-requests/{row.id}/provider-events"
        ),
    )


async def start_attempt(
    session: AsyncSession, settings: Settings, call_id: uuid.UUID, provider: str
) -> tuple[str, CallRequest | None]:
    """Begin the next attempt if one is due: `started`, `scheduled`, `not_due`, `skipped`
    (someone else got there first) or `missing`.

    Outside business hours nothing is called: the attempt moves to the next opening.
    """
    now = utcnow()
    row = await session.get(CallRequest, call_id, populate_existing=True)
    if row is None:
        return "missing", None
    status = CallStatus(row.status)
    if status not in WAITING or row.scheduled_for is None or row.scheduled_for > now:
        return "not_due", row
    calendar = await calendar_of(session, row.organization_id)
    if not calendar.is_open(now):
        at = calendar.next_open(now)
        to = CallStatus.OUTSIDE_BUSINESS_HOURS if status is CallStatus.QUEUED else status
        moved = await _schedule(
            session,
            row,
            to=to,
            at=at,
            message=f"Scheduled for {local_label(calendar, at)}",
            attempt=row.attempts,
        )
        return ("scheduled" if moved else "skipped"), moved
    attempt = row.attempts + 1
    moved = await _advance(
        session,
        row.id,
        expect={status},
        to=CallStatus.CALLING,
        attempt=row.attempts,
        events=[
            (
                EventType.CALL_STARTED,
                f"Voice AI started calling {row.number_to_call} "
                f"(attempt {attempt}/{settings.call_max_attempts})",
                {"attempt": attempt, "provider": provider},
            )
        ],
        attempts=attempt,
        scheduled_for=None,
        call_deadline_at=now + CALL_TIMEOUT,
        provider=provider,
        provider_call_id=None,
    )
    return ("started" if moved else "skipped"), moved


async def _attempt_failed(
    session: AsyncSession,
    settings: Settings,
    call_id: uuid.UUID,
    attempt: int,
    kind: UpdateKind,
    message: str,
) -> CallRequest | None:
    """A failed attempt: retry `call_retry_minutes` later within business hours while
    attempts are left, then `waiting_for_callback` (no answer) or `failed` (provider)."""
    row = await session.get(CallRequest, call_id, populate_existing=True)
    if row is None or row.attempts != attempt or CallStatus(row.status) not in ON_CALL:
        return None
    limit = settings.call_max_attempts
    failed: Event = (
        EventType.CALL_FAILED,
        f"{message} (attempt {attempt}/{limit})",
        {"attempt": attempt, "reason": kind.value},
    )
    common: dict[str, Any] = {"call_deadline_at": None, "last_error": message[:500]}
    if attempt < limit:
        calendar = await calendar_of(session, row.organization_id)
        at = calendar.next_open(utcnow() + timedelta(minutes=settings.call_retry_minutes))
        return await _schedule(
            session,
            row,
            to=CallStatus.WAITING_FOR_CALLBACK,
            at=at,
            message=f"Retry {attempt + 1}/{limit} scheduled for {local_label(calendar, at)}",
            attempt=attempt,
            events=[failed],
            expect=set(ON_CALL),
            **common,
        )
    if kind is UpdateKind.NO_ANSWER:
        waiting: Event = (
            EventType.CALL_FAILED,
            f"{message} (attempt {attempt}/{limit}); no attempts left, waiting for a "
            f"callback on {row.callback_number}",
            {"attempt": attempt, "reason": kind.value},
        )
        return await _advance(
            session,
            call_id,
            expect=ON_CALL,
            to=CallStatus.WAITING_FOR_CALLBACK,
            attempt=attempt,
            events=[waiting],
            scheduled_for=None,
            **common,
        )
    return await _advance(
        session,
        call_id,
        expect=ON_CALL,
        to=CallStatus.FAILED,
        attempt=attempt,
        events=[failed],
        finished_at=utcnow(),
        **common,
    )


async def apply_update(
    session: AsyncSession,
    settings: Settings,
    call_id: uuid.UUID,
    attempt: int,
    upd: CallUpdate,
) -> bool:
    """Apply one provider update to attempt `attempt`; False when it no longer applies
    (canceled, settled, or a newer attempt runs), in which case nothing changed."""
    moved: CallRequest | None
    k = upd.kind
    if k is UpdateKind.PLACED:
        moved = await _advance(
            session,
            call_id,
            expect={CallStatus.CALLING},
            to=CallStatus.CALLING,
            attempt=attempt,
            events=[],
            provider_call_id=upd.provider_call_id,
        )
    elif k is UpdateKind.CONNECTED:
        moved = await _advance(
            session,
            call_id,
            expect={CallStatus.CALLING},
            to=CallStatus.IN_PROGRESS,
            attempt=attempt,
            events=[(EventType.CALL_CONNECTED, upd.message or "Call connected", None)],
        )
        if moved is None:
            # Providers repeat themselves (Twilio's `completed` implies `answered`).
            current = await session.get(CallRequest, call_id, populate_existing=True)
            return (
                current is not None
                and current.attempts == attempt
                and current.status == CallStatus.IN_PROGRESS
            )
    elif k is UpdateKind.BOOKING:
        moved = await _advance(
            session,
            call_id,
            expect={CallStatus.IN_PROGRESS},
            to=CallStatus.IN_PROGRESS,
            attempt=attempt,
            events=[(EventType.BOOKING_IN_PROGRESS, upd.message or "Booking in progress", None)],
        )
    elif k is UpdateKind.BOOKED:
        summary = upd.summary or upd.message or "Appointment booked"
        moved = await _advance(
            session,
            call_id,
            expect={CallStatus.IN_PROGRESS},
            to=CallStatus.BOOKED,
            attempt=attempt,
            events=[
                (EventType.BOOKING_CONFIRMED, upd.message or "Appointment booked", None),
                (EventType.CALL_COMPLETED, f"Call completed: {summary}", {"summary": summary}),
            ],
            summary=summary,
            call_deadline_at=None,
            finished_at=utcnow(),
        )
    elif k is UpdateKind.NOT_BOOKED:
        moved = await _advance(
            session,
            call_id,
            expect={CallStatus.IN_PROGRESS},
            to=CallStatus.WAITING_FOR_CALLBACK,
            attempt=attempt,
            events=[(EventType.CALL_COMPLETED, upd.message or "Call completed", None)],
            call_deadline_at=None,
            scheduled_for=None,
        )
    else:
        moved = await _attempt_failed(
            session, settings, call_id, attempt, k, upd.message or "Call failed"
        )
    return moved is not None


async def time_out(
    session: AsyncSession, settings: Settings, call_id: uuid.UUID, attempt: int
) -> bool:
    """Count a call that never reported back as a failed attempt."""
    minutes = int(CALL_TIMEOUT.total_seconds() // 60)
    return (
        await _attempt_failed(
            session,
            settings,
            call_id,
            attempt,
            UpdateKind.FAILED,
            f"No final status from the provider within {minutes} minutes",
        )
        is not None
    )


# --------------------------------------------------------------------------- provider callbacks


async def provider_event(
    session: AsyncSession,
    settings: Settings,
    call_id: uuid.UUID,
    *,
    url: str,
    params: Sequence[tuple[str, str]],
    signature: str | None,
) -> ProviderEventOut:
    """Apply a Twilio status callback; the signature is the only authentication (403).

    Callbacks of an earlier attempt (another CallSid) change nothing.
    """
    row = await session.get(CallRequest, call_id)
    # Signed with the organisation's own Twilio token when it connected one (a call placed
    # before it connected was placed, and is signed, with the server's); checked before
    # anything else is told (an unknown id with a bad signature is a 403 too).
    tokens = {settings.twilio_auth_token}
    if row is not None:
        tokens.add(await auth_token_for(session, settings, row.organization_id))
    if not any(twilio.valid_signature(t, url, params, signature) for t in tokens if t):
        raise InvalidSignature("Missing or invalid X-Twilio-Signature")
    if row is None:
        raise NotFound("Call request not found")
    form = dict(params)
    call_sid = form.get("CallSid")
    if (
        row.provider_call_id is None
        and row.provider == "twilio"
        and row.status == CallStatus.CALLING
        and call_sid
    ):
        # The callback can overtake the job recording the sid; the signed URL names this
        # request, so the call is ours.
        await apply_update(
            session,
            settings,
            row.id,
            row.attempts,
            CallUpdate(UpdateKind.PLACED, provider_call_id=call_sid),
        )
        await session.refresh(row)
    applied: list[str] = []
    if row.provider == "twilio" and call_sid and call_sid == row.provider_call_id:
        attempt = row.attempts
        for upd in twilio.updates_from_callback(form):
            if await apply_update(session, settings, row.id, attempt, upd):
                applied.append(upd.kind.value)
    await session.refresh(row)
    return ProviderEventOut(applied=applied, status=CallStatus(row.status))
