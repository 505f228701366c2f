"""Pipeline stage: one step of an organisation's sales pipeline."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Integer, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin, TimestampMixin


class PipelineStage(IdMixin, TimestampMixin, Base):
    """A stage; leads refer to it by its stable `key` (their `status`)."""

    __tablename__ = "pipeline_stages"
    __table_args__ = (UniqueConstraint("organization_id", "key"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    key: Mapped[str] = mapped_column(String(40), nullable=False)
    name: Mapped[str] = mapped_column(String(80), nullable=False)
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    category: Mapped[str] = mapped_column(String(10), nullable=False, default="open")
    probability: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
