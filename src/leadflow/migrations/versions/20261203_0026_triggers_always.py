"""triggers that keep data (lead rollups, append-only audit) fire in every replication role

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-03 10:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRIGGERS = (
    ("leads", "leads_rollup_insert"),
    ("leads", "leads_rollup_update"),
    ("leads", "leads_rollup_delete"),
    ("audit_logs", "audit_logs_append_only"),
)


def upgrade() -> None:
    # A bulk COPY checks its foreign keys with one query per statement and switches
    # PostgreSQL's per-row checks off (`session_replication_role = replica`, which skips
    # triggers enabled for the origin role only: db.dialect.bulk_insert). These triggers
    # must fire anyway.
    if op.get_bind().dialect.name == "postgresql":
        for table, name in _TRIGGERS:
            op.execute(f"ALTER TABLE {table} ENABLE ALWAYS TRIGGER {name}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, name in _TRIGGERS:
            op.execute(f"ALTER TABLE {table} ENABLE TRIGGER {name}")
