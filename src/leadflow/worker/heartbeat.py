"""Worker heartbeats: each worker's ticker renews a row every `LEADFLOW_HEARTBEAT_SECONDS`.

A worker counts as alive while its row was renewed within three intervals (one missed beat
is no alarm). The row is keyed by `host:pid`; a restarted worker gets a new row, the old one
stops being renewed and is pruned with the health samples.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db.dialect import upsert
from leadflow.db.types import new_id
from leadflow.models.health import WorkerHeartbeat

# Beats a worker may miss before it counts as gone.
MISSED_BEATS = 3


async def beat(session: AsyncSession, *, name: str, started_at: datetime, now: datetime) -> None:
    """Record that worker `name` (running since `started_at`) is alive at `now`."""
    await upsert(
        session,
        WorkerHeartbeat,
        [{"id": new_id(), "name": name, "started_at": started_at, "last_seen_at": now}],
        key=("name",),
        replace=("started_at", "last_seen_at"),
    )


def alive_since(now: datetime, heartbeat_seconds: int) -> datetime:
    """Workers whose last beat is at or after this instant are alive."""
    return now - timedelta(seconds=MISSED_BEATS * heartbeat_seconds)
