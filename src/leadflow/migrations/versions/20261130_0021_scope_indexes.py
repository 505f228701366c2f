"""analytics: lead ids by assignee from the index alone, and an index of deleted leads

Revision ID: 0021
Revises: 0015
Create Date: 2026-11-30 05:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "deleted_at IS NULL"
_DELETED = "deleted_at IS NOT NULL"


def _assignee_index(include: bool) -> None:
    op.create_index(
        "ix_leads_org_assignee_created",
        "leads",
        ["organization_id", "assignee_id", "created_at"],
        postgresql_where=sa.text(_LIVE),
        sqlite_where=sa.text(_LIVE),
        postgresql_include=["id"] if include else [],
    )


def upgrade() -> None:
    # Counselor and team figures (interactions on the leads in scope) need the ids of the
    # scope's leads: with the id in the index they come without visiting the table.
    op.drop_index("ix_leads_org_assignee_created", table_name="leads")
    _assignee_index(include=True)
    # Organisation-wide figures leave out the deleted leads; without an index finding those
    # few meant reading every lead.
    op.create_index(
        "ix_leads_org_deleted",
        "leads",
        ["organization_id"],
        postgresql_where=sa.text(_DELETED),
        sqlite_where=sa.text(_DELETED),
    )


def downgrade() -> None:
    op.drop_index("ix_leads_org_deleted", table_name="leads")
    op.drop_index("ix_leads_org_assignee_created", table_name="leads")
    _assignee_index(include=False)
