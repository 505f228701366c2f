"""status history by lead and stage, for "has this lead ever reached stage X"

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 03:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Analytics ask, per lead of a period, whether it ever reached a won stage and which
    # stages it passed. (lead_id, created_at) needs a table visit for every history row to
    # read to_status; this answers both from the index alone (funnel at 1M leads: 1.0 s ->
    # 0.2-0.3 s, the won lookup of the KPIs: 0.27 s -> 0.06 s).
    op.create_index(
        "ix_lead_status_history_lead_status", "lead_status_history", ["lead_id", "to_status"]
    )


def downgrade() -> None:
    op.drop_index("ix_lead_status_history_lead_status", table_name="lead_status_history")
