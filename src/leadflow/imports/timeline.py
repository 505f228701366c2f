"""The "imported" kind of the lead timeline: which import created a lead.

Importing this module registers the source (the endpoints and `leadflow.wiring` do).
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.imports import repository
from leadflow.timeline.registry import TimelineEntry, TimelineSource, register_source


async def _imported_entries(
    session: AsyncSession, lead_id: uuid.UUID, n: int
) -> list[TimelineEntry]:
    row = await repository.imported_from(session, lead_id)
    if row is None or n < 1:
        return []
    batch_id, created_at, created_by, filename = row
    summary = f"Imported from {filename}" if filename else "Imported"
    return [
        TimelineEntry(
            kind="imported",
            occurred_at=created_at,
            actor_user_id=created_by,
            summary=summary,
            data={"import_batch_id": str(batch_id)},
            id=f"imported:{lead_id}",
        )
    ]


async def _imported_count(session: AsyncSession, lead_id: uuid.UUID) -> int:
    return len(await _imported_entries(session, lead_id, 1))


# Leads created by an import show it in their timeline (imports write no per-lead history).
register_source(TimelineSource("imported", _imported_entries, _imported_count))
