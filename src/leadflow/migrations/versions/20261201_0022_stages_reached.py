"""leads: the stages each lead has been in, kept on the lead (funnel and won without history);
the creation-order index carries what analytics group a period's new leads by (PostgreSQL)

Revision ID: 0022
Revises: 0016
Create Date: 2026-12-01 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0022"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LIVE = "deleted_at IS NULL"
_COHORT = ["assignee_id", "created_by", "source", "status", "stages_reached"]


def _created_index(include: list[str]) -> None:
    op.drop_index("ix_leads_org_created", table_name="leads")
    op.create_index(
        "ix_leads_org_created",
        "leads",
        ["organization_id", "created_at", "id"],
        postgresql_where=sa.text(_LIVE),
        sqlite_where=sa.text(_LIVE),
        postgresql_include=include,
    )


_BACKFILL_PG = """
UPDATE leads l SET stages_reached = ',' || s.keys || ','
  FROM (
    SELECT lead_id, string_agg(DISTINCT status, ',' ORDER BY status) AS keys
      FROM (
        SELECT lead_id, to_status AS status FROM lead_status_history
        UNION ALL
        SELECT id, status FROM leads
      ) u
     GROUP BY lead_id
  ) s
 WHERE s.lead_id = l.id
"""
_BACKFILL_SQLITE = """
UPDATE leads SET stages_reached = ',' || (
  SELECT group_concat(s, ',') FROM (
    SELECT to_status AS s FROM lead_status_history WHERE lead_id = leads.id
    UNION
    SELECT leads.status
    ORDER BY 1
  )
) || ','
"""


def upgrade() -> None:
    op.add_column(
        "leads", sa.Column("stages_reached", sa.Text(), nullable=False, server_default="")
    )
    if op.get_bind().dialect.name == "postgresql":
        # The column is not part of the lead rollups: spare their trigger a no-op pass over
        # every lead.
        op.execute("ALTER TABLE leads DISABLE TRIGGER leads_rollup_update")
        op.execute(_BACKFILL_PG)
        op.execute("ALTER TABLE leads ENABLE TRIGGER leads_rollup_update")
        _created_index(_COHORT)
    else:
        op.execute(_BACKFILL_SQLITE)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _created_index([])
    with op.batch_alter_table("leads") as batch:
        batch.drop_column("stages_reached")
