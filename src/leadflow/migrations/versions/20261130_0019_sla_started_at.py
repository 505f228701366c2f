"""analytics: when a lead's SLA clock started, and covering indexes for a period's clocks

Revision ID: 0019
Revises: 0014
Create Date: 2026-11-30 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import leadflow.db.types

revision: str = "0019"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SLA_MET = "sla_met_at IS NOT NULL AND deleted_at IS NULL"
_SLA_CLOCK = "sla_deadline IS NOT NULL AND deleted_at IS NULL"

# Every assignment to somebody starts a fresh clock, so a clock's start is the lead's latest
# such assignment (up to the response, when there was one).
_BACKFILL = """
UPDATE leads SET sla_started_at = (
  SELECT max(a.created_at) FROM lead_assignments a
   WHERE a.lead_id = leads.id AND a.to_user_id IS NOT NULL
     AND (leads.sla_met_at IS NULL OR a.created_at <= leads.sla_met_at)
) WHERE sla_deadline IS NOT NULL
"""


def _indexes(include: bool) -> None:
    op.create_index(
        "ix_leads_org_sla_met",
        "leads",
        ["organization_id", "sla_met_at"],
        postgresql_where=sa.text(_SLA_MET),
        sqlite_where=sa.text(_SLA_MET),
        postgresql_include=(
            ["sla_started_at", "sla_deadline", "assignee_id", "created_by"] if include else []
        ),
    )
    op.create_index(
        "ix_leads_org_sla_deadline",
        "leads",
        ["organization_id", "sla_deadline"],
        postgresql_where=sa.text(_SLA_CLOCK),
        sqlite_where=sa.text(_SLA_CLOCK),
        postgresql_include=["sla_met_at", "assignee_id", "created_by"] if include else [],
    )


def upgrade() -> None:
    with op.batch_alter_table("leads") as batch_op:
        batch_op.add_column(
            sa.Column("sla_started_at", leadflow.db.types.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(_BACKFILL)
    op.drop_index("ix_leads_org_sla_deadline", table_name="leads")
    op.drop_index("ix_leads_org_sla_met", table_name="leads")
    _indexes(include=True)


def downgrade() -> None:
    op.drop_index("ix_leads_org_sla_deadline", table_name="leads")
    op.drop_index("ix_leads_org_sla_met", table_name="leads")
    _indexes(include=False)
    with op.batch_alter_table("leads") as batch_op:
        batch_op.drop_column("sla_started_at")
