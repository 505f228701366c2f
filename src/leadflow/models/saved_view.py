"""Saved views of the lead list: a user's named query strings of the list's filters."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin, TimestampMixin


class SavedView(IdMixin, TimestampMixin, Base):
    """A named lead list view of one user; `query` is the list's query string (filters, sort),
    checked with the list's filter whenever it is saved or opened."""

    __tablename__ = "saved_views"
    # The unique (user, name) also serves a user's views in name order.
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False, index=True
    )
    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False
    )
    name: Mapped[str] = mapped_column(String(100), nullable=False)
    query: Mapped[str] = mapped_column(Text, nullable=False)
