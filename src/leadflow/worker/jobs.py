"""Job registry and enqueue-after-commit.

Services call `enqueue_job(session, name, *args)`: the job is buffered on the session and handed
to the queue only after the transaction commits (a rollback drops it). Jobs are async functions
registered with `@job("name")`; they receive a `JobContext` and must be idempotent.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.kit.atcommit import AtCommit
from leadflow.kit.clock import utcnow
from leadflow.models.outbox import PeriodicRun

log = logging.getLogger("leadflow.worker")


@dataclass(frozen=True)
class JobContext:
    """What a job needs: settings and a factory for its own sessions."""

    settings: Settings
    session_factory: Callable[[], AsyncSession]


JobFn = Callable[..., Awaitable[Any]]
JOBS: dict[str, JobFn] = {}


def job(name: str) -> Callable[[JobFn], JobFn]:
    """Register an async job function under `name`."""

    def register(fn: JobFn) -> JobFn:
        JOBS[name] = fn
        return fn

    return register


class JobQueue(Protocol):
    """Where committed jobs go (Huey in production, a list in tests)."""

    def enqueue(self, name: str, args: tuple[Any, ...], eta: datetime | None) -> None:
        """Queue job `name` with `args`, now or at `eta`."""

    def depth(self) -> tuple[int, int]:
        """Jobs waiting to run now, and jobs scheduled for later (may block: call in a thread)."""


@dataclass
class RecordingQueue:
    """Keeps enqueued jobs in memory; tests run them explicitly."""

    items: list[tuple[str, tuple[Any, ...], datetime | None]] = field(default_factory=list)

    def enqueue(self, name: str, args: tuple[Any, ...], eta: datetime | None) -> None:
        """Remember the job."""
        self.items.append((name, args, eta))

    def depth(self) -> tuple[int, int]:
        """Remembered jobs without and with an `eta`."""
        scheduled = sum(1 for _, _, eta in self.items if eta is not None)
        return len(self.items) - scheduled, scheduled


_queue: JobQueue = RecordingQueue()


def set_queue(queue: JobQueue) -> None:
    """Install the process-wide queue."""
    global _queue
    _queue = queue


def get_queue() -> JobQueue:
    """The process-wide queue."""
    return _queue


def _hand_over(pending: list[tuple[str, tuple[Any, ...], datetime | None]]) -> None:
    for name, args, eta in pending:
        try:
            _queue.enqueue(name, args, eta)
        except Exception:  # the outbox relay picks up anything not handed over
            log.exception("could not enqueue job", extra={"job": name})


_at_commit: AtCommit[tuple[str, tuple[Any, ...], datetime | None]] = AtCommit(
    "leadflow_jobs", _hand_over
)


def enqueue_job(
    session: AsyncSession, name: str, *args: Any, eta: datetime | None = None, once: bool = False
) -> None:
    """Queue a job once the session's transaction commits (a savepoint's release is not
    that commit; its rollback drops the jobs queued inside it). `once`: unless the same job
    is already waiting for this commit."""
    if name not in JOBS:
        raise KeyError(f"unknown job {name!r}")
    _at_commit.add(session, (name, args, eta), once=once)


def enqueue_job_once(
    session: AsyncSession, name: str, *args: Any, eta: datetime | None = None
) -> None:
    """`enqueue_job` once per transaction (a handler that runs for every chunk of an import
    queues one run, not fifty)."""
    enqueue_job(session, name, *args, eta=eta, once=True)


async def run_job(ctx: JobContext, name: str, *args: Any) -> Any:
    """Run a registered job in the current event loop."""
    return await JOBS[name](ctx, *args)


@job("periodic.run")
async def run_periodic(ctx: JobContext, name: str, slot: str) -> Any:
    """Run periodic job `name` for the interval starting at `slot`, and record the outcome."""
    result = await JOBS[name](ctx)
    async with ctx.session_factory() as session:
        row = await session.get(PeriodicRun, (name, datetime.fromisoformat(slot)))
        if row is not None:
            row.finished_at = utcnow()
            row.result = result if isinstance(result, dict) else {"value": result}
            await session.commit()
    return result
