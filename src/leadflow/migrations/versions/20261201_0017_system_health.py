"""system health: request samples per minute and route group, the worker's minute samples,
worker heartbeats; a partial index on failed outbox rows (counted every minute)

Revision ID: 0017
Revises: 0019
Create Date: 2026-12-01 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import leadflow.db.types

revision: str = "0017"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "health_samples",
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("metric", sa.String(length=40), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_health_samples")),
        sa.UniqueConstraint("metric", "minute", name=op.f("uq_health_samples_metric_minute")),
    )
    with op.batch_alter_table("health_samples", schema=None) as batch_op:
        batch_op.create_index("ix_health_samples_minute", ["minute"], unique=False)

    op.create_table(
        "request_samples",
        sa.Column("minute", sa.BigInteger(), nullable=False),
        sa.Column("route_group", sa.String(length=60), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("latency_ms_sum", sa.Float(), nullable=False),
        sa.Column("le_5ms", sa.BigInteger(), nullable=False),
        sa.Column("le_10ms", sa.BigInteger(), nullable=False),
        sa.Column("le_25ms", sa.BigInteger(), nullable=False),
        sa.Column("le_50ms", sa.BigInteger(), nullable=False),
        sa.Column("le_75ms", sa.BigInteger(), nullable=False),
        sa.Column("le_100ms", sa.BigInteger(), nullable=False),
        sa.Column("le_150ms", sa.BigInteger(), nullable=False),
        sa.Column("le_250ms", sa.BigInteger(), nullable=False),
        sa.Column("le_400ms", sa.BigInteger(), nullable=False),
        sa.Column("le_600ms", sa.BigInteger(), nullable=False),
        sa.Column("le_1000ms", sa.BigInteger(), nullable=False),
        sa.Column("le_1500ms", sa.BigInteger(), nullable=False),
        sa.Column("le_2500ms", sa.BigInteger(), nullable=False),
        sa.Column("le_5000ms", sa.BigInteger(), nullable=False),
        sa.Column("le_10000ms", sa.BigInteger(), nullable=False),
        sa.Column("le_inf", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_request_samples")),
        sa.UniqueConstraint(
            "minute", "route_group", name=op.f("uq_request_samples_minute_route_group")
        ),
    )
    op.create_table(
        "worker_heartbeats",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("started_at", leadflow.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", leadflow.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_worker_heartbeats")),
        sa.UniqueConstraint("name", name=op.f("uq_worker_heartbeats_name")),
    )
    with op.batch_alter_table("worker_heartbeats", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_worker_heartbeats_last_seen_at"), ["last_seen_at"], unique=False
        )

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.create_index(
            "ix_outbox_failed",
            ["kind"],
            unique=False,
            postgresql_where=sa.text("status = 'failed'"),
            sqlite_where=sa.text("status = 'failed'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_outbox_failed",
            postgresql_where=sa.text("status = 'failed'"),
            sqlite_where=sa.text("status = 'failed'"),
        )

    with op.batch_alter_table("worker_heartbeats", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_worker_heartbeats_last_seen_at"))

    op.drop_table("worker_heartbeats")
    op.drop_table("request_samples")
    with op.batch_alter_table("health_samples", schema=None) as batch_op:
        batch_op.drop_index("ix_health_samples_minute")

    op.drop_table("health_samples")
