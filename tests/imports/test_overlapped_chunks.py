"""A background import on PostgreSQL matches chunk N+1 on a second connection while chunk N
is still being written: duplicates across that boundary (not yet visible to the lookup)
are caught from the keys the pipeline keeps, and nothing is imported twice."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db.dialect import is_postgres
from leadflow.db.engine import Database
from leadflow.imports import pipeline, prepare, repository
from leadflow.imports.jobs import run_job
from leadflow.imports.options import ImportOptions, OnDuplicate
from leadflow.models.import_batch import ImportBatch
from leadflow.models.lead import Lead
from leadflow.worker.jobs import JobContext
from tests.fixtures.factories import background_batch, make_settings

CHUNK = 4
ROWS = 60


def _emails() -> list[int]:
    """Row i's person: new, or the person of the row 1 (same chunk), 5 (the chunk before,
    maybe still being written) or 10 rows earlier (long committed)."""
    people: list[int] = []
    for i in range(ROWS):
        back = (1, 5, 10)[i % 3] if i % 4 == 3 and i >= 10 else 0
        people.append(people[i - back] if back else i)
    return people


def _hold_each_write_until_the_next_lookup(monkeypatch: pytest.MonkeyPatch, chunks: int) -> None:
    """Chunk n is written only once chunk n+1 has been looked up: the lookup cannot see
    chunk n's rows, whatever the timing."""
    looked_up = 0
    written = 0
    changed = asyncio.Condition()
    lookup, write = repository.existing_ids, pipeline._write

    async def counted_lookup(*args: Any, **kwargs: Any) -> Any:
        nonlocal looked_up
        found = await lookup(*args, **kwargs)
        async with changed:
            looked_up += 1
            changed.notify_all()
        return found

    async def held_write(*args: Any, **kwargs: Any) -> None:
        nonlocal written
        written += 1
        n = written
        async with changed:
            await asyncio.wait_for(
                changed.wait_for(lambda: looked_up > n or n == chunks), timeout=30
            )
        await write(*args, **kwargs)

    monkeypatch.setattr(repository, "existing_ids", counted_lookup)
    monkeypatch.setattr(pipeline, "_write", held_write)


class _StageLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.seen: list[dict[str, float]] = []

    def emit(self, record: logging.LogRecord) -> None:
        stages = getattr(record, "import_stage_seconds", None)
        if stages is not None:
            self.seen.append(dict(stages))


@pytest.mark.parametrize("mode", ["skip", "update"])
async def test_duplicates_across_overlapped_chunks_are_imported_once(
    committed_db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Any, mode: OnDuplicate
) -> None:
    monkeypatch.setattr(prepare, "CHUNK_ROWS", CHUNK)
    seconds: list[bool] = []
    original = pipeline._second_session

    async def recorded(session: AsyncSession, lookups: Any) -> AsyncSession | None:
        other = await original(session, lookups)
        seconds.append(other is not None)
        return other

    monkeypatch.setattr(pipeline, "_second_session", recorded)
    if committed_db.dialect == "postgresql":
        _hold_each_write_until_the_next_lookup(monkeypatch, chunks=ROWS // CHUNK)
    people = _emails()
    body = "Name,E-Mail,Telefon\n" + "".join(
        f"Person {p},p{p}@example.com,+49 151 {p:07d}\n" for p in people
    )
    async with committed_db.sessionmaker() as session:
        batch_id = await background_batch(
            session,
            body.encode(),
            ImportOptions(on_duplicate=mode, analyze=False),
        )
    settings = make_settings(committed_db.url, tmp_path / "data")
    jobs = JobContext(settings=settings, session_factory=committed_db.sessionmaker)
    stages = _StageLog()
    imports_log = logging.getLogger("leadflow.imports")
    imports_log.addHandler(stages)
    level = imports_log.level
    imports_log.setLevel(logging.INFO)
    started = time.perf_counter()
    try:
        assert await run_job(jobs, batch_id) == "completed"
    finally:
        imports_log.removeHandler(stages)
        imports_log.setLevel(level)
    elapsed = time.perf_counter() - started
    # The loop's seconds per stage are logged once, and they add up to no more than the
    # import took (each span counted once).
    assert len(stages.seen) == 1 and set(stages.seen[0]) == {"reading", "matching", "writing"}
    assert all(v >= 0 for v in stages.seen[0].values())
    assert sum(stages.seen[0].values()) <= elapsed + 0.02

    unique = len(set(people))
    async with committed_db.sessionmaker() as s:
        emails = Counter(e for e in await s.scalars(select(Lead.email)))
        assert emails == Counter({f"p{p}@example.com": 1 for p in set(people)})
        batch = await s.scalar(select(ImportBatch))
        assert batch is not None
        assert (batch.imported_count, batch.processed_rows) == (unique, ROWS)
        assert batch.imported_count + batch.updated_count + batch.skipped_count == ROWS
        assert await s.scalar(select(func.count()).select_from(Lead)) == unique
        # The second connection was used where there is one to use (PostgreSQL).
        assert seconds == ([True] if is_postgres(s) else [])
