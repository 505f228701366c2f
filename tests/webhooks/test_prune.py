"""Pruning: webhook attempts and finished deliveries past `LEADFLOW_RETENTION_WEBHOOKS_DAYS`
go; queued deliveries stay however old."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from leadflow.kit.clock import clock
from leadflow.models.webhook import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from leadflow.worker.jobs import JobContext, run_job
from tests.fixtures.factories import Factory

NOW = datetime(2026, 6, 1, 3, 0, tzinfo=UTC)


def _id(days: int) -> uuid.UUID:
    """A UUIDv7 made `days` before NOW (ids carry the wall-clock time they were made at,
    which the frozen clock does not move)."""
    ms = int((NOW - timedelta(days=days)).timestamp() * 1000)
    rest = uuid7().int & ((1 << 80) - 1)  # version, variant and random bits
    return uuid.UUID(int=(ms << 80) | rest)


async def test_old_finished_deliveries_and_attempts_are_pruned(
    session: AsyncSession, factory: Factory, jobs: JobContext
) -> None:
    org = await factory.org()
    endpoint = WebhookEndpoint(
        organization_id=org.id, url="https://93.184.215.14/h", events=["lead.created"], secret="x"
    )
    session.add(endpoint)
    await session.flush()

    def delivery(status: str, days: int) -> WebhookDelivery:
        clock.freeze(NOW - timedelta(days=days))
        row = WebhookDelivery(
            id=_id(days),
            endpoint_id=endpoint.id,
            message_id=_id(days),
            event_type="lead.created",
            body="{}",
            occurred_at=clock.now(),
            status=status,
            next_attempt_at=clock.now(),
            created_at=clock.now(),
        )
        session.add(row)
        return row

    old_done = delivery("delivered", 40)
    delivery("failed", 31)
    old_queued, recent = delivery("retry", 60), delivery("delivered", 29)
    orphan = delivery("pending", 1)
    orphan.endpoint_id = uuid.uuid4()  # its endpoint is gone (with its organisation)
    await session.flush()
    for d, days in [(old_done, 40), (old_queued, 60), (recent, 29)]:
        clock.freeze(NOW - timedelta(days=days))
        session.add(
            WebhookAttempt(
                id=_id(days),
                delivery_id=d.id,
                attempted_at=clock.now(),
                success=False,
                status_code=500,
                latency_ms=3,
            )
        )
    clock.freeze(NOW)
    await session.commit()
    result = await run_job(jobs, "maintenance.prune")
    assert (result["webhook_attempts"], result["webhook_deliveries"]) == (2, 3)
    session.expunge_all()
    left = set(await session.scalars(select(WebhookDelivery.id)))
    assert left == {old_queued.id, recent.id}
    attempts = list(await session.scalars(select(WebhookAttempt.delivery_id)))
    assert attempts == [recent.id]
