"""Login sessions and their rotating refresh tokens (stored only as hashes)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base, IdMixin
from leadflow.db.types import UTCDateTime
from leadflow.kit.clock import utcnow


class AuthSession(IdMixin, Base):
    """One login; access tokens carry its id, so revoking it ends them at once."""

    __tablename__ = "auth_sessions"
    # For the pruning of ended sessions (worker/prune.py).
    __table_args__ = (
        Index("ix_auth_sessions_expires_at", "expires_at"),
        Index("ix_auth_sessions_revoked_at", "revoked_at"),
    )

    user_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    )
    organization_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(60))
    ip: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(300))
    # Set on an impersonation: the admin acting as `user_id` (no refresh tokens, short expiry).
    # No foreign key (as the audit's actor ids): users are never deleted, only deactivated, and
    # adding one would make SQLite rebuild the table, cascading into its refresh tokens.
    impersonator_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)


class RefreshToken(IdMixin, Base):
    """A refresh token of a session; used once, then replaced."""

    __tablename__ = "refresh_tokens"

    session_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("auth_sessions.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, nullable=False)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
