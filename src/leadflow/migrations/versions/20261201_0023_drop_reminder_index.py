"""leads: drop the SLA reminder index (the planner answers the due-reminder scan from the
open-deadline index, which holds the same running clocks)

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

_SLA_REMIND = (
    "sla_reminder_at IS NOT NULL AND sla_reminded_at IS NULL "
    "AND sla_met_at IS NULL AND sla_breached_at IS NULL AND deleted_at IS NULL"
)


def upgrade() -> None:
    op.drop_index("ix_leads_sla_reminder_due", table_name="leads")


def downgrade() -> None:
    op.create_index(
        "ix_leads_sla_reminder_due",
        "leads",
        ["sla_reminder_at"],
        postgresql_where=sa.text(_SLA_REMIND),
        sqlite_where=sa.text(_SLA_REMIND),
    )
