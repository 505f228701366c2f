"""lead_status_history: drop the (lead, stage) index no query reads any more

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-05 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # It answered "has this lead ever reached a stage" from the index alone; the stages a
    # lead has reached are kept on the lead (`leads.stages_reached`) since 0022, so only
    # its upkeep was left: one more index entry for every status change, imports included.
    # A report's "won at" reads the lead's few rows through (lead_id, created_at).
    op.drop_index("ix_lead_status_history_lead_status", table_name="lead_status_history")


def downgrade() -> None:
    op.create_index(
        "ix_lead_status_history_lead_status", "lead_status_history", ["lead_id", "to_status"]
    )
