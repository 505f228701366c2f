"""indexes for analytics

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SLA_MET = "sla_met_at IS NOT NULL AND deleted_at IS NULL"
_SLA_CLOCK = "sla_deadline IS NOT NULL AND deleted_at IS NULL"


def upgrade() -> None:
    # Analytics read a period's rows by these times; without them every figure of a month
    # would scan the whole organisation's leads, status history or interactions.
    op.create_index(
        "ix_leads_org_sla_met",
        "leads",
        ["organization_id", "sla_met_at"],
        postgresql_where=sa.text(_SLA_MET),
        sqlite_where=sa.text(_SLA_MET),
    )
    op.create_index(
        "ix_leads_org_sla_deadline",
        "leads",
        ["organization_id", "sla_deadline"],
        postgresql_where=sa.text(_SLA_CLOCK),
        sqlite_where=sa.text(_SLA_CLOCK),
    )
    op.create_index(
        "ix_lead_status_history_org_status",
        "lead_status_history",
        ["organization_id", "to_status", "created_at"],
    )
    op.create_index(
        "ix_interactions_org_occurred", "interactions", ["organization_id", "occurred_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_interactions_org_occurred", table_name="interactions")
    op.drop_index("ix_lead_status_history_org_status", table_name="lead_status_history")
    op.drop_index("ix_leads_org_sla_deadline", table_name="leads")
    op.drop_index("ix_leads_org_sla_met", table_name="leads")
