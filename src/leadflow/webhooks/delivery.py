"""Delivering webhooks: claim due deliveries, send them (no database connection held while the
endpoints answer), record every attempt, retry with exponential backoff, disable an endpoint
that keeps failing and tell the organisation's admins.

`webhooks.dispatch` runs after every commit that owes deliveries and periodically (every
`LEADFLOW_WEBHOOKS_RELAY_SECONDS`, for retries and anything a crash left behind). Any number
of workers may run it at once: a claim is a conditional UPDATE, and a claim that a crashed
worker left expires after `LEADFLOW_WEBHOOKS_LOCK_SECONDS`.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from leadflow import __version__
from leadflow.audit.service import record as audit
from leadflow.config import Settings
from leadflow.kit import crypto
from leadflow.kit.clock import utcnow
from leadflow.kit.outbound import TargetRefused, guarded_client
from leadflow.models.webhook import WebhookEndpoint
from leadflow.notifications import service as notifications
from leadflow.users import repository as members
from leadflow.webhooks import repository, signing
from leadflow.worker.jobs import JobContext, job

log = logging.getLogger("leadflow.webhooks")

EXCERPT_CHARS = 500
_READ_BYTES = 2048
# Rounds of one dispatch run; what is left waits for the next run (seconds away).
MAX_ROUNDS = 50
USER_AGENT = f"Leadflow-Webhooks/{__version__}"


@dataclass(frozen=True)
class Outgoing:
    """A claimed delivery, ready to send without the database."""

    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    organization_id: uuid.UUID
    url: str
    secrets: tuple[str, ...]
    message_id: uuid.UUID
    event_type: str
    occurred_at: datetime
    body: str
    attempt: int
    # The attempt's row, written with the claim (`finish` fills in the outcome).
    attempt_id: uuid.UUID
    retry: bool = True  # False for the test event: one attempt, no health count


@dataclass(frozen=True)
class Outcome:
    """What one attempt found."""

    outgoing: Outgoing
    at: datetime
    status_code: int | None
    latency_ms: int
    excerpt: str | None
    error: str | None

    @property
    def success(self) -> bool:
        """A 2xx answer."""
        return self.status_code is not None and 200 <= self.status_code < 300


def backoff(settings: Settings, attempt: int) -> timedelta:
    """Wait after failed attempt number `attempt` (1-based): base·2^(attempt-1), capped."""
    seconds = settings.webhooks_backoff_seconds * (2 ** min(attempt - 1, 30))
    return timedelta(seconds=min(seconds, settings.webhooks_backoff_max_seconds))


def signing_secrets(
    settings: Settings, endpoint: WebhookEndpoint, now: datetime
) -> tuple[str, ...]:
    """The endpoint's secret, plus the previous one while its overlap lasts."""
    found = [crypto.decrypt(settings, endpoint.secret)]
    if (
        endpoint.previous_secret
        and endpoint.previous_secret_expires_at
        and endpoint.previous_secret_expires_at > now
    ):
        found.append(crypto.decrypt(settings, endpoint.previous_secret))
    return tuple(found)


def outgoing(
    settings: Settings,
    row: Any,
    endpoint: WebhookEndpoint,
    now: datetime,
    *,
    retry: bool = True,
) -> Outgoing:
    """A claimed row (or delivery) with its endpoint, as sent, under a new attempt id."""
    return Outgoing(
        delivery_id=row.id,
        endpoint_id=endpoint.id,
        organization_id=endpoint.organization_id,
        url=endpoint.url,
        secrets=signing_secrets(settings, endpoint, now),
        message_id=row.message_id,
        event_type=row.event_type,
        occurred_at=row.occurred_at,
        body=row.body,
        attempt=row.attempts,
        attempt_id=uuid7(),
        retry=retry,
    )


async def send(client: httpx.AsyncClient, out: Outgoing) -> Outcome:
    """POST one signed delivery; never raises."""
    at = utcnow()
    body = signing.envelope(out.event_type, out.occurred_at, out.body)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        **signing.headers(out.secrets, signing.message_id(out.message_id), at, body),
    }
    start = time.perf_counter()
    status: int | None = None
    excerpt: str | None = None
    error: str | None = None
    try:
        async with client.stream("POST", out.url, content=body.encode(), headers=headers) as r:
            status = r.status_code
            raw = b""
            async for chunk in r.aiter_raw():
                raw += chunk
                if len(raw) >= _READ_BYTES:
                    break  # an excerpt is enough; the rest is not read
            excerpt = raw.decode("utf-8", "replace")[:EXCERPT_CHARS] or None
    except TargetRefused as exc:
        error = f"target refused: {exc}"
    except httpx.TimeoutException:
        error = "timed out"
    except (httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    latency = max(0, round((time.perf_counter() - start) * 1000))
    if error is None and status is not None and not 200 <= status < 300:
        error = f"HTTP {status}"
    return Outcome(out, at, status, latency, excerpt, error[:500] if error else None)


async def expand_batches(ctx: JobContext, limit: int = 20) -> int:
    """Turn waiting batches into deliveries, oldest first, one transaction each (they keep the
    ids assigned when written); how many deliveries were made."""
    made = 0
    async with ctx.session_factory() as session:
        waiting = await repository.next_batches(session, limit)
        await session.commit()
    for batch_id in waiting:
        async with ctx.session_factory() as session:
            row = await repository.take_batch(session, batch_id)
            if row is not None:  # else another worker expanded it
                endpoint_id, event_type, occurred_at, created_at, items = row
                parsed = orjson.loads(zlib.decompress(items))
                await repository.insert_deliveries(
                    session,
                    [
                        repository.delivery_row(
                            uuid.UUID(row_id),
                            endpoint_id,
                            uuid.UUID(message_id),
                            event_type,
                            uuid.UUID(key) if key else None,
                            body,
                            occurred_at,
                            created_at,
                        )
                        for row_id, message_id, key, body in parsed
                    ],
                )
                made += len(parsed)
            await session.commit()
    return made


# A test event's delivery once its sender (the request, or the worker for a replay) stopped
# before recording the answer and its claim ran out.
ABANDONED_TEST = (
    "test event: its sender stopped before recording the answer; a test is not sent again by itself"
)
# What an attempt's row says until the attempt's outcome is recorded: a worker that stops
# (killed, out of memory) between the claim and the outcome leaves it so.
INTERRUPTED = (
    "no outcome recorded: in flight, or cut off by a worker that stopped (then sent again)"
)
# The same for the attempt of a test event sent by its request.
TEST_INTERRUPTED = (
    "no outcome recorded: in flight, or cut off with the request that sent it (a test is not "
    "sent again)"
)


SECRET_UNREADABLE = "not sent: the endpoint's signing secret cannot be read"


def open_attempt(
    attempt_id: uuid.UUID, delivery_id: uuid.UUID, at: datetime, error: str
) -> dict[str, Any]:
    """An attempt's row as written with its claim, before any outcome."""
    return {
        "id": attempt_id,
        "delivery_id": delivery_id,
        "attempted_at": at,
        "success": False,
        "status_code": None,
        "latency_ms": 0,
        "response_excerpt": None,
        "error": error,
    }


async def claim_due(ctx: JobContext, limit: int) -> list[Outgoing]:
    """Claim up to `limit` deliveries that may go now, in one short transaction that also
    writes each claimed attempt's row (so an attempt a crash cuts off is in the log)."""
    settings = ctx.settings
    now = utcnow()
    async with ctx.session_factory() as session:
        ids = await repository.due_ids(session, now, limit)
        won = await repository.claim(
            session, ids, now, now + timedelta(seconds=settings.webhooks_lock_seconds)
        )
        endpoints = await repository.endpoints_by_id(session, [r.endpoint_id for r in won])
        out: list[Outgoing] = []
        attempts: list[dict[str, Any]] = []
        for row in won:
            endpoint = endpoints.get(row.endpoint_id)
            if endpoint is None:
                continue  # deleted meanwhile: its deliveries went with it
            try:
                sent = outgoing(settings, row, endpoint, now)
            except crypto.SecretUnreadable:
                # Counted as an attempt (the claim did) and logged as one not sent; the
                # claim expires and the delivery is tried again.
                log.error("webhook secret unreadable", extra={"endpoint_id": str(endpoint.id)})
                attempts.append(open_attempt(uuid7(), row.id, now, SECRET_UNREADABLE))
                continue
            out.append(sent)
            attempts.append(open_attempt(sent.attempt_id, row.id, now, INTERRUPTED))
        await repository.insert_attempts(session, attempts)
        await session.commit()
    return out


async def finish(session: AsyncSession, settings: Settings, outcomes: list[Outcome]) -> None:
    """Record the attempts' outcomes and move each delivery on (delivered, retry later,
    failed) — one executemany each — then count the endpoints' health and disable one that
    failed for too long."""
    if not outcomes:
        return
    changes: list[dict[str, Any]] = []
    for o in outcomes:
        out = o.outgoing
        status, next_at = "retry", o.at + backoff(settings, out.attempt)
        if o.success:
            status = "delivered"
        elif not out.retry or out.attempt >= settings.webhooks_max_attempts:
            status = "failed"
        changes.append(
            {
                "id": out.delivery_id,
                "status": status,
                "next_attempt_at": next_at if status == "retry" else o.at,
                "delivered_at": o.at if o.success else None,
                "last_status_code": o.status_code,
                "last_error": o.error,
                "locked_until": None,
            }
        )
    await repository.settle_deliveries(session, changes)
    # Each attempt's row was written with its claim; a delivery deleted since (with its
    # endpoint) took it along, and the update finds nothing.
    await repository.complete_attempts(
        session,
        [
            {
                "id": o.outgoing.attempt_id,
                "success": o.success,
                "status_code": o.status_code,
                "latency_ms": o.latency_ms,
                "response_excerpt": o.excerpt,
                "error": o.error,
            }
            for o in outcomes
        ],
    )
    # Health per endpoint and batch (the test event does not count): an answer resets it,
    # a batch of failures only adds them up.
    by_endpoint: dict[uuid.UUID, list[Outcome]] = {}
    for o in outcomes:
        if o.outgoing.retry:
            by_endpoint.setdefault(o.outgoing.endpoint_id, []).append(o)
    for found in by_endpoint.values():
        await _count_health(session, settings, found)
    await session.flush()


async def _count_health(session: AsyncSession, settings: Settings, found: list[Outcome]) -> None:
    e = WebhookEndpoint
    out = found[0].outgoing
    succeeded = [o.at for o in found if o.success]
    if succeeded:
        await session.execute(
            update(e)
            .where(e.id == out.endpoint_id)
            .values(failing_since=None, consecutive_failures=0, last_success_at=max(succeeded))
            .execution_options(synchronize_session=False)
        )
        return
    first, last = min(o.at for o in found), max(o.at for o in found)
    row = (
        await session.execute(
            update(e)
            .where(e.id == out.endpoint_id)
            .values(
                consecutive_failures=e.consecutive_failures + len(found),
                failing_since=func.coalesce(e.failing_since, first),
            )
            .returning(e.failing_since, e.consecutive_failures, e.status)
            .execution_options(synchronize_session=False)
        )
    ).one_or_none()
    if row is None or row[2] != "active":
        return
    failing_since, failures = row[0] or first, row[1]
    long_enough = last - failing_since >= timedelta(hours=settings.webhooks_disable_after_hours)
    if long_enough and failures >= settings.webhooks_disable_min_failures:
        await _disable(session, out, last, failures, failing_since)


async def _disable(
    session: AsyncSession, out: Outgoing, now: datetime, failures: int, since: datetime
) -> None:
    e = WebhookEndpoint
    reason = f"{failures} failed attempts in a row since {since.isoformat()}"
    won = await session.execute(
        update(e)
        .where(e.id == out.endpoint_id, e.status == "active")
        .values(status="disabled", disabled_at=now, disabled_reason=reason)
        .returning(e.url)
        .execution_options(synchronize_session=False)
    )
    url = won.scalar_one_or_none()
    if url is None:
        return  # another worker disabled it first (and told the admins)
    log.warning("webhook endpoint disabled", extra={"endpoint_id": str(out.endpoint_id)})
    await audit(
        session,
        actor=None,
        organization_id=out.organization_id,
        action="webhook.disabled",
        resource_type="webhook",
        resource_id=out.endpoint_id,
        after={"status": "disabled", "reason": reason},
    )
    for admin in await members.active_with_role(
        session, "admin", organization_id=out.organization_id
    ):
        await notifications.notify(
            session,
            organization_id=out.organization_id,
            user_id=admin.id,
            kind="webhook_disabled",
            title=f"Webhook endpoint disabled: {url[:200]}",
            body=f"{reason}. Fix the receiver, then enable the endpoint again; "
            "its queued deliveries go out then.",
            data={"endpoint_id": str(out.endpoint_id)},
            delivery_key=f"webhook-disabled:{out.endpoint_id}:{now.isoformat()}:{admin.id}",
        )


def client_for(settings: Settings) -> httpx.AsyncClient:
    """The HTTP client of a dispatch run (outbound address guard, no redirects)."""
    return guarded_client(
        allow_private=settings.webhooks_allow_private, timeout=settings.webhooks_timeout_seconds
    )


@job("webhooks.dispatch")
async def dispatch(ctx: JobContext) -> dict[str, int]:
    """Send what is due, batch after batch, until nothing is left (or MAX_ROUNDS)."""
    settings = ctx.settings
    totals = {"delivered": 0, "failed": 0}
    slots = asyncio.Semaphore(settings.webhooks_concurrency)

    async def one(client: httpx.AsyncClient, out: Outgoing) -> Outcome:
        async with slots:
            return await send(client, out)

    # A claimed test's sender may still be waiting for a slow answer when the claim runs
    # out: it is abandoned only once a whole timeout longer has passed.
    cutoff = utcnow() - timedelta(seconds=settings.webhooks_timeout_seconds)
    async with ctx.session_factory() as session:
        await repository.fail_abandoned_tests(session, cutoff, ABANDONED_TEST)
        await session.commit()
    async with client_for(settings) as client:
        for _ in range(MAX_ROUNDS):
            await expand_batches(ctx)
            batch = await claim_due(ctx, settings.webhooks_batch_size)
            if not batch:
                break
            outcomes = list(await asyncio.gather(*(one(client, o) for o in batch)))
            async with ctx.session_factory() as session:
                await finish(session, settings, outcomes)
                await session.commit()
            ok = sum(o.success for o in outcomes)
            totals["delivered"] += ok
            totals["failed"] += len(outcomes) - ok
    if totals["failed"]:
        log.info("webhook attempts failed", extra=totals)
    return totals
