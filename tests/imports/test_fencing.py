"""A background import claimed again after its lease expired fences the earlier worker.

Two workers are two independent sessions (own connections, real commits) driving the
batch lifecycle's claim and run functions in the interleaving that used to insert a chunk twice:
worker A commits some chunks and stalls, its lease expires, worker B claims the batch and
finishes it, then A wakes up and tries to write its next chunk.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from leadflow.config import Settings
from leadflow.db.engine import Database
from leadflow.imports import batches, prepare, repository
from leadflow.imports.jobs import run_job
from leadflow.kit.clock import clock
from leadflow.models.import_batch import ImportBatch
from leadflow.worker.jobs import JobContext
from tests.fixtures.factories import assert_each_imported_once, background_batch, make_settings

CHUNK = 8
FIRST = 24  # rows in the first piece of the file: worker A commits 3 chunks, then stalls
TOTAL = 40
T0 = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


def _row(i: int) -> bytes:
    # Long notes: the reader looks at 64 KiB before the first row, so the first piece
    # alone must be that large for worker A to start before the gate opens.
    return f"Person {i},p{i}@example.com,{'x' * 3000}\n".encode()


async def _start(db: Database, tmp_path: Path) -> tuple[Settings, str, bytes, bytes]:
    first = b"Name,E-Mail,Notizen\n" + b"".join(_row(i) for i in range(FIRST))
    rest = b"".join(_row(i) for i in range(FIRST, TOTAL))
    assert len(first) > 65536
    settings = make_settings(db.url, tmp_path / "data", import_lease_seconds=1)
    async with db.sessionmaker() as session:
        batch_id = await background_batch(session, first + rest)
    return settings, batch_id, first, rest


async def test_stale_worker_is_fenced_and_every_row_is_imported_once(
    committed_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prepare, "CHUNK_ROWS", CHUNK)
    clock.freeze(T0)
    settings, batch_id, first, rest = await _start(committed_db, tmp_path)
    bid = ImportBatch.id.type.python_type(batch_id)

    # Worker A: its file stalls after the first piece; its commits are counted.
    gate = threading.Event()
    commits = 0
    stalled = asyncio.Event()

    def pieces() -> Iterator[bytes]:
        yield first
        gate.wait(timeout=60)
        yield rest

    def on_commit(session: Session) -> None:
        nonlocal commits
        if session.get_nested_transaction() is not None:
            return  # a savepoint released, not the chunk's commit
        commits += 1
        if commits == FIRST // CHUNK:
            stalled.set()

    made: list[AsyncSession] = []

    def session_a() -> AsyncSession:
        s = committed_db.sessionmaker()
        if not made:  # the run's own session; a later one only looks up duplicates
            event.listen(s.sync_session, "after_commit", on_commit)
        made.append(s)
        return s

    ctx_a = JobContext(settings=settings, session_factory=session_a)
    ctx_b = JobContext(settings=settings, session_factory=committed_db.sessionmaker)
    # Claimed outside A's counted sessions: A's commits are then exactly its chunks.
    token_a = await batches.claim(ctx_b, bid)
    assert token_a is not None
    assert await batches.claim(ctx_b, bid) is None  # lease still held
    worker_a = asyncio.create_task(batches.run_claimed(ctx_a, bid, token_a, pieces))
    try:
        await asyncio.wait_for(stalled.wait(), timeout=60)
        async with committed_db.sessionmaker() as s:
            assert await s.scalar(select(ImportBatch.processed_rows)) == FIRST

        # A's lease (1 s) expires; worker B claims the batch and finishes it.
        clock.freeze(T0 + timedelta(seconds=2))
        assert await run_job(ctx_b, batch_id) == "completed"
    finally:
        gate.set()
    # A wakes up: its next checkpoint is refused and its chunk rolled back.
    assert await asyncio.wait_for(worker_a, timeout=60) == "fenced"

    await assert_each_imported_once(committed_db, [f"p{i}@example.com" for i in range(TOTAL)])


async def test_a_claim_replaces_the_token_and_the_old_one_is_refused(
    committed_db: Database, tmp_path: Path
) -> None:
    clock.freeze(T0)
    settings, batch_id, _, _ = await _start(committed_db, tmp_path)
    ctx = JobContext(settings=settings, session_factory=committed_db.sessionmaker)
    bid = ImportBatch.id.type.python_type(batch_id)
    old = await batches.claim(ctx, bid)
    clock.freeze(T0 + timedelta(seconds=2))
    new = await batches.claim(ctx, bid)
    assert old is not None and new is not None and old != new
    async with committed_db.sessionmaker() as s:
        assert await repository.checkpoint(s, bid, old, {"processed_rows": 5}) is False
        assert await repository.checkpoint(s, bid, new, {"processed_rows": 5}) is True
        await s.commit()
        assert await s.scalar(select(ImportBatch.processed_rows)) == 5
