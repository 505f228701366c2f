"""Applying a file's values to leads that already exist (`on_duplicate="update"`).

The leads service writes them (`leads.bulk.update_records`: what an API update writes);
this module keeps the before-image that undo restores.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.imports import repository
from leadflow.imports.rows import ImportContext
from leadflow.kit.clock import utcnow
from leadflow.leads import bulk
from leadflow.models.import_batch import ImportUpdate

DATETIME_FIELDS = frozenset({"next_action_at", "last_contacted_at", "analyzed_at", "sla_met_at"})


def _plain(value: Any) -> Any:
    """A JSON-ready copy (datetimes as ISO text, ids as strings), as before-images store them."""
    return json.loads(
        json.dumps(value, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
    )


async def apply_updates(
    session: AsyncSession,
    ctx: ImportContext,
    batch_id: uuid.UUID | None,
    updates: list[tuple[uuid.UUID, dict[str, Any]]],
) -> int:
    """Apply the file's non-empty values to existing leads through the leads service; keep
    the first before-image of each lead in this batch for undo. How many leads changed."""
    if not updates:
        return 0
    values = [
        (lead_id, {k: v for k, v in rec.items() if not (k == "status" and rec.get("_keep_status"))})
        for lead_id, rec in updates
    ]
    done = await bulk.update_records(
        session, ctx.actor, values, now=utcnow(), reason="import", fill=True
    )
    if batch_id is not None and done.updated:
        known = await repository.updated_lead_ids(
            session, batch_id, [u.lead_id for u in done.updated]
        )
        await repository.insert_rows(
            session,
            ImportUpdate,
            [
                {"batch_id": batch_id, "lead_id": u.lead_id, "before": _plain(u.before)}
                for u in done.updated
                if u.lead_id not in known
            ],
        )
    return len(done.updated)
