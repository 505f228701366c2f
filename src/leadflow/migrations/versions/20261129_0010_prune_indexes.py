"""indexes for the pruning job

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-29 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The daily prune selects expired rows by these columns a batch at a time; without an
    # index every batch would scan the whole table.
    op.create_index("ix_auth_sessions_expires_at", "auth_sessions", ["expires_at"])
    op.create_index("ix_auth_sessions_revoked_at", "auth_sessions", ["revoked_at"])
    op.create_index("ix_outbox_sent_at", "outbox", ["sent_at"])
    op.create_index("ix_call_request_events_created_at", "call_request_events", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_call_request_events_created_at", table_name="call_request_events")
    op.drop_index("ix_outbox_sent_at", table_name="outbox")
    op.drop_index("ix_auth_sessions_revoked_at", table_name="auth_sessions")
    op.drop_index("ix_auth_sessions_expires_at", table_name="auth_sessions")
