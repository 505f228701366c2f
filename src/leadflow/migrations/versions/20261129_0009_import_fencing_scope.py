"""import batches: claim token, importer scope; row error codes

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29 22:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("import_batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("row_scope", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("team_id", sa.Uuid(), nullable=True))
    with op.batch_alter_table("import_errors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("code", sa.String(length=40), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("import_errors", schema=None) as batch_op:
        batch_op.drop_column("code")
    with op.batch_alter_table("import_batches", schema=None) as batch_op:
        batch_op.drop_column("team_id")
        batch_op.drop_column("row_scope")
        batch_op.drop_column("claim_token")
