"""AiGeneration: one call of the AI bridge, kept for audit, cost tracking and the lead timeline."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin
from leadflow.db.types import JSONType, UTCDateTime
from leadflow.kit.clock import utcnow


class AiGeneration(IdMixin, Base):
    """What was asked (`input`), what came back (`output`), from which provider and model,
    under which prompt version, how long it took and whether the local fallback answered.

    `outcome` is `ok` (the configured provider answered), `fallback` (it failed and the local
    provider answered) or `error` (nothing could answer).
    """

    __tablename__ = "ai_generations"
    __table_args__ = (
        Index("ix_ai_generations_org_created", "organization_id", "created_at"),
        Index("ix_ai_generations_lead_created", "lead_id", "created_at"),
    )

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    # Erasing a lead erases what the AI was told about it (the input holds its notes).
    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("leads.id", ondelete="CASCADE")
    )
    action: Mapped[str] = mapped_column(String(40), nullable=False)
    provider: Mapped[str] = mapped_column(String(20), nullable=False)
    model: Mapped[str] = mapped_column(String(120), nullable=False)
    prompt_version: Mapped[str] = mapped_column(String(40), nullable=False)
    input: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    output: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    input_tokens: Mapped[int | None] = mapped_column(Integer)
    output_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    outcome: Mapped[str] = mapped_column(String(10), nullable=False)
    fallback: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    error: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
