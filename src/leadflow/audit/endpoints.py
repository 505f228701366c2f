"""GET /api/v1/admin/audit-logs (alias /api/audit-logs). Read-only by design."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import AwareDatetime

from leadflow.audit import service
from leadflow.audit.repository import AuditFilter
from leadflow.audit.schemas import AuditLogRead
from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep
from leadflow.kit.pagination import Page, PageParams, page_params

router = APIRouter(tags=["audit"])
AuditActor = Annotated[Actor, Depends(require_permission("admin:audit"))]


@router.get("", response_model=Page[AuditLogRead])
async def list_audit_logs(
    session: SessionDep,
    actor: AuditActor,
    page: Annotated[PageParams, Depends(page_params)],
    # Aware only: a naive bound would silently mean UTC on one engine and local on another.
    date_from: AwareDatetime | None = None,
    date_to: AwareDatetime | None = None,
    user_id: uuid.UUID | None = None,
    action: str | None = None,
    resource: str | None = None,
    resource_id: str | None = None,
    search: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[AuditLogRead]:
    """Audit entries of the organisation, newest first."""
    f = AuditFilter(date_from, date_to, user_id, action, resource, resource_id, search)
    rows, total = await service.list_logs(session, actor, f, page)
    return Page(
        items=[AuditLogRead.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )


@router.get("/{log_id}", response_model=AuditLogRead)
async def get_audit_log(session: SessionDep, actor: AuditActor, log_id: uuid.UUID) -> AuditLogRead:
    """One audit entry with its before/after values."""
    return AuditLogRead.model_validate(await service.get_log(session, actor, log_id))
