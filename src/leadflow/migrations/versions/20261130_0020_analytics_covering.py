"""analytics: a period's status moves and interactions from the index alone (PostgreSQL)

Revision ID: 0020
Revises: 0017
Create Date: 2026-11-30 05:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _indexes(include: bool) -> None:
    op.create_index(
        "ix_lead_status_history_org_status",
        "lead_status_history",
        ["organization_id", "to_status", "created_at"],
        postgresql_include=["lead_id"] if include else [],
    )
    op.create_index(
        "ix_interactions_org_occurred",
        "interactions",
        ["organization_id", "occurred_at"],
        postgresql_include=["actor_user_id", "lead_id"] if include else [],
    )


def _drop() -> None:
    op.drop_index("ix_interactions_org_occurred", table_name="interactions")
    op.drop_index("ix_lead_status_history_org_status", table_name="lead_status_history")


def upgrade() -> None:
    # Enrollments read the moves into won of a period and then their leads; counselor
    # performance the period's interactions by who logged them. With the lead (and the
    # actor) in the index neither visits the history or interactions table.
    _drop()
    _indexes(include=True)


def downgrade() -> None:
    _drop()
    _indexes(include=False)
