"""The `webhook` entry of the integration list: connected while an endpoint is active."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.integrations import registry
from leadflow.webhooks import repository


async def summary(session: AsyncSession, organization_id: uuid.UUID) -> registry.Summary:
    """Endpoints active and disabled, and the last successful delivery."""
    active, disabled, last = await repository.endpoint_summary(session, organization_id)
    return registry.Summary(
        status="connected" if active else "not_connected",
        config={"active_endpoints": active, "disabled_endpoints": disabled},
        last_sync=last,
    )


registry.register(registry.Spec(type="webhook", name="Webhooks", summary=summary))
