"""Queries of the audit trail, always inside the actor's organisation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, and_, func, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.authz.actor import Actor
from leadflow.kit.pagination import PageParams
from leadflow.models.audit_log import AuditLog


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Filters of the audit-log list."""

    date_from: datetime | None = None
    date_to: datetime | None = None
    user_id: uuid.UUID | None = None
    action: str | None = None
    resource: str | None = None
    resource_id: str | None = None
    search: str | None = None


def _filtered(actor: Actor, f: AuditFilter) -> Select[AuditLog]:
    stmt = select(AuditLog).where(AuditLog.organization_id == actor.organization_id)
    if f.date_from:
        stmt = stmt.where(AuditLog.created_at >= f.date_from)
    if f.date_to:
        stmt = stmt.where(AuditLog.created_at <= f.date_to)
    if f.user_id:
        stmt = stmt.where(AuditLog.actor_user_id == f.user_id)
    if f.action:
        stmt = stmt.where(AuditLog.action == f.action)
    if f.resource:
        stmt = stmt.where(AuditLog.resource_type == f.resource)
    if f.resource_id:
        stmt = stmt.where(AuditLog.resource_id == f.resource_id)
    if f.search:
        like = f"%{f.search.lower()}%"
        stmt = stmt.where(
            or_(
                func.lower(AuditLog.action).like(like),
                func.lower(AuditLog.actor_label).like(like),
                func.lower(AuditLog.resource_type).like(like),
                AuditLog.resource_id.like(like),
            )
        )
    return stmt


async def list_logs(
    session: AsyncSession, actor: Actor, f: AuditFilter, page: PageParams
) -> tuple[list[AuditLog], int]:
    """A page of audit rows, newest first, and the total."""
    stmt = _filtered(actor, f)
    total = await session.scalar(select(func.count()).select_from(stmt.subquery()))
    rows = await session.scalars(
        stmt.order_by(AuditLog.created_at.desc(), AuditLog.id.desc())
        .limit(page.limit)
        .offset(page.offset)
    )
    return list(rows), int(total or 0)


async def list_logs_before(
    session: AsyncSession,
    actor: Actor,
    f: AuditFilter,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[AuditLog]:
    """Up to `limit` audit rows older than `before` (created_at, id), newest first: keyset
    paging, as fast on the millionth row as on the first."""
    stmt = _filtered(actor, f)
    if before is not None:
        at, row_id = before
        stmt = stmt.where(
            or_(AuditLog.created_at < at, and_(AuditLog.created_at == at, AuditLog.id < row_id))
        )
    rows = await session.scalars(
        stmt.order_by(AuditLog.created_at.desc(), AuditLog.id.desc()).limit(limit)
    )
    return list(rows)


async def get_log(session: AsyncSession, actor: Actor, log_id: uuid.UUID) -> AuditLog | None:
    """One audit row of the actor's organisation."""
    return await session.scalar(
        select(AuditLog).where(
            AuditLog.id == log_id, AuditLog.organization_id == actor.organization_id
        )
    )


async def insert_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert many audit rows (one executemany)."""
    if rows:
        await session.execute(insert(AuditLog), rows)
