"""analytics: lead rollups per local day and per stage, kept by triggers

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NIL = "'00000000-0000-0000-0000-000000000000'::uuid"
_VALUE = (
    "CASE WHEN jsonb_typeof({t}.custom -> 'value') = 'number'"
    " THEN ({t}.custom ->> 'value')::numeric END"
)

# One statement-level function for INSERT, UPDATE and DELETE (COPY fires it too). It appends
# the signed difference per combination to the delta table: nothing is updated in place, so
# concurrent writers never wait for each other here. The shared advisory lock per
# organisation lets a rebuild (which takes it exclusively) see every writer finished. It runs
# as the tables' owner (SECURITY DEFINER, with the search path of the migration): a role that
# may write leads needs no rights on the rollup tables.
_FUNCTION = f"""
CREATE OR REPLACE FUNCTION leadflow_lead_rollup() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path FROM CURRENT AS $fn$
BEGIN
  IF TG_OP = 'INSERT' THEN
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('lead_rollup:' || o, 0))
      FROM (SELECT DISTINCT organization_id::text AS o FROM new_rows) s;
    INSERT INTO lead_rollup_deltas
      (organization_id, day, assignee_id, created_by, source, status, leads, value)
    SELECT n.organization_id, (n.created_at AT TIME ZONE z.timezone)::date,
           coalesce(n.assignee_id, {_NIL}), coalesce(n.created_by, {_NIL}),
           coalesce(n.source, ''), n.status, count(*), sum({_VALUE.format(t="n")})
      FROM new_rows n JOIN lead_rollup_zones z ON z.organization_id = n.organization_id
     WHERE n.deleted_at IS NULL
     GROUP BY 1, 2, 3, 4, 5, 6;
  ELSIF TG_OP = 'UPDATE' THEN
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('lead_rollup:' || o, 0))
      FROM (SELECT DISTINCT organization_id::text AS o FROM new_rows) s;
    INSERT INTO lead_rollup_deltas
      (organization_id, day, assignee_id, created_by, source, status, leads, value)
    SELECT d.organization_id, (d.created_at AT TIME ZONE z.timezone)::date,
           coalesce(d.assignee_id, {_NIL}), coalesce(d.created_by, {_NIL}),
           coalesce(d.source, ''), d.status, sum(d.sign), sum(d.sign * d.value)
      FROM (
        SELECT n.organization_id, n.created_at, n.assignee_id, n.created_by, n.source,
               n.status, 1 AS sign, {_VALUE.format(t="n")} AS value
          FROM new_rows n WHERE n.deleted_at IS NULL
        UNION ALL
        SELECT o.organization_id, o.created_at, o.assignee_id, o.created_by, o.source,
               o.status, -1, {_VALUE.format(t="o")}
          FROM old_rows o WHERE o.deleted_at IS NULL
      ) d JOIN lead_rollup_zones z ON z.organization_id = d.organization_id
     GROUP BY 1, 2, 3, 4, 5, 6
    HAVING sum(d.sign) <> 0 OR coalesce(sum(d.sign * d.value), 0) <> 0;
  ELSE
    PERFORM pg_advisory_xact_lock_shared(hashtextextended('lead_rollup:' || o, 0))
      FROM (SELECT DISTINCT organization_id::text AS o FROM old_rows) s;
    INSERT INTO lead_rollup_deltas
      (organization_id, day, assignee_id, created_by, source, status, leads, value)
    SELECT o.organization_id, (o.created_at AT TIME ZONE z.timezone)::date,
           coalesce(o.assignee_id, {_NIL}), coalesce(o.created_by, {_NIL}),
           coalesce(o.source, ''), o.status, -count(*), -sum({_VALUE.format(t="o")})
      FROM old_rows o JOIN lead_rollup_zones z ON z.organization_id = o.organization_id
     WHERE o.deleted_at IS NULL
     GROUP BY 1, 2, 3, 4, 5, 6;
  END IF;
  RETURN NULL;
END
$fn$
"""  # noqa: S608 (constant fragments)

_TRIGGERS = (
    "CREATE TRIGGER leads_rollup_insert AFTER INSERT ON leads"
    " REFERENCING NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION leadflow_lead_rollup()",
    "CREATE TRIGGER leads_rollup_update AFTER UPDATE ON leads"
    " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION leadflow_lead_rollup()",
    "CREATE TRIGGER leads_rollup_delete AFTER DELETE ON leads"
    " REFERENCING OLD TABLE AS old_rows"
    " FOR EACH STATEMENT EXECUTE FUNCTION leadflow_lead_rollup()",
)

_ZONES = """
INSERT INTO lead_rollup_zones (organization_id, timezone)
SELECT id, tz FROM (
  SELECT id, coalesce(settings -> 'calendar' ->> 'timezone', 'Europe/Berlin') AS tz
    FROM organizations
) o WHERE tz IN (SELECT name FROM pg_timezone_names)
"""

_BACKFILL_DAYS = f"""
INSERT INTO lead_rollup_days (organization_id, day, assignee_id, created_by, leads)
SELECT l.organization_id, (l.created_at AT TIME ZONE z.timezone)::date,
       coalesce(l.assignee_id, {_NIL}), coalesce(l.created_by, {_NIL}), count(*)
  FROM leads l JOIN lead_rollup_zones z ON z.organization_id = l.organization_id
 WHERE l.deleted_at IS NULL
 GROUP BY 1, 2, 3, 4
"""  # noqa: S608
_BACKFILL_STAGES = f"""
INSERT INTO lead_rollup_stages
  (organization_id, assignee_id, created_by, source, status, leads, value)
SELECT l.organization_id, coalesce(l.assignee_id, {_NIL}), coalesce(l.created_by, {_NIL}),
       coalesce(l.source, ''), l.status, count(*), sum({_VALUE.format(t="l")})
  FROM leads l JOIN lead_rollup_zones z ON z.organization_id = l.organization_id
 WHERE l.deleted_at IS NULL
 GROUP BY 1, 2, 3, 4, 5
"""  # noqa: S608


def _org_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["organization_id"],
        ["organizations.id"],
        name=op.f(f"fk_{table}_organization_id_organizations"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "lead_rollup_days",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("assignee_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("leads", sa.Integer(), nullable=False),
        _org_fk("lead_rollup_days"),
        sa.PrimaryKeyConstraint(
            "organization_id", "day", "assignee_id", "created_by", name=op.f("pk_lead_rollup_days")
        ),
    )
    op.create_table(
        "lead_rollup_stages",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("assignee_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("leads", sa.Integer(), nullable=False),
        sa.Column("value", sa.Numeric(), nullable=True),
        _org_fk("lead_rollup_stages"),
        sa.PrimaryKeyConstraint(
            "organization_id",
            "assignee_id",
            "created_by",
            "source",
            "status",
            name=op.f("pk_lead_rollup_stages"),
        ),
    )
    op.create_table(
        "lead_rollup_deltas",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("assignee_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("source", sa.String(length=120), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("leads", sa.Integer(), nullable=False),
        sa.Column("value", sa.Numeric(), nullable=True),
        _org_fk("lead_rollup_deltas"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lead_rollup_deltas")),
    )
    op.create_index("ix_lead_rollup_deltas_org", "lead_rollup_deltas", ["organization_id"])
    op.create_table(
        "lead_rollup_zones",
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        _org_fk("lead_rollup_zones"),
        sa.PrimaryKeyConstraint("organization_id", name=op.f("pk_lead_rollup_zones")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_FUNCTION)
        for statement in _TRIGGERS:
            op.execute(statement)
        op.execute(_ZONES)
        op.execute(_BACKFILL_DAYS)
        op.execute(_BACKFILL_STAGES)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in ("leads_rollup_insert", "leads_rollup_update", "leads_rollup_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON leads")
        op.execute("DROP FUNCTION IF EXISTS leadflow_lead_rollup()")
    op.drop_table("lead_rollup_zones")
    op.drop_index("ix_lead_rollup_deltas_org", table_name="lead_rollup_deltas")
    op.drop_table("lead_rollup_deltas")
    op.drop_table("lead_rollup_stages")
    op.drop_table("lead_rollup_days")
