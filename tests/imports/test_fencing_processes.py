"""Fencing across real processes: a background import claimed again after its 1 s lease
expired stops the earlier worker at its next checkpoint, and no row is inserted twice.

Worker A (a process) commits the first chunks and stalls waiting for the rest of its
file; worker B (another process) claims the batch once A's lease expired in real time and
finishes it; then A is released and must stop with "fenced".
"""

from __future__ import annotations

import asyncio
import os
import queue
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from leadflow.db.engine import Database
from leadflow.models.import_batch import ImportBatch
from leadflow.models.lead import Lead
from tests.fixtures.factories import background_batch
from tests.imports import fence_worker as fw

ROOT = Path(__file__).resolve().parents[2]
LINE_TIMEOUT = 60.0


class _Worker:
    """A fence_worker process whose stdout lines are collected by a reader thread."""

    def __init__(self, args: list[str], env: dict[str, str], cwd: Path, log: Path) -> None:
        self.log = log
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.imports.fence_worker", *args],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=log.open("wb"),
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)  # end of output

    async def next_line(self) -> str:
        """The next line the worker printed ("" once it exited without one more)."""
        try:
            line = await asyncio.to_thread(self._queue.get, timeout=LINE_TIMEOUT)
        except queue.Empty:
            raise AssertionError(f"no output within {LINE_TIMEOUT}s; {self.stderr()}") from None
        if line is None:
            self._queue.put(None)
            return ""
        self.lines.append(line)
        return line

    async def result(self) -> str:
        """The worker's last line, after it exited."""
        while await self.next_line():
            pass
        code = await asyncio.to_thread(self.proc.wait, LINE_TIMEOUT)
        assert code == 0, f"exit {code}: {self.lines}; {self.stderr()}"
        return self.lines[-1]

    def stderr(self) -> str:
        return "stderr: " + self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)


async def _start_batch(db: Database) -> str:
    async with db.sessionmaker() as session:
        return await background_batch(session, fw.first_piece() + fw.rest_piece())


def _env(db_url: str, data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update(
        {
            "LEADFLOW_ENV": "test",
            "LEADFLOW_DATABASE_URL": db_url,
            "LEADFLOW_SECRET_KEY": "fence-test-secret-" + "x" * 32,
            "LEADFLOW_DATA_DIR": str(data_dir),
            "LEADFLOW_REDIS_URL": "",
            "LEADFLOW_IMPORT_LEASE_SECONDS": "1",
            "LEADFLOW_LOG_LEVEL": "WARNING",
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")]),
        }
    )
    return env


async def test_two_worker_processes_the_stale_one_is_fenced_and_each_row_imported_once(
    committed_db_url: str, committed_db: Database, tmp_path: Path
) -> None:
    batch_id = await _start_batch(committed_db)
    env = _env(committed_db_url, tmp_path / "data")
    release = tmp_path / "release.csv"
    workers: list[_Worker] = []
    try:
        a = _Worker(["A", batch_id, str(release)], env, tmp_path, tmp_path / "a.log")
        workers.append(a)
        assert await a.next_line() == f"A: stalled after {fw.FIRST // fw.CHUNK} chunks", a.stderr()
        async with committed_db.sessionmaker() as s:
            assert await s.scalar(select(ImportBatch.processed_rows)) == fw.FIRST

        b = _Worker(["B", batch_id], env, tmp_path, tmp_path / "b.log")
        workers.append(b)
        assert (await b.next_line()).startswith("B: claimed after"), b.stderr()
        assert await b.result() == "B: completed", b.stderr()

        # Atomic appearance: A reads the whole rest once the name exists.
        staged = tmp_path / "release.tmp"
        staged.write_bytes(fw.rest_piece())
        staged.rename(release)
        assert await a.result() == "A: fenced", a.stderr()
    finally:
        for w in workers:
            w.stop()

    async with committed_db.sessionmaker() as s:
        emails = Counter(e or "" for e in await s.scalars(select(Lead.email)))
        assert emails == Counter(f"p{i}@example.com" for i in range(fw.TOTAL))
        batch = await s.scalar(select(ImportBatch))
        assert batch is not None
        assert (batch.status, batch.processed_rows, batch.imported_count) == (
            "completed",
            fw.TOTAL,
            fw.TOTAL,
        )
