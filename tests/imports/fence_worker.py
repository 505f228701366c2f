"""One import worker process for tests/imports/test_fencing_processes.py.

    python -m tests.imports.fence_worker A <batch_id> <release_file>
    python -m tests.imports.fence_worker B <batch_id>

Settings (database, lease) come from the LEADFLOW_ environment. Worker A claims the batch,
commits the chunks of the file's first piece, prints "A: stalled after N chunks" and waits
until <release_file> exists before it reads the rest. Worker B claims the batch as soon as
A's lease has expired and runs it with the whole file. Each prints its run's result last.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

import leadflow.wiring  # noqa: F401  (event subscribers, jobs)
from leadflow.config import Settings
from leadflow.db.engine import Database
from leadflow.imports import batches, prepare
from leadflow.worker.jobs import JobContext

CHUNK = 8
FIRST = 24  # rows in the first piece of the file: worker A commits 3 chunks, then stalls
TOTAL = 40
WAIT_SECONDS = 60.0
POLL_SECONDS = 0.05


def row(i: int) -> bytes:
    """Data row `i`; its email is p<i>@example.com."""
    # Long notes: the reader looks at 64 KiB before the first row, so the first piece
    # alone must be that large for worker A to start before it is released.
    return f"Person {i},p{i}@example.com,{'x' * 3000}\n".encode()


def first_piece() -> bytes:
    """The header and the rows worker A gets before it stalls."""
    return b"Name,E-Mail,Notizen\n" + b"".join(row(i) for i in range(FIRST))


def rest_piece() -> bytes:
    """The rows after the stall."""
    return b"".join(row(i) for i in range(FIRST, TOTAL))


def _say(line: str) -> None:
    print(line, flush=True)


def _wait_for(condition: Callable[[], bool], what: str) -> None:
    # Polls a condition owned by the test (another process): ends when it holds.
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(POLL_SECONDS)


async def _run_a(ctx: JobContext, db: Database, bid: uuid.UUID, release: Path) -> str:
    token = await batches.claim(ctx, bid)
    if token is None:
        return "not claimed"
    commits = 0

    def on_commit(session: Session) -> None:
        nonlocal commits
        if session.get_nested_transaction() is not None:
            return  # a savepoint released, not the chunk's commit
        commits += 1
        if commits == FIRST // CHUNK:
            _say(f"A: stalled after {commits} chunks")

    made: list[AsyncSession] = []

    def counted_session() -> AsyncSession:
        # Claimed above through another session: the run's own session's commits are
        # exactly A's chunks (a later session only looks up duplicates).
        s = db.sessionmaker()
        if not made:
            event.listen(s.sync_session, "after_commit", on_commit)
        made.append(s)
        return s

    def pieces() -> Iterator[bytes]:
        yield first_piece()
        # Runs in the reader thread: the event loop stays free while A is stalled.
        _wait_for(release.exists, str(release))
        yield release.read_bytes()

    ctx_a = JobContext(settings=ctx.settings, session_factory=counted_session)
    return await batches.run_claimed(ctx_a, bid, token, pieces)


async def _run_b(ctx: JobContext, bid: uuid.UUID) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    tries = 0
    # A's lease expires in real time: retry the claim until it is granted.
    while (token := await batches.claim(ctx, bid)) is None:
        tries += 1
        if time.monotonic() > deadline:
            return "not claimed"
        await asyncio.sleep(POLL_SECONDS)
    _say(f"B: claimed after {tries} refused claims")
    data = first_piece() + rest_piece()
    return await batches.run_claimed(ctx, bid, token, lambda: iter([data]))


async def _main(role: str, bid: uuid.UUID, release: Path | None) -> str:
    prepare.CHUNK_ROWS = CHUNK
    settings = Settings()
    db = Database(settings.database_url, pool_size=3)
    ctx = JobContext(settings=settings, session_factory=db.sessionmaker)
    try:
        if role == "A":
            assert release is not None
            return await _run_a(ctx, db, bid, release)
        return await _run_b(ctx, bid)
    finally:
        await db.dispose()


def main(argv: list[str]) -> int:
    """Run worker `argv[0]` ("A" or "B") on batch `argv[1]`; prints "<role>: <result>"."""
    role, bid = argv[0], uuid.UUID(argv[1])
    release = Path(argv[2]) if role == "A" else None
    result = asyncio.run(_main(role, bid, release))
    _say(f"{role}: {result}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
