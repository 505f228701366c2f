"""Webhook endpoints (create, list, change, delete, rotate the secret), their deliveries
(list, replay, test), and `record`: the set-based write of the deliveries an event owes.
"""

from __future__ import annotations

import json
import uuid
import zlib
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import orjson
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils import uuid7 as new_uuid7
from uuid_utils.compat import uuid7

from leadflow.audit.service import record as audit
from leadflow.authz.actor import Actor
from leadflow.authz.permissions import RowScope
from leadflow.config import Settings
from leadflow.exceptions import NotFound
from leadflow.kit import crypto
from leadflow.kit.clock import utcnow
from leadflow.kit.outbound import TargetRefused, check_target
from leadflow.kit.pagination import PageParams
from leadflow.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from leadflow.webhooks import delivery, repository, signing
from leadflow.webhooks.catalogue import EVENTS, TEST_EVENT
from leadflow.webhooks.delivery import Outgoing
from leadflow.webhooks.errors import (
    WebhookDeliveryPending,
    WebhookEndpointDisabled,
    WebhookLimitReached,
    WebhookScopeTooNarrow,
    WebhookSecretUnreadable,
    WebhookTargetRefused,
)
from leadflow.webhooks.schemas import (
    AttemptRead,
    DeliveryRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
    EndpointUpdate,
    RotateIn,
    SecretRotated,
    TestResult,
)
from leadflow.worker.jobs import enqueue_job_once

DISPATCH = "webhooks.dispatch"
# After a rotation the previous secret signs too (a second signature) for this long.
ROTATION_OVERLAP = timedelta(hours=24)

# --------------------------------------------------------------------------- recording


def _json_default(value: Any) -> Any:
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def to_json(data: Any) -> str:
    """Compact JSON of event data (ids and times as strings). orjson: an import writes one
    body per lead inside its transaction, and the standard library took 5 to 7 times as long
    (docs/performance.md, webhooks)."""
    return orjson.dumps(data, default=_json_default).decode()


Item = tuple[uuid.UUID | None, Any]  # (ordering key, data)


# From this many deliveries on, an event set is written as one batch row per endpoint (see
# `WebhookBatch`): a row per lead with its four index entries cost an import 15-45% of its
# time, the batch row under 5% (docs/performance.md).
BATCH_MIN = 100


async def record(
    session: AsyncSession,
    organization_id: uuid.UUID,
    event_type: str,
    occurred_at: datetime,
    items: Callable[[], Iterable[Item]],
) -> int:
    """Owe `event_type` to every active endpoint of the organisation subscribed to it: one
    delivery per item and endpoint, in the caller's transaction, handed to the worker after
    commit. A few are inserted with one statement; a large set (an import chunk) becomes one
    batch row per endpoint that the worker expands (ids assigned here, so the order per lead
    holds). `items` is called only when an endpoint is subscribed, so an organisation without
    webhooks pays one indexed query. Returns the number of deliveries owed."""
    targets = [
        endpoint_id
        for endpoint_id, events in await repository.active_subscriptions(session, organization_id)
        if event_type in events
    ]
    if not targets:
        return 0
    owed = [(key, to_json(data)) for key, data in items()]
    total = len(owed) * len(targets)
    if not total:
        return 0
    now = utcnow()
    # Ids in event order, every endpoint of one item after the other; one message id per item
    # (its first delivery's id, shared by every endpoint).
    # As text: a batch stores them so, and making `uuid.UUID`s costs more than the rest.
    ids = [[str(new_uuid7()) for _ in targets] for _ in owed]
    if total >= BATCH_MIN:
        await repository.insert_batches(
            session,
            [
                {
                    "id": uuid.UUID(ids[0][n]),
                    "endpoint_id": endpoint_id,
                    "event_type": event_type,
                    "occurred_at": occurred_at,
                    "created_at": now,
                    "size": len(owed),
                    "items": zlib.compress(
                        orjson.dumps(
                            [
                                [row_ids[n], row_ids[0], key, body]
                                for (key, body), row_ids in zip(owed, ids, strict=True)
                            ],
                            default=_json_default,
                        ),
                        1,
                    ),
                }
                for n, endpoint_id in enumerate(targets)
            ],
        )
    else:
        await repository.insert_deliveries(
            session,
            [
                repository.delivery_row(uuid.UUID(row_ids[n]), endpoint_id,
                                        uuid.UUID(row_ids[0]), event_type, key, body,
                                        occurred_at, now)
                for (key, body), row_ids in zip(owed, ids, strict=True)
                for n, endpoint_id in enumerate(targets)
            ],
        )  # fmt: skip
    enqueue_job_once(session, DISPATCH)
    return total


# --------------------------------------------------------------------------- endpoints


def _read(row: WebhookEndpoint) -> EndpointRead:
    return EndpointRead(
        id=row.id,
        endpoint_url=row.url,
        description=row.description,
        events=list(row.events),
        status=row.status,
        disabled_reason=row.disabled_reason,
        disabled_at=row.disabled_at,
        failing_since=row.failing_since,
        consecutive_failures=row.consecutive_failures,
        last_success_at=row.last_success_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _audit_view(row: WebhookEndpoint) -> dict[str, Any]:
    return {
        "endpoint_url": row.url,
        "events": list(row.events),
        "description": row.description,
        "status": row.status,
    }


def _may_subscribe(actor: Actor, events: Sequence[str]) -> None:
    """An endpoint receives every such event of the organisation: subscribing needs the
    permission that reads it and a role that sees the whole organisation."""
    if actor.row_scope != RowScope.ORG:
        raise WebhookScopeTooNarrow(
            "Webhooks receive the events of the whole organisation; your role sees only "
            f"{actor.row_scope.value} rows"
        )
    for event in events:
        actor.require(EVENTS[event])


async def _check_url(settings: Settings, url: str) -> None:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        await check_target(
            parts.hostname or "", port, allow_private=settings.webhooks_allow_private
        )
    except TargetRefused as exc:
        raise WebhookTargetRefused(str(exc), field="endpoint_url") from None


async def _endpoint(
    session: AsyncSession, actor: Actor, endpoint_id: uuid.UUID, *, for_update: bool = False
) -> WebhookEndpoint:
    row = await repository.get_endpoint(
        session, actor.organization_id, endpoint_id, for_update=for_update
    )
    if row is None:
        raise NotFound("Webhook endpoint not found")
    return row


async def create_endpoint(
    session: AsyncSession, settings: Settings, actor: Actor, data: EndpointCreate
) -> EndpointCreated:
    """Subscribe a URL (checked against private addresses) to events; the secret is shown in
    this answer only."""
    _may_subscribe(actor, data.events)
    if await repository.count_endpoints(session, actor.organization_id) >= (
        settings.webhooks_max_endpoints
    ):
        raise WebhookLimitReached(
            f"An organisation may have {settings.webhooks_max_endpoints} webhook endpoints"
        )
    await _check_url(settings, data.endpoint_url)
    secret = data.secret or signing.new_secret()
    row = WebhookEndpoint(
        organization_id=actor.organization_id,
        url=data.endpoint_url,
        description=data.description,
        events=list(data.events),
        secret=crypto.encrypt(settings, secret),
        status="active",
        consecutive_failures=0,
        created_by=actor.user_id,
    )
    session.add(row)
    await session.flush()
    await audit(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="webhook.create",
        resource_type="webhook",
        resource_id=row.id,
        after=_audit_view(row),
    )
    return EndpointCreated(**_read(row).model_dump(), secret=secret)


async def list_endpoints(
    session: AsyncSession, actor: Actor, page: PageParams
) -> tuple[list[EndpointRead], int]:
    """The organisation's endpoints."""
    rows, total = await repository.list_endpoints(session, actor.organization_id, page)
    return [_read(r) for r in rows], total


async def get_endpoint(session: AsyncSession, actor: Actor, endpoint_id: uuid.UUID) -> EndpointRead:
    """One endpoint of the organisation."""
    return _read(await _endpoint(session, actor, endpoint_id))


async def update_endpoint(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    endpoint_id: uuid.UUID,
    data: EndpointUpdate,
) -> EndpointRead:
    """Change events, URL, description or status. Enabling starts the health count afresh
    and lets the queued deliveries go out."""
    row = await _endpoint(session, actor, endpoint_id, for_update=True)
    fields = data.model_dump(exclude_unset=True)
    before = _audit_view(row)
    if "events" in fields:
        _may_subscribe(actor, fields["events"])
        row.events = list(fields["events"])
    if "endpoint_url" in fields and fields["endpoint_url"] != row.url:
        await _check_url(settings, fields["endpoint_url"])
        row.url = fields["endpoint_url"]
    if "description" in fields:
        row.description = fields["description"]
    status = fields.get("status")
    if status == "active" and row.status != "active":
        _may_subscribe(actor, row.events)
        row.status = "active"
        row.disabled_reason = row.disabled_at = row.failing_since = None
        row.consecutive_failures = 0
        enqueue_job_once(session, DISPATCH)
    elif status == "disabled" and row.status != "disabled":
        row.status = "disabled"
        row.disabled_at = utcnow()
        row.disabled_reason = f"disabled by {actor.label}"
    await session.flush()
    after = _audit_view(row)
    if after != before:
        await audit(
            session,
            actor=actor,
            organization_id=actor.organization_id,
            action="webhook.update",
            resource_type="webhook",
            resource_id=row.id,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
    return _read(row)


async def delete_endpoint(session: AsyncSession, actor: Actor, endpoint_id: uuid.UUID) -> None:
    """Delete an endpoint with its deliveries and their log."""
    row = await _endpoint(session, actor, endpoint_id, for_update=True)
    await audit(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="webhook.delete",
        resource_type="webhook",
        resource_id=row.id,
        before=_audit_view(row),
    )
    await repository.delete_deliveries(session, row.id)
    await session.delete(row)
    await session.flush()


async def rotate_secret(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    endpoint_id: uuid.UUID,
    data: RotateIn,
) -> SecretRotated:
    """A new signing secret; the previous one signs too for 24 hours."""
    row = await _endpoint(session, actor, endpoint_id, for_update=True)
    secret = data.secret or signing.new_secret()
    now = utcnow()
    try:
        crypto.decrypt(settings, row.secret)
        row.previous_secret = row.secret
        row.previous_secret_expires_at = now + ROTATION_OVERLAP
    except crypto.SecretUnreadable:
        # Under a key this server no longer has, it signs nothing: no overlap (keeping it
        # would leave the endpoint unsigned for the overlap's 24 hours).
        row.previous_secret = row.previous_secret_expires_at = None
    row.secret = crypto.encrypt(settings, secret)
    await session.flush()
    await audit(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="webhook.rotate_secret",
        resource_type="webhook",
        resource_id=row.id,
        after={"previous_secret_expires_at": row.previous_secret_expires_at},
    )
    return SecretRotated(
        id=row.id, secret=secret, previous_secret_expires_at=row.previous_secret_expires_at
    )


# --------------------------------------------------------------------------- deliveries


def delivery_read(row: WebhookDelivery, attempts: Sequence[WebhookAttempt]) -> DeliveryRead:
    """A delivery as the API shows it."""
    return DeliveryRead(
        id=row.id,
        endpoint_id=row.endpoint_id,
        webhook_id=signing.message_id(row.message_id),
        event_type=row.event_type,
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at if row.status in ("pending", "retry") else None,
        last_status_code=row.last_status_code,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
        data=json.loads(row.body),
        attempt_log=[AttemptRead.model_validate(a) for a in attempts],
    )


async def list_deliveries(
    session: AsyncSession,
    actor: Actor,
    endpoint_id: uuid.UUID,
    page: PageParams,
    status: str | None,
) -> tuple[list[DeliveryRead], int]:
    """An endpoint's deliveries, newest first, each with its attempts."""
    await _endpoint(session, actor, endpoint_id)
    rows, total = await repository.deliveries_page(session, endpoint_id, page, status)
    attempts = await repository.attempts_for(session, [r.id for r in rows])
    return [delivery_read(r, attempts[r.id]) for r in rows], total


async def replay(session: AsyncSession, actor: Actor, delivery_id: uuid.UUID) -> DeliveryRead:
    """Queue a delivered or failed delivery again (same `webhook-id`, a fresh set of
    attempts); the worker sends it after commit."""
    found = await repository.get_delivery(session, actor.organization_id, delivery_id)
    if found is None:
        raise NotFound("Webhook delivery not found")
    row, endpoint = found
    if row.status in ("pending", "retry"):
        raise WebhookDeliveryPending("The delivery is still queued; it goes out by itself")
    if endpoint.status != "active":
        raise WebhookEndpointDisabled("The endpoint is disabled; enable it first")
    before = row.status
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = utcnow()
    row.locked_until = None
    await session.flush()
    await audit(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="webhook.replay",
        resource_type="webhook_delivery",
        resource_id=row.id,
        before={"status": before},
        after={"status": "pending"},
    )
    enqueue_job_once(session, DISPATCH)
    attempts = await repository.attempts_for(session, [row.id])
    return delivery_read(row, attempts[row.id])


# --------------------------------------------------------------------------- test event


async def prepare_test(
    session: AsyncSession, settings: Settings, actor: Actor, endpoint_id: uuid.UUID
) -> Outgoing:
    """Write a `webhook.test` delivery, already claimed for this request (one attempt, no
    retries, not counted in the endpoint's health); the caller sends it after commit."""
    endpoint = await _endpoint(session, actor, endpoint_id)
    now = utcnow()
    try:
        delivery.signing_secrets(settings, endpoint, now)
    except crypto.SecretUnreadable as exc:
        raise WebhookSecretUnreadable(
            "The endpoint's signing secret cannot be decrypted; rotate its secret or set "
            "LEADFLOW_PREVIOUS_SECRET_KEYS"
        ) from exc
    row = WebhookDelivery(
        id=uuid7(),
        endpoint_id=endpoint.id,
        message_id=uuid7(),
        event_type=TEST_EVENT,
        ordering_key=None,
        body=to_json(
            {
                "endpoint_id": endpoint.id,
                "message": "Test event from Leadflow",
                "requested_by": actor.label,
            }
        ),
        occurred_at=now,
        status="pending",
        attempts=1,
        next_attempt_at=now,
        locked_until=now + timedelta(seconds=settings.webhooks_lock_seconds),
        created_at=now,
    )
    session.add(row)
    await session.flush()
    await audit(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="webhook.test",
        resource_type="webhook",
        resource_id=endpoint.id,
        after={"delivery_id": row.id},
    )
    sent = delivery.outgoing(settings, row, endpoint, now, retry=False)
    await repository.insert_attempts(
        session, [delivery.open_attempt(sent.attempt_id, row.id, now, delivery.TEST_INTERRUPTED)]
    )
    return sent


async def finish_test(
    session: AsyncSession, settings: Settings, outcome: delivery.Outcome
) -> TestResult:
    """Record the test's attempt and answer with the delivery."""
    await delivery.finish(session, settings, [outcome])
    row = await session.get(WebhookDelivery, outcome.outgoing.delivery_id, populate_existing=True)
    if row is None:
        raise NotFound("Webhook endpoint not found")  # deleted while the test ran
    attempts = await repository.attempts_for(session, [row.id])
    return TestResult(success=outcome.success, delivery=delivery_read(row, attempts[row.id]))
