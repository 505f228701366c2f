"""Undoing a finished import: its new leads removed, the fields it overwrote restored."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import record
from leadflow.authz.actor import Actor
from leadflow.exceptions import Conflict
from leadflow.imports import repository
from leadflow.imports.batches import get_batch
from leadflow.imports.updates import DATETIME_FIELDS
from leadflow.kit.clock import utcnow
from leadflow.models.import_batch import ImportBatch


async def undo(session: AsyncSession, actor: Actor, batch_id: uuid.UUID) -> ImportBatch:
    """Remove the leads the batch created and restore the fields it overwrote."""
    batch = await get_batch(session, actor, batch_id)
    if batch.status not in ("completed", "failed"):
        raise Conflict(
            f"Only finished imports can be undone (this one is {batch.status})",
            code="import_not_finished",
        )
    now = utcnow()
    # Only leads the caller may change today: a lead reassigned out of their scope since the
    # import is neither removed nor restored (it is counted as skipped).
    removed = await repository.remove_batch_leads(session, actor, batch.id, now)
    updates = await repository.import_updates(session, batch.id)
    leads = {
        lead.id: lead
        for lead in await repository.leads_in_scope(session, actor, [u.lead_id for u in updates])
    }
    restored = 0
    for upd in updates:
        lead = leads.get(upd.lead_id)
        if lead is None:
            continue
        for key, value in upd.before.items():
            if key in DATETIME_FIELDS and value:
                value = datetime.fromisoformat(value)
            setattr(lead, key, value)
        lead.version = (lead.version or 1) + 1
        restored += 1
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
            "removed_leads": removed,
            "restored_leads": restored,
            "skipped_updates": len(updates) - restored,
        },
    )
    return batch
