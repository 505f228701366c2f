"""leads: the needs-action index in the list's whole order (next action, longest waiting, id),
so the sidebar reads a page instead of sorting every flagged lead

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = sa.text("deleted_at IS NULL")


def _index(*columns: str) -> None:
    op.drop_index("ix_leads_org_needs_action", table_name="leads")
    op.create_index(
        "ix_leads_org_needs_action",
        "leads",
        list(columns),
        postgresql_where=_LIVE,
        sqlite_where=_LIVE,
    )


def upgrade() -> None:
    _index("organization_id", "needs_action", "next_action_at", "created_at", "id")


def downgrade() -> None:
    _index("organization_id", "needs_action", "next_action_at")
