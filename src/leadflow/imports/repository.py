"""Import queries: batches, their stored files, row errors and undo records, and lead writes."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Row,
    Select,
    case,
    delete,
    func,
    insert,
    literal,
    or_,
    select,
)
from sqlalchemy import text as sql_text
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.authz.actor import Actor
from leadflow.authz.scopes import row_scope_clause
from leadflow.db.claims import claim
from leadflow.db.dialect import dialect_name, local_settings, one_of_values
from leadflow.models.import_batch import ImportBatch, ImportFileChunk, ImportRowError, ImportUpdate
from leadflow.models.lead import Lead
from leadflow.models.pipeline_stage import PipelineStage

_GIN_INDEXES = ("pgx_leads_search_trgm", "pgx_leads_tags")
# A lead is "theirs" for a user who is its assignee or its creator (as in the leads module).
_OWNERS = (Lead.assignee_id, Lead.created_by)


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
    session: AsyncSession, actor: Actor, emails: list[str], phones: list[str]
) -> tuple[dict[str, uuid.UUID | None], dict[str, uuid.UUID | None]]:
    """Live leads of the organisation with one of these emails / phones.

    Per value: the id of a match inside the actor's row scope (preferred), or None when
    every match lies outside it (the caller must neither see nor touch those leads).
    """
    conds = []
    # One array parameter per list on PostgreSQL: a 4,000-element IN list costs more to
    # compile and plan than to run.
    dialect = dialect_name(session)
    if emails:
        conds.append(one_of_values(Lead.email, emails, dialect))
    if phones:
        conds.append(one_of_values(Lead.phone, phones, dialect))
    if not conds:
        return {}, {}
    visible = case((row_scope_clause(actor, _OWNERS), literal(1)), else_=literal(0))
    # Thousands of values make PostgreSQL price a scan of every lead of the organisation
    # (in parallel, at that) near the index probes; the probes take a few milliseconds where
    # the scan takes tens, growing with the table — an import would turn quadratic.
    # Planned for these values, whatever a bulk write earlier in the transaction set.
    async with local_settings(session, random_page_cost="1.1", plan_cache_mode="force_custom_plan"):
        rows = await session.execute(
            select(Lead.id, Lead.email, Lead.phone, visible).where(
                Lead.organization_id == actor.organization_id,
                Lead.deleted_at.is_(None),
                or_(*conds),
            )
        )
    by_email: dict[str, uuid.UUID | None] = {}
    by_phone: dict[str, uuid.UUID | None] = {}
    for lead_id, email, phone, in_scope in rows.all():
        found = lead_id if in_scope else None
        for value, seen in ((email, by_email), (phone, by_phone)):
            if value and seen.get(value) is None:
                seen[value] = found
    return by_email, by_phone


async def updated_lead_ids(
    session: AsyncSession, batch_id: uuid.UUID, ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Leads among `ids` that already have a before-image in this batch."""
    if not ids:
        return set()
    rows = await session.scalars(
        select(ImportUpdate.lead_id).where(
            ImportUpdate.batch_id == batch_id, ImportUpdate.lead_id.in_(ids)
        )
    )
    return set(rows)


async def insert_rows(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> None:
    """Insert many rows of `model` (one executemany)."""
    if rows:
        await session.execute(insert(model), rows)


async def flush_search_indexes(session: AsyncSession) -> None:
    """Merge the GIN pending lists now, so searches do not scan a long unsorted list."""
    for name in _GIN_INDEXES:
        await session.execute(
            sql_text("SELECT gin_clean_pending_list(to_regclass(:name))"), {"name": name}
        )


# What the duplicate lookup filters on: during an import only these are re-analysed (half
# the time of the whole table, whose long search text is the costly part).
LOOKUP_COLUMNS = ("organization_id", "email", "phone", "deleted_at")


async def analyze_lead_table(
    session: AsyncSession, *, lock_timeout_ms: int = 0, columns: Sequence[str] = ()
) -> None:
    """Refresh the planner statistics of `leads` (PostgreSQL), of `columns` only if given
    (the row count is refreshed either way); with a lock timeout, give up (an error) rather
    than wait longer for a VACUUM or an index build holding the table."""
    if lock_timeout_ms:
        await session.execute(sql_text(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}"))
    unknown = set(columns) - set(Lead.__table__.c.keys())
    if unknown:
        raise ValueError(f"not columns of leads: {sorted(unknown)}")
    listed = f" ({', '.join(columns)})" if columns else ""
    await session.execute(sql_text(f"ANALYZE leads{listed}"))


async def lead_table_rows(session: AsyncSession) -> int:
    """The number of leads the planner's statistics assume (0 before the first ANALYZE)."""
    rows = await session.scalar(
        sql_text("SELECT reltuples FROM pg_class WHERE oid = to_regclass('leads')")
    )
    return max(0, int(rows or 0))


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


def _batch_scope(actor: Actor) -> list[ColumnElement[bool]]:
    # A batch belongs to whoever started it: own = mine, team = my team's, org = all.
    return [
        ImportBatch.organization_id == actor.organization_id,
        row_scope_clause(actor, [ImportBatch.created_by]),
    ]


async def batch_in_scope(
    session: AsyncSession, actor: Actor, batch_id: uuid.UUID
) -> ImportBatch | None:
    """A batch of the organisation inside the actor's row scope."""
    return await session.scalar(
        select(ImportBatch).where(ImportBatch.id == batch_id, *_batch_scope(actor))
    )


async def list_batches(
    session: AsyncSession, actor: Actor, limit: int, offset: int
) -> tuple[list[ImportBatch], int]:
    """Batches in the actor's scope, newest first, and their total."""
    conds = _batch_scope(actor)
    total = await session.scalar(select(func.count()).select_from(ImportBatch).where(*conds))
    rows = await session.scalars(
        select(ImportBatch)
        .where(*conds)
        .order_by(ImportBatch.created_at.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), int(total or 0)


async def failed_batches(session: AsyncSession, actor: Actor, limit: int) -> list[ImportBatch]:
    """Failed batches in the actor's scope, the latest to finish first."""
    finished = func.coalesce(ImportBatch.finished_at, ImportBatch.updated_at)
    rows = await session.scalars(
        select(ImportBatch)
        .where(*_batch_scope(actor), ImportBatch.status == "failed")
        .order_by(finished.desc(), ImportBatch.id)
        .limit(limit)
    )
    return list(rows)


async def claim_batch(
    session: AsyncSession, batch_id: uuid.UUID, now: datetime, lease: timedelta
) -> str | None:
    """Mark a pending batch, or a running one whose lease expired, as running.

    Returns the new claim token if won (None otherwise); it fences every earlier claimer.
    """
    token = str(uuid.uuid4())
    won = await claim(
        session,
        ImportBatch,
        ImportBatch.id == batch_id,
        ImportBatch.status.in_(("pending", "running")),
        or_(ImportBatch.status == "pending", ImportBatch.updated_at < now - lease),
        status="running",
        updated_at=now,
        claim_token=token,
    )
    return token if won else None


async def checkpoint(
    session: AsyncSession, batch_id: uuid.UUID, token: str | None, values: dict[str, Any]
) -> bool:
    """Write `values` to the batch only while `token` still holds its claim; False if fenced.

    On PostgreSQL the row lock taken here makes a concurrent claim wait for this
    transaction and then see the fresh `updated_at` (lease renewed), so it loses.
    """
    held = ImportBatch.claim_token.is_(None) if token is None else ImportBatch.claim_token == token
    return await claim(session, ImportBatch, ImportBatch.id == batch_id, held, **values)


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
