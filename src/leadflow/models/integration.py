"""An organisation's connection to an outside service (its own SMTP relay, OpenAI account or
Twilio account), used instead of the process-wide settings."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin, TimestampMixin
from leadflow.db.types import JSONType, UTCDateTime


class Integration(IdMixin, TimestampMixin, Base):
    """One connected integration per organisation and type. `credentials` is a Fernet token
    (see `leadflow.kit.crypto`) of the JSON credentials; `config` holds what is not secret."""

    __tablename__ = "integrations"
    __table_args__ = (UniqueConstraint("organization_id", "type"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    type: Mapped[str] = mapped_column(String(20), nullable=False)
    credentials: Mapped[str] = mapped_column(Text, nullable=False)
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, nullable=False, default=dict)
    connected_by: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="SET NULL")
    )
    last_sync: Mapped[datetime | None] = mapped_column(UTCDateTime)
