"""Background job of authentication: recording an API key's last use."""

from __future__ import annotations

import uuid
from datetime import datetime

from leadflow.auth import repository
from leadflow.worker.jobs import JobContext, job


@job("auth.touch_api_key")
async def touch_api_key(ctx: JobContext, key_id: str, used_at: str) -> None:
    """Record when a key was last used (queued by read-only requests)."""
    async with ctx.session_factory() as session:
        await repository.touch_api_key(session, uuid.UUID(key_id), datetime.fromisoformat(used_at))
        await session.commit()
