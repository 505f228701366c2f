"""Admin views of the outbox: failed jobs (with retry) and the email log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import record
from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep
from leadflow.exceptions import NotFound
from leadflow.kit.clock import utcnow
from leadflow.kit.pagination import Page, PageParams, page_params
from leadflow.models.outbox import OutboxMessage
from leadflow.worker.errors import NotFailed
from leadflow.worker.jobs import enqueue_job

jobs_router = APIRouter(tags=["admin"])
emails_router = APIRouter(tags=["admin"])
Admin = Annotated[Actor, Depends(require_permission("admin:settings"))]
Paging = Annotated[PageParams, Depends(page_params)]


class JobRead(BaseModel):
    """A background delivery and its attempts."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    kind: str
    delivery_key: str
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None


class EmailRead(BaseModel):
    """An email as Leadflow sent (or, without SMTP, logged) it."""

    id: uuid.UUID
    to: str
    subject: str
    text: str
    template: str | None
    language: str | None
    status: str
    attempts: int
    last_error: str | None
    message_id: str | None
    created_at: datetime
    sent_at: datetime | None


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


@jobs_router.get("", response_model=Page[JobRead])
async def list_jobs(
    session: SessionDep,
    actor: Admin,
    page: Paging,
    status: Annotated[str | None, Query(pattern="^(pending|retry|sent|logged|failed)$")] = None,
    kind: str | None = None,
) -> Page[JobRead]:
    """Deliveries of the organisation, e.g. `?status=failed`."""
    conds: list[Any] = [OutboxMessage.organization_id == actor.organization_id]
    if status:
        conds.append(OutboxMessage.status == status)
    if kind:
        conds.append(OutboxMessage.kind == kind)
    rows, total = await _page(session, conds, page)
    return Page(
        items=[JobRead.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@jobs_router.post("/{job_id}/retry", response_model=JobRead)
async def retry_job(session: SessionDep, actor: Admin, job_id: uuid.UUID) -> JobRead:
    """Give a failed delivery a fresh set of attempts."""
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
    return JobRead.model_validate(row)


@emails_router.get("", response_model=Page[EmailRead])
async def list_emails(
    session: SessionDep,
    actor: Admin,
    page: Paging,
    status: Annotated[str | None, Query(pattern="^(pending|retry|sent|logged|failed)$")] = None,
    to: str | None = None,
) -> Page[EmailRead]:
    """Emails of the organisation, newest first (with no SMTP configured they are `logged`)."""
    conds: list[Any] = [
        OutboxMessage.organization_id == actor.organization_id,
        OutboxMessage.kind == "email",
    ]
    if status:
        conds.append(OutboxMessage.status == status)
    if to:
        conds.append(OutboxMessage.payload["to"].as_string() == to.strip().lower())
    rows, total = await _page(session, conds, page)
    items = [
        EmailRead(
            id=r.id,
            to=r.payload.get("to", ""),
            subject=r.payload.get("subject", ""),
            text=r.payload.get("text", ""),
            template=r.payload.get("template"),
            language=r.payload.get("language"),
            status=r.status,
            attempts=r.attempts,
            last_error=r.last_error,
            message_id=(r.result or {}).get("message_id"),
            created_at=r.created_at,
            sent_at=r.sent_at,
        )
        for r in rows
    ]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
