"""Undoing a finished import: its new leads removed, the fields it overwrote restored — both
through the leads service (history, audit and events as for any other change)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import record
from leadflow.authz.actor import Actor
from leadflow.imports import repository
from leadflow.imports.batches import get_batch
from leadflow.imports.errors import ImportNotFinished
from leadflow.imports.updates import DATETIME_FIELDS
from leadflow.kit.clock import utcnow
from leadflow.leads import bulk
from leadflow.models.import_batch import ImportBatch
from leadflow.models.lead import Lead


def _typed(before: dict[str, Any]) -> dict[str, Any]:
    """A stored before-image with its datetimes parsed back."""
    return {
        k: datetime.fromisoformat(v) if k in DATETIME_FIELDS and v else v for k, v in before.items()
    }


async def undo(session: AsyncSession, actor: Actor, batch_id: uuid.UUID) -> ImportBatch:
    """Remove the leads the batch created and restore the fields it overwrote."""
    batch = await get_batch(session, actor, batch_id)
    if batch.status not in ("completed", "failed"):
        raise ImportNotFinished(f"Only finished imports can be undone (this one is {batch.status})")
    now = utcnow()
    # Through the leads service, and only leads the caller may change today: a lead
    # reassigned out of their scope since the import is neither removed nor restored (it is
    # counted as skipped).
    removed = await bulk.delete_where(
        session,
        actor,
        Lead.import_batch_id == batch.id,
        now=now,
        reason="import undone",
        audit_resource=("import", batch.id),
    )
    updates = await repository.import_updates(session, batch.id)
    restored = await bulk.update_records(
        session,
        actor,
        [(u.lead_id, _typed(u.before)) for u in updates],
        now=now,
        reason="import undone",
        fill=False,
    )
    await repository.delete_import_updates(session, batch.id)
    batch.status = "undone"
    batch.undone_at = now
    await session.flush()
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="import.undo",
        resource_type="import",
        resource_id=batch.id,
        after={
            "removed_leads": len(removed),
            "restored_leads": len(restored.updated),
            "skipped_updates": len(updates) - len(restored.updated),
        },
    )
    return batch
