"""Queries of reports, schedules, runs and stored files.

Every lookup for a caller goes through the organisation and the owner: another user's or
another organisation's report, schedule or run is not found (404).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.authz.actor import Actor
from leadflow.db.claims import claim
from leadflow.kit.pagination import PageParams
from leadflow.models.report import Report, ReportFileChunk, ReportRun, ReportSchedule


def _own(model: Any, actor: Actor) -> list[ColumnElement[bool]]:
    return [model.organization_id == actor.organization_id, model.owner_id == actor.user_id]


async def _page(
    session: AsyncSession, stmt: Select[Any], page: PageParams
) -> tuple[list[Any], int]:
    total = await session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery()))
    rows = list(await session.scalars(stmt.limit(page.limit).offset(page.offset)))
    return rows, int(total or 0)


async def get_report(session: AsyncSession, actor: Actor, report_id: uuid.UUID) -> Report | None:
    """The actor's own report."""
    return await session.scalar(select(Report).where(Report.id == report_id, *_own(Report, actor)))


async def list_reports(
    session: AsyncSession, actor: Actor, page: PageParams
) -> tuple[list[Report], int]:
    """The actor's reports, newest first."""
    return await _page(
        session, select(Report).where(*_own(Report, actor)).order_by(Report.id.desc()), page
    )


def _schedules_of(actor: Actor) -> list[ColumnElement[bool]]:
    # Organisation admins oversee every schedule of their organisation (they mail lead data).
    if actor.can("admin:settings"):
        return [ReportSchedule.organization_id == actor.organization_id]
    return _own(ReportSchedule, actor)


async def count_own_schedules(session: AsyncSession, actor: Actor) -> int:
    """How many schedules the actor owns."""
    stmt = select(func.count()).select_from(ReportSchedule).where(*_own(ReportSchedule, actor))
    return int(await session.scalar(stmt) or 0)


async def get_schedule(
    session: AsyncSession, actor: Actor, schedule_id: uuid.UUID
) -> ReportSchedule | None:
    """The actor's own schedule (any of the organisation's for an admin)."""
    return await session.scalar(
        select(ReportSchedule).where(ReportSchedule.id == schedule_id, *_schedules_of(actor))
    )


async def list_schedules(
    session: AsyncSession, actor: Actor, page: PageParams, report_id: uuid.UUID | None
) -> tuple[list[ReportSchedule], int]:
    """The actor's schedules (all of the organisation's for an admin), newest first."""
    stmt = select(ReportSchedule).where(*_schedules_of(actor))
    if report_id is not None:
        stmt = stmt.where(ReportSchedule.report_id == report_id)
    return await _page(session, stmt.order_by(ReportSchedule.id.desc()), page)


async def list_runs(
    session: AsyncSession, actor: Actor, page: PageParams, report_id: uuid.UUID | None
) -> tuple[list[ReportRun], int]:
    """The actor's runs, newest first."""
    stmt = select(ReportRun).where(*_own(ReportRun, actor))
    if report_id is not None:
        stmt = stmt.where(ReportRun.report_id == report_id)
    return await _page(session, stmt.order_by(ReportRun.id.desc()), page)


async def due_schedules(
    session: AsyncSession, now: datetime, limit: int
) -> list[tuple[uuid.UUID, datetime]]:
    """Active schedules whose next run has come: (id, the due time seen)."""
    rows = await session.execute(
        select(ReportSchedule.id, ReportSchedule.next_run)
        .where(ReportSchedule.status == "active", ReportSchedule.next_run <= now)
        .order_by(ReportSchedule.next_run)
        .limit(limit)
    )
    return [(r[0], r[1]) for r in rows]


async def claim_due(
    session: AsyncSession,
    schedule_id: uuid.UUID,
    due_at: datetime,
    next_at: datetime,
    now: datetime,
) -> bool:
    """Move an active schedule from the due time `due_at` to `next_at`; True only for the one
    caller whose UPDATE matched (a second worker that saw the same due time gets False)."""
    return await claim(
        session,
        ReportSchedule,
        ReportSchedule.id == schedule_id,
        ReportSchedule.status == "active",
        ReportSchedule.next_run == due_at,
        next_run=next_at,
        last_run_at=now,
        updated_at=now,
    )


async def add_chunks(
    session: AsyncSession, run_id: uuid.UUID, pieces: Sequence[bytes], start: int
) -> None:
    """Store file pieces `start`, `start + 1`, … of a run."""
    session.add_all(
        ReportFileChunk(run_id=run_id, seq=start + i, data=piece) for i, piece in enumerate(pieces)
    )
    await session.flush()


async def chunk_seqs(session: AsyncSession, run_id: uuid.UUID) -> list[int]:
    """The stored pieces of a run's file, in order."""
    rows = await session.scalars(
        select(ReportFileChunk.seq)
        .where(ReportFileChunk.run_id == run_id)
        .order_by(ReportFileChunk.seq)
    )
    return list(rows)


async def chunk(session: AsyncSession, run_id: uuid.UUID, seq: int) -> bytes | None:
    """One stored piece."""
    return await session.scalar(
        select(ReportFileChunk.data).where(
            ReportFileChunk.run_id == run_id, ReportFileChunk.seq == seq
        )
    )


async def expired_file_run_ids(session: AsyncSession, now: datetime, limit: int) -> list[uuid.UUID]:
    """Runs whose stored file is past its retention."""
    rows = await session.scalars(
        select(ReportRun.id)
        .where(ReportRun.expires_at < now, ReportRun.file_stored.is_(True))
        .limit(limit)
    )
    return list(rows)


async def drop_files(session: AsyncSession, run_ids: Sequence[uuid.UUID]) -> None:
    """Delete the stored files of `run_ids` (the runs stay in the history)."""
    await session.execute(
        delete(ReportFileChunk)
        .where(ReportFileChunk.run_id.in_(run_ids))
        .execution_options(synchronize_session=False)
    )
    await session.execute(
        update(ReportRun)
        .where(ReportRun.id.in_(run_ids))
        .values(file_stored=False)
        .execution_options(synchronize_session=False)
    )


RESUMED = "Interrupted (the worker stopped); running it again"


async def stale_scheduled_runs(
    session: AsyncSession, started_before: datetime, limit: int
) -> list[uuid.UUID]:
    """Scheduled runs still `running` since before `started_before` and not resumed yet."""
    return list(
        await session.scalars(
            select(ReportRun.id)
            .where(
                ReportRun.status == "running",
                ReportRun.trigger == "schedule",
                ReportRun.created_at < started_before,
                ReportRun.error.is_(None),
            )
            .order_by(ReportRun.created_at)
            .limit(limit)
        )
    )


async def reclaim_run(
    session: AsyncSession, run_id: uuid.UUID, started_before: datetime, now: datetime
) -> bool:
    """Take over a stale scheduled run (see `stale_scheduled_runs`); True for the one caller
    that did. The run is stamped with `now` and marked resumed, so it is taken over once."""
    return await claim(
        session,
        ReportRun,
        ReportRun.id == run_id,
        ReportRun.status == "running",
        ReportRun.created_at < started_before,
        ReportRun.error.is_(None),
        created_at=now,
        error=RESUMED,
    )


async def hold_run(session: AsyncSession, run_id: uuid.UUID, claimed_at: datetime) -> bool:
    """Begin a run's final write: True while the run is still `running` under the claim
    stamped `claimed_at`, False once it finished or another worker took it over. The row
    stays locked until the transaction ends (on SQLite the write lock), so of a slow worker and
    the one that took over, exactly one stores the file and queues the emails."""
    return await claim(
        session,
        ReportRun,
        ReportRun.id == run_id,
        ReportRun.status == "running",
        ReportRun.created_at == claimed_at,
        error=None,
    )


async def fail_stale_runs(session: AsyncSession, started_before: datetime, now: datetime) -> int:
    """Mark runs still `running` since before `started_before` failed (their worker died);
    a scheduled run only once it was resumed (the schedule check takes it over first)."""
    result = await session.execute(
        update(ReportRun)
        .where(
            ReportRun.status == "running",
            ReportRun.created_at < started_before,
            or_(ReportRun.trigger != "schedule", ReportRun.error.is_not(None)),
        )
        .values(status="failed", error="Interrupted (the worker stopped)", finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
