"""leads (SQLite): an index the text search scans instead of the rows

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return  # PostgreSQL searches through its trigram index (pgx_leads_search_trgm)
    # SQLite has no substring index: `q` is a LIKE over every live lead of the organisation.
    # Without this index it walked an organisation index and read each table row (wide: notes,
    # custom fields, tags) to test its search_text; here it tests the index entries, and the
    # id and created_at (the default sort) a match needs are in the entry too, so the rows
    # are read only for the page. Named sqx_* so autogenerate (portable models) ignores it.
    op.execute(
        "CREATE INDEX sqx_leads_search ON leads "
        "(organization_id, search_text, created_at, id) WHERE deleted_at IS NULL"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP INDEX IF EXISTS sqx_leads_search")
