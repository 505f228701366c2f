"""Import queries: batches, their stored files, row errors and undo records, and lead writes."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ARRAY,
    Row,
    Select,
    String,
    any_,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.import_batch import ImportBatch, ImportFileChunk, ImportRowError, ImportUpdate
from leadflow.models.lead import Lead
from leadflow.models.lead_history import LeadAssignment
from leadflow.models.pipeline_stage import PipelineStage

_COPY_COLUMNS = (
    "id",
    "organization_id",
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "company",
    "channel",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "status",
    "tags",
    "assignee_id",
    "created_by",
    "disg_type",
    "notes",
    "custom",
    "score",
    "needs_action",
    "next_action_at",
    "next_action_description",
    "last_contacted_at",
    "import_batch_id",
    "analyzed_at",
    "search_text",
    "version",
    "created_at",
    "updated_at",
)
_JSON_AT = tuple(_COPY_COLUMNS.index(c) for c in ("tags", "custom"))
_GIN_INDEXES = ("pgx_leads_search_trgm", "pgx_leads_tags")


# ---- leads ----------------------------------------------------------------------------------


async def pipeline_stages(session: AsyncSession, org_id: uuid.UUID) -> list[PipelineStage]:
    """The organisation's stages by position."""
    return list(
        await session.scalars(
            select(PipelineStage)
            .where(PipelineStage.organization_id == org_id)
            .order_by(PipelineStage.position)
        )
    )


async def existing_ids(
    session: AsyncSession, org_id: uuid.UUID, emails: list[str], phones: list[str]
) -> tuple[dict[str, uuid.UUID], dict[str, uuid.UUID]]:
    """Ids of live leads with one of these emails / phones (first match per value)."""
    conds = []
    # One array parameter per list on PostgreSQL: a 4,000-element IN list costs more to
    # compile and plan than to run.
    pg = session.get_bind().dialect.name == "postgresql"
    if emails:
        conds.append(
            Lead.email == any_(literal(emails, ARRAY(String))) if pg else Lead.email.in_(emails)
        )
    if phones:
        conds.append(
            Lead.phone == any_(literal(phones, ARRAY(String))) if pg else Lead.phone.in_(phones)
        )
    if not conds:
        return {}, {}
    rows = await session.execute(
        select(Lead.id, Lead.email, Lead.phone).where(
            Lead.organization_id == org_id, Lead.deleted_at.is_(None), or_(*conds)
        )
    )
    by_email: dict[str, uuid.UUID] = {}
    by_phone: dict[str, uuid.UUID] = {}
    for lead_id, email, phone in rows.all():
        if email:
            by_email.setdefault(email, lead_id)
        if phone:
            by_phone.setdefault(phone, lead_id)
    return by_email, by_phone


def _json_text(value: Any) -> str:
    if not value:
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value)


async def insert_leads(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert lead records (COPY on PostgreSQL)."""
    if not rows:
        return
    conn = await session.connection()
    if conn.dialect.name == "postgresql":
        # COPY through the session's own connection: same transaction, ~10x faster than INSERT.
        raw = await conn.get_raw_connection()
        records = []
        for r in rows:
            record = [r.get(c) for c in _COPY_COLUMNS]
            for i in _JSON_AT:
                record[i] = _json_text(record[i])
            records.append(record)
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            "leads", records=records, columns=_COPY_COLUMNS
        )
    else:
        await session.execute(insert(Lead), rows)


async def insert_assignments(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert assignment history rows."""
    await session.execute(insert(LeadAssignment), rows)


async def remove_batch_leads(
    session: AsyncSession, org_id: uuid.UUID, batch_id: uuid.UUID, now: datetime
) -> int:
    """Soft-delete the live leads a batch created; how many."""
    removed = await session.execute(
        update(Lead)
        .where(
            Lead.organization_id == org_id,
            Lead.import_batch_id == batch_id,
            Lead.deleted_at.is_(None),
        )
        .values(deleted_at=now, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return getattr(removed, "rowcount", 0)


async def flush_search_indexes(session: AsyncSession) -> None:
    """Merge the GIN pending lists now, so searches do not scan a long unsorted list."""
    for name in _GIN_INDEXES:
        await session.execute(
            sql_text("SELECT gin_clean_pending_list(to_regclass(:name))"), {"name": name}
        )


async def analyze_lead_table(session: AsyncSession) -> None:
    """Refresh the planner statistics of `leads` (PostgreSQL)."""
    await session.execute(sql_text("ANALYZE leads"))


async def imported_from(
    session: AsyncSession, lead_id: uuid.UUID
) -> Row[uuid.UUID | None, datetime, uuid.UUID | None, str | None] | None:
    """Batch id, created at, created by and file name of an imported lead."""
    return (
        await session.execute(
            select(Lead.import_batch_id, Lead.created_at, Lead.created_by, ImportBatch.filename)
            .join(ImportBatch, ImportBatch.id == Lead.import_batch_id)
            .where(Lead.id == lead_id)
        )
    ).first()


# ---- batches --------------------------------------------------------------------------------


async def batch_in_org(
    session: AsyncSession, org_id: uuid.UUID, batch_id: uuid.UUID
) -> ImportBatch | None:
    """A batch of the organisation."""
    return await session.scalar(
        select(ImportBatch).where(ImportBatch.id == batch_id, ImportBatch.organization_id == org_id)
    )


async def list_batches(
    session: AsyncSession, org_id: uuid.UUID, limit: int, offset: int
) -> tuple[list[ImportBatch], int]:
    """Batches of the organisation, newest first, and their total."""
    conds = [ImportBatch.organization_id == org_id]
    total = await session.scalar(select(func.count()).select_from(ImportBatch).where(*conds))
    rows = await session.scalars(
        select(ImportBatch)
        .where(*conds)
        .order_by(ImportBatch.created_at.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def claim_batch(
    session: AsyncSession, batch_id: uuid.UUID, now: datetime, lease: timedelta
) -> bool:
    """Mark a pending batch, or a running one whose lease expired, as running; True if won."""
    claimed = await session.execute(
        update(ImportBatch)
        .where(
            ImportBatch.id == batch_id,
            ImportBatch.status.in_(("pending", "running")),
            or_(ImportBatch.status == "pending", ImportBatch.updated_at < now - lease),
        )
        .values(status="running", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return getattr(claimed, "rowcount", 0) == 1


async def stale_batch_ids(session: AsyncSession, cutoff: datetime) -> list[uuid.UUID]:
    """Background batches not finished and not touched since `cutoff`."""
    return list(
        await session.scalars(
            select(ImportBatch.id).where(
                ImportBatch.status.in_(("pending", "running")),
                ImportBatch.is_async.is_(True),
                ImportBatch.updated_at < cutoff,
            )
        )
    )


async def file_chunk_seqs(session: AsyncSession, batch_id: uuid.UUID) -> list[int]:
    """Sequence numbers of a batch's stored file pieces, in order."""
    return list(
        await session.scalars(
            select(ImportFileChunk.seq)
            .where(ImportFileChunk.batch_id == batch_id)
            .order_by(ImportFileChunk.seq)
        )
    )


async def file_chunk_data(session: AsyncSession, batch_id: uuid.UUID, seq: int) -> bytes | None:
    """One stored file piece."""
    return await session.scalar(
        select(ImportFileChunk.data).where(
            ImportFileChunk.batch_id == batch_id, ImportFileChunk.seq == seq
        )
    )


async def expired_file_batch_ids(
    session: AsyncSession, cutoff: datetime, limit: int
) -> list[uuid.UUID]:
    """Finished batches (before `cutoff`) that still have stored file pieces."""
    has_file = select(ImportFileChunk.batch_id).where(ImportFileChunk.batch_id == ImportBatch.id)
    return list(
        await session.scalars(
            select(ImportBatch.id)
            .where(
                ImportBatch.status.not_in(("pending", "running")),
                ImportBatch.finished_at.is_not(None),
                ImportBatch.finished_at < cutoff,
                has_file.exists(),
            )
            .limit(limit)
        )
    )


async def delete_file_chunks(session: AsyncSession, batch_ids: list[uuid.UUID]) -> None:
    """Drop the stored file of these batches."""
    await session.execute(
        delete(ImportFileChunk)
        .where(ImportFileChunk.batch_id.in_(batch_ids))
        .execution_options(synchronize_session=False)
    )


async def insert_row_errors(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert failed-row records."""
    await session.execute(insert(ImportRowError), rows)


async def row_errors(
    session: AsyncSession, batch_id: uuid.UUID, limit: int | None = None
) -> list[ImportRowError]:
    """A batch's failed rows by row number (the first `limit`, or all)."""
    stmt = (
        select(ImportRowError)
        .where(ImportRowError.batch_id == batch_id)
        .order_by(ImportRowError.row)
    )
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(await session.scalars(stmt))


def row_errors_query(batch_id: uuid.UUID) -> Select[tuple[int, str, list[Any]]]:
    """Row number, message and original values of a batch's stored failed rows, in order."""
    return (
        select(ImportRowError.row, ImportRowError.message, ImportRowError.raw)
        .where(ImportRowError.batch_id == batch_id)
        .order_by(ImportRowError.row, ImportRowError.id)
    )


async def stored_error_counts(
    session: AsyncSession, batch_ids: list[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Stored failed rows per batch (batches without any are left out)."""
    if not batch_ids:
        return {}
    rows = await session.execute(
        select(ImportRowError.batch_id, func.count())
        .where(ImportRowError.batch_id.in_(batch_ids))
        .group_by(ImportRowError.batch_id)
    )
    return {batch_id: int(n) for batch_id, n in rows.all()}


async def import_updates(session: AsyncSession, batch_id: uuid.UUID) -> list[ImportUpdate]:
    """The before-images a batch recorded for the leads it updated."""
    return list(
        await session.scalars(select(ImportUpdate).where(ImportUpdate.batch_id == batch_id))
    )


async def delete_import_updates(session: AsyncSession, batch_id: uuid.UUID) -> None:
    """Drop a batch's before-images."""
    await session.execute(delete(ImportUpdate).where(ImportUpdate.batch_id == batch_id))
