"""In/out models of the integration endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from leadflow.integrations.registry import IntegrationType


class ConnectIn(BaseModel):
    """`POST /admin/integrations/{type}/connect`: secrets in `credentials` (encrypted at rest,
    never returned), everything else in `config`. The fields depend on the type."""

    model_config = ConfigDict(extra="forbid")

    credentials: dict[str, Any] = Field(default_factory=dict, max_length=20)
    config: dict[str, Any] = Field(default_factory=dict, max_length=20)


class IntegrationRead(BaseModel):
    """One integration as listed. `status`: `connected` (the organisation's own),
    `not_connected`, or `error` (stored credentials cannot be read). `source` says what is
    used now: `organization`, `process` (the server-wide setting) or null (nothing)."""

    type: IntegrationType
    name: str
    status: Literal["connected", "not_connected", "error"]
    source: Literal["organization", "process"] | None
    config: dict[str, Any]
    last_sync: datetime | None


class ConnectOut(IntegrationRead):
    """The connected integration and what its connection test found."""

    check: dict[str, Any]
