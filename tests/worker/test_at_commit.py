"""Jobs (and stream wake-ups, through the same `AtCommit`) are handed over when the outermost
transaction commits: a savepoint's release is not that commit, and a savepoint's rollback
drops only what was queued inside it. SQLAlchemy reports both through the session's
`after_commit`/`after_rollback` events, which used to hand jobs over before the data they
name was committed, or drop every job queued earlier in the transaction."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

import leadflow.tasks.jobs  # noqa: F401  (registers tasks.due)
from leadflow.db.engine import Database
from leadflow.worker.jobs import RecordingQueue, enqueue_job, enqueue_job_once


class _Refused(Exception):
    pass


def _due(session: AsyncSession, label: str) -> None:
    enqueue_job(session, "tasks.due", label)


def _handed_over(queue: RecordingQueue) -> list[tuple[object, ...]]:
    return [args for _, args, _ in queue.items]


async def test_jobs_wait_for_the_outer_commit_and_a_rolled_back_savepoint_drops_its_own(
    committed_db: Database, queue: RecordingQueue
) -> None:
    async with committed_db.sessionmaker() as session:
        await session.begin()
        _due(session, "before")
        async with session.begin_nested():
            _due(session, "released")
            async with session.begin_nested():
                _due(session, "inner, released")
        with pytest.raises(_Refused):
            async with session.begin_nested():
                _due(session, "rolled back")
                async with session.begin_nested():
                    _due(session, "inside the rolled back one")
                raise _Refused
        enqueue_job_once(session, "tasks.due", "before")  # still queued: not twice
        assert queue.items == []  # savepoints released: nothing handed over yet
        await session.commit()
    assert _handed_over(queue) == [
        ("before",),
        ("released",),
        ("inner, released",),
    ]


async def test_a_rollback_of_the_transaction_drops_everything(
    committed_db: Database, queue: RecordingQueue
) -> None:
    async with committed_db.sessionmaker() as session:
        await session.begin()
        _due(session, "before")
        async with session.begin_nested():
            _due(session, "released")
        await session.rollback()
        await session.commit()
    assert queue.items == []


async def test_rolling_back_a_savepoint_drops_the_jobs_of_one_still_open_inside_it(
    committed_db: Database, queue: RecordingQueue
) -> None:
    async with committed_db.sessionmaker() as session:
        await session.begin()
        _due(session, "before")
        outer = await session.begin_nested()
        _due(session, "outer")
        await session.begin_nested()
        _due(session, "inner, never released")
        await outer.rollback()
        await session.commit()
    assert _handed_over(queue) == [("before",)]


async def test_jobs_of_a_session_closed_without_commit_are_dropped(
    committed_db: Database, queue: RecordingQueue
) -> None:
    session = committed_db.sessionmaker()
    await session.begin()
    _due(session, "closed, never committed")
    await session.close()
    await session.begin()
    _due(session, "committed")
    await session.commit()
    await session.close()
    assert _handed_over(queue) == [("committed",)]
