"""Role: a named set of permissions with a row scope, per organisation."""

from __future__ import annotations

import uuid

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin, TimestampMixin
from leadflow.db.types import JSONType


class Role(IdMixin, TimestampMixin, Base):
    """System roles (admin, manager, counselor, viewer) and custom ones."""

    __tablename__ = "roles"
    __table_args__ = (UniqueConstraint("organization_id", "name"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    name: Mapped[str] = mapped_column(String(60), nullable=False)
    description: Mapped[str] = mapped_column(String(300), default="", nullable=False)
    permissions: Mapped[list[str]] = mapped_column(JSONType, default=list, nullable=False)
    row_scope: Mapped[str] = mapped_column(String(10), default="own", nullable=False)
    is_system: Mapped[bool] = mapped_column(Boolean, default=False, nullable=False)
