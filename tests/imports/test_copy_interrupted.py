"""A background import whose database connection is cut in the middle of a chunk's COPY (the
server terminated the session: a restart, an administrator) keeps its batch for resume — it
is not marked failed — and the resumed run imports every row exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from leadflow.db.engine import Database
from leadflow.imports import prepare
from leadflow.imports.batches import lease_duration
from leadflow.imports.jobs import run_job
from leadflow.kit.clock import clock
from leadflow.models.import_batch import ImportBatch
from leadflow.models.lead import Lead
from leadflow.worker.jobs import JobContext
from tests.fixtures.factories import assert_each_imported_once, background_batch, make_settings

CHUNK = 5
ROWS = 40
# The session writing the third chunk's leads ends itself inside that COPY.
KILLED_COPY = 3

_KILL_ON_THE_NTH_COPY = [
    "CREATE SEQUENCE lead_copies",
    # A sequence is not rolled back with the transaction: the session ends once.
    "CREATE FUNCTION end_session_in_copy() RETURNS trigger LANGUAGE plpgsql AS $$"
    f" BEGIN IF nextval('lead_copies') = {KILLED_COPY} THEN"
    " PERFORM pg_terminate_backend(pg_backend_pid()); END IF; RETURN NULL; END $$",
    "CREATE TRIGGER end_session_in_copy AFTER INSERT ON leads"
    " FOR EACH STATEMENT EXECUTE FUNCTION end_session_in_copy()",
    # Fires in the replica role the COPY runs in, as the data-keeping triggers do.
    "ALTER TABLE leads ENABLE ALWAYS TRIGGER end_session_in_copy",
]


# SQLite has no server session to end.
@pytest.mark.parametrize("committed_db_url", ["postgresql"], indirect=True)
async def test_a_session_ended_mid_copy_leaves_the_batch_for_resume(
    committed_db: Database, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(prepare, "CHUNK_ROWS", CHUNK)
    body = "Name,E-Mail\n" + "".join(f"Person {i},p{i}@example.com\n" for i in range(ROWS))
    async with committed_db.sessionmaker() as session:
        batch_id = await background_batch(session, body.encode())
        for statement in _KILL_ON_THE_NTH_COPY:
            await session.execute(text(statement))
        await session.commit()
    settings = make_settings(committed_db.url, tmp_path / "data")
    jobs = JobContext(settings=settings, session_factory=committed_db.sessionmaker)
    start = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    with clock.frozen(start):
        # The worker's job fails the way a lost database does (the job runner retries it).
        with pytest.raises(DBAPIError):
            await run_job(jobs, batch_id)
        async with committed_db.sessionmaker() as s:
            batch = await s.scalar(select(ImportBatch))
            assert batch is not None
            assert (batch.status, batch.failure) == ("running", None)
            # The two chunks before the cut are committed with their checkpoint.
            assert batch.processed_rows == (KILLED_COPY - 1) * CHUNK
            assert await s.scalar(select(func.count()).select_from(Lead)) == batch.processed_rows
        # Its lease runs out (the worker that held it is gone); resume takes it over.
        clock.advance(lease_duration(settings) + timedelta(seconds=1))
        assert await run_job(jobs, batch_id) == "completed"
    await assert_each_imported_once(committed_db, [f"p{i}@example.com" for i in range(ROWS)])
