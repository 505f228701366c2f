"""report_runs: a partial index of the running runs for the worker's stale-run scans

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RUNNING = sa.text("status = 'running'")


def upgrade() -> None:
    op.create_index(
        "ix_report_runs_running",
        "report_runs",
        ["created_at"],
        postgresql_where=_RUNNING,
        sqlite_where=_RUNNING,
    )


def downgrade() -> None:
    op.drop_index("ix_report_runs_running", table_name="report_runs")
