"""outbox: the error of each failed attempt, not only the last; webhook deliveries: a partial
index of the claimed test events (the worker's scan for abandoned ones)

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TEST_CLAIMS = sa.text("event_type = 'webhook.test' AND status IN ('pending', 'retry')")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("errors", _JSON, nullable=True))
    op.create_index(
        "ix_webhook_deliveries_test_claims",
        "webhook_deliveries",
        ["locked_until"],
        postgresql_where=_TEST_CLAIMS,
        sqlite_where=_TEST_CLAIMS,
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_test_claims", table_name="webhook_deliveries")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("errors")
