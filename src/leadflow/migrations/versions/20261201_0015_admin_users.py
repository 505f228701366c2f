"""admin users: phone, invitations, impersonation sessions, impersonator in audit rows

Revision ID: 0015
Revises: 0020
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import leadflow.db.types

revision: str = "0015"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("phone", sa.String(length=40), nullable=True))
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("impersonator_id", sa.Uuid(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_auth_sessions_impersonator_id"), ["impersonator_id"], unique=False
        )
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("impersonator_user_id", sa.Uuid(), nullable=True))
    op.create_table(
        "user_invitations",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("invited_by", sa.Uuid(), nullable=True),
        sa.Column("created_at", leadflow.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", leadflow.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("used_at", leadflow.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", leadflow.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["invited_by"],
            ["users.id"],
            name=op.f("fk_user_invitations_invited_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_user_invitations_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_user_invitations_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_user_invitations_token_hash")),
    )
    op.create_index("ix_user_invitations_user_id", "user_invitations", ["user_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_user_invitations_user_id", table_name="user_invitations")
    op.drop_table("user_invitations")
    with op.batch_alter_table("audit_logs", schema=None) as batch_op:
        batch_op.drop_column("impersonator_user_id")
    with op.batch_alter_table("auth_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_auth_sessions_impersonator_id"))
        batch_op.drop_column("impersonator_id")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("phone")
