"""Admin views of the outbox: failed jobs (with retry) and the email log."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep
from leadflow.kit.pagination import Page, PageParams, page_params
from leadflow.worker import admin

jobs_router = APIRouter(tags=["admin"])
emails_router = APIRouter(tags=["admin"])
Admin = Annotated[Actor, Depends(require_permission("admin:settings"))]
Paging = Annotated[PageParams, Depends(page_params)]


class AttemptError(BaseModel):
    """Why one attempt of a delivery failed."""

    attempt: int
    at: datetime
    error: str


# Each failed attempt's error, oldest first; a row written before the log existed has none.
AttemptErrors = Annotated[
    list[AttemptError],
    BeforeValidator(lambda value: value or []),
    Field(description="each failed attempt's error, oldest first"),
]


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
    errors: AttemptErrors
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
    errors: AttemptErrors
    message_id: str | None
    created_at: datetime
    sent_at: datetime | None


@jobs_router.get("", response_model=Page[JobRead])
async def list_jobs(
    session: SessionDep,
    actor: Admin,
    page: Paging,
    status: Annotated[str | None, Query(pattern="^(pending|retry|sent|logged|failed)$")] = None,
    kind: str | None = None,
) -> Page[JobRead]:
    """Deliveries of the organisation, e.g. `?status=failed`."""
    rows, total = await admin.list_jobs(session, actor, page, status, kind)
    return Page(
        items=[JobRead.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@jobs_router.post("/{job_id}/retry", response_model=JobRead)
async def retry_job(session: SessionDep, actor: Admin, job_id: uuid.UUID) -> JobRead:
    """Give a failed delivery a fresh set of attempts."""
    row = await admin.retry_job(session, actor, job_id)
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
    rows, total = await admin.list_emails(session, actor, page, status, to)
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
            errors=r.errors,  # validated into AttemptError
            message_id=(r.result or {}).get("message_id"),
            created_at=r.created_at,
            sent_at=r.sent_at,
        )
        for r in rows
    ]
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)
