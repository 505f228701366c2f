"""The admin's view of the outbox: deliveries by status and kind, emails, and the retry of a
failed delivery (the API's `/admin/jobs` and `/admin/emails`, and the web's jobs page)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import record
from leadflow.authz.actor import Actor
from leadflow.exceptions import NotFound
from leadflow.kit.clock import utcnow
from leadflow.kit.pagination import PageParams
from leadflow.models.outbox import OutboxMessage
from leadflow.worker.errors import NotFailed
from leadflow.worker.jobs import enqueue_job

STATUSES = ("pending", "retry", "sent", "logged", "failed")


async def _page(
    session: AsyncSession, conds: list[Any], page: PageParams
) -> tuple[list[OutboxMessage], int]:
    total = await session.scalar(select(func.count()).select_from(OutboxMessage).where(*conds))
    rows = await session.scalars(
        select(OutboxMessage)
        .where(*conds)
        .order_by(OutboxMessage.created_at.desc(), OutboxMessage.id)
        .limit(page.limit)
        .offset(page.offset)
    )
    return list(rows), int(total or 0)


async def list_jobs(
    session: AsyncSession,
    actor: Actor,
    page: PageParams,
    status: str | None = None,
    kind: str | None = None,
) -> tuple[list[OutboxMessage], int]:
    """Deliveries of the actor's organisation, newest first, and their total."""
    conds: list[Any] = [OutboxMessage.organization_id == actor.organization_id]
    if status:
        conds.append(OutboxMessage.status == status)
    if kind:
        conds.append(OutboxMessage.kind == kind)
    return await _page(session, conds, page)


async def list_emails(
    session: AsyncSession,
    actor: Actor,
    page: PageParams,
    status: str | None = None,
    to: str | None = None,
) -> tuple[list[OutboxMessage], int]:
    """Email deliveries of the actor's organisation, newest first, and their total."""
    conds: list[Any] = [
        OutboxMessage.organization_id == actor.organization_id,
        OutboxMessage.kind == "email",
    ]
    if status:
        conds.append(OutboxMessage.status == status)
    if to:
        conds.append(OutboxMessage.payload["to"].as_string() == to.strip().lower())
    return await _page(session, conds, page)


async def retry_job(session: AsyncSession, actor: Actor, job_id: uuid.UUID) -> OutboxMessage:
    """Give a failed delivery a fresh set of attempts (404 outside the organisation)."""
    row = await session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.id == job_id, OutboxMessage.organization_id == actor.organization_id
        )
    )
    if row is None:
        raise NotFound("Job not found")
    if row.status != "failed":
        raise NotFailed(f"Only failed jobs can be retried (this one is {row.status})")
    row.status, row.attempts, row.next_attempt_at = "retry", 0, utcnow()
    row.locked_until = None
    await session.flush()
    enqueue_job(session, "outbox.deliver", str(row.id))
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="job.retry",
        resource_type="job",
        resource_id=row.id,
        before={"status": "failed"},
        after={"status": "retry"},
    )
    return row
