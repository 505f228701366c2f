"""Re-encrypting stored credentials under the current secret key (`leadflow integrations
rotate-key`): integration credentials and webhook signing secrets."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.kit import crypto
from leadflow.models.integration import Integration
from leadflow.models.webhook import WebhookEndpoint


async def rotate_all(
    session: AsyncSession, settings: Settings, old_keys: Sequence[str] = ()
) -> dict[str, int]:
    """Re-encrypt every stored credential under `LEADFLOW_SECRET_KEY`; each must be readable
    with it, a key of `LEADFLOW_PREVIOUS_SECRET_KEYS` or one of `old_keys`. All or nothing:
    one unreadable credential raises `SecretUnreadable` and the caller's transaction rolls
    back. Returns how many were re-encrypted."""
    counts = {"integrations": 0, "webhook_secrets": 0}
    for row in await session.scalars(select(Integration).order_by(Integration.id)):
        row.credentials = crypto.rotate(settings, row.credentials, old_keys)
        counts["integrations"] += 1
    for ep in await session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id)):
        ep.secret = crypto.rotate(settings, ep.secret, old_keys)
        if ep.previous_secret:
            ep.previous_secret = crypto.rotate(settings, ep.previous_secret, old_keys)
        counts["webhook_secrets"] += 1
    await session.flush()
    return counts
