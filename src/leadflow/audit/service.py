"""Write audit rows in the same transaction as the change they describe."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from sqlalchemy import inspect as sa_inspect
from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from leadflow.audit import repository
from leadflow.audit.repository import AuditFilter
from leadflow.authz.actor import Actor
from leadflow.exceptions import NotFound, ValidationFailed
from leadflow.kit.clock import utcnow
from leadflow.kit.context import current_request
from leadflow.kit.pagination import PageParams
from leadflow.kit.security import redact
from leadflow.models.audit_log import AuditLog


def _jsonable(value: Any) -> Any:
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    return value


def snapshot(obj: Any, *, exclude: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The column values of a model instance, JSON-ready and with secrets redacted."""
    mapper = sa_inspect(obj).mapper
    data = {
        attr.key: getattr(obj, attr.key) for attr in mapper.column_attrs if attr.key not in exclude
    }
    return redact(_jsonable(data))


def diff(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Only the keys that changed, on both sides."""
    keys = {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)}
    keys -= {"updated_at"}
    return {k: before.get(k) for k in keys}, {k: after.get(k) for k in keys}


async def record(
    session: AsyncSession,
    *,
    actor: Actor | None,
    organization_id: uuid.UUID,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID | str | None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> AuditLog:
    """Add an audit row to the session (flushed with the caller's change)."""
    ctx = current_request()
    row = AuditLog(
        organization_id=organization_id,
        actor_user_id=actor.user_id if actor else None,
        actor_api_key_id=actor.api_key_id if actor else None,
        actor_label=actor.label if actor else "system",
        impersonator_user_id=actor.impersonator_id if actor else None,
        action=action,
        resource_type=resource_type,
        resource_id=str(resource_id) if resource_id is not None else None,
        before=redact(_jsonable(before)) if before is not None else None,
        after=redact(_jsonable(after)) if after is not None else None,
        ip=ctx.ip,
        request_id=ctx.request_id,
    )
    session.add(row)
    return row


@dataclass(frozen=True)
class Entry:
    """One audit row of a set-based change (`record_many`)."""

    action: str
    resource_type: str
    resource_id: uuid.UUID | str | None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


async def record_many(
    session: AsyncSession,
    *,
    actor: Actor | None,
    organization_id: uuid.UUID,
    entries: list[Entry],
    now: datetime | None = None,
) -> None:
    """Write many audit rows in one statement (what `record` writes, row by row)."""
    if not entries:
        return
    ctx = current_request()
    at = now or utcnow()
    await repository.insert_rows(
        session,
        [
            {
                "id": uuid7(),
                "organization_id": organization_id,
                "actor_user_id": actor.user_id if actor else None,
                "actor_api_key_id": actor.api_key_id if actor else None,
                "actor_label": actor.label if actor else "system",
                "impersonator_user_id": actor.impersonator_id if actor else None,
                "action": e.action,
                "resource_type": e.resource_type,
                "resource_id": str(e.resource_id) if e.resource_id is not None else None,
                "before": redact(_jsonable(e.before)) if e.before is not None else None,
                "after": redact(_jsonable(e.after)) if e.after is not None else None,
                "ip": ctx.ip,
                "request_id": ctx.request_id,
                "created_at": at,
            }
            for e in entries
        ],
    )


async def list_logs(
    session: AsyncSession, actor: Actor, f: AuditFilter, page: PageParams
) -> tuple[list[AuditLog], int]:
    """A page of the organisation's audit entries."""
    return await repository.list_logs(session, actor, f, page)


def audit_cursor(row: AuditLog) -> str:
    """The keyset cursor that continues after `row` (see `list_logs_after`)."""
    raw = f"{row.created_at.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _parse_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, row_id = raw.partition("|")
        when = datetime.fromisoformat(at)
        if when.tzinfo is None:
            raise ValueError("cursor time has no timezone")
        return when, uuid.UUID(row_id)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed(
            "Invalid cursor", errors=[{"loc": ["query", "cursor"], "msg": str(exc)}]
        ) from None


async def list_logs_after(
    session: AsyncSession, actor: Actor, f: AuditFilter, cursor: str | None, limit: int
) -> tuple[list[AuditLog], str | None]:
    """A page of the organisation's audit entries after `cursor` (keyset), newest first, and
    the cursor of the next page (None on the last)."""
    before = _parse_cursor(cursor) if cursor else None
    rows = await repository.list_logs_before(session, actor, f, before, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, audit_cursor(rows[-1]) if more and rows else None


async def get_log(session: AsyncSession, actor: Actor, log_id: uuid.UUID) -> AuditLog:
    """One audit entry of the organisation, or 404."""
    row = await repository.get_log(session, actor, log_id)
    if row is None:
        raise NotFound("Audit log entry not found")
    return row


async def _record_own(
    session: AsyncSession,
    actor: Actor,
    action: str,
    resource_type: str,
    resource_id: uuid.UUID,
    *,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Audit a change to a row of the actor's own organisation."""
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action=action,
        resource_type=resource_type,
        resource_id=resource_id,
        before=before,
        after=after,
    )


async def record_create(
    session: AsyncSession, actor: Actor, row: Any, action: str, resource_type: str
) -> None:
    """Audit a new row of the actor's organisation (its full snapshot)."""
    await _record_own(session, actor, action, resource_type, row.id, after=snapshot(row))


async def record_update(
    session: AsyncSession,
    actor: Actor,
    row: Any,
    before: dict[str, Any],
    action: str,
    resource_type: str,
    *,
    view: Callable[[Any], dict[str, Any]] = snapshot,
) -> None:
    """Audit the fields of `row` that changed since `before` (nothing if none).

    `view` renders the row as audited (the `before` snapshot must come from the same view).
    """
    b, a = diff(before, view(row))
    if a:
        await _record_own(session, actor, action, resource_type, row.id, before=b, after=a)


async def delete_recorded(
    session: AsyncSession, actor: Actor, row: Any, action: str, resource_type: str
) -> None:
    """Delete `row` and audit it with its last snapshot."""
    before, row_id = snapshot(row), row.id
    await session.delete(row)
    await _record_own(session, actor, action, resource_type, row_id, before=before)
