"""Moves each API process's request figures into `request_samples`, once a minute.

Every process counts its own requests in memory (`kit.requeststats`); here it adds the
finished minutes to the shared table with an atomic increment per (minute, route group), so
the rows hold the sum over however many processes serve the API. Percentiles come from the
summed latency bins, which is what makes them correct across processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.db.dialect import upsert
from leadflow.db.types import new_id
from leadflow.kit.clock import utcnow
from leadflow.kit.requeststats import RequestStats, minute_of
from leadflow.models.health import BIN_COLUMNS, RequestSample

log = logging.getLogger("leadflow.health")

ADDED = ("requests", "errors", "latency_ms_sum", *BIN_COLUMNS)


async def flush(
    stats: RequestStats, session_factory: Callable[[], AsyncSession], *, final: bool = False
) -> int:
    """Add the finished minutes (every minute when `final`) to the table; returns the rows
    written. On failure the figures go back into `stats` for the next flush."""
    now_minute = minute_of(utcnow())
    taken = stats.take(None if final else now_minute)
    if not taken:
        return 0
    rows = [
        {
            "id": new_id(),
            "minute": minute,
            "route_group": group,
            "requests": s.requests,
            "errors": s.errors,
            "latency_ms_sum": s.latency_ms_sum,
            **dict(zip(BIN_COLUMNS, s.bins, strict=True)),
        }
        for (minute, group), s in taken.items()
    ]
    try:
        async with session_factory() as session:
            await upsert(session, RequestSample, rows, key=("minute", "route_group"), add=ADDED)
            await session.commit()
    except BaseException:
        stats.restore(taken, now_minute)
        raise
    return len(rows)


class RequestFlusher:
    """Flushes `stats` a second after every full minute while the server runs, and all that
    is left when it stops."""

    def __init__(self, stats: RequestStats, session_factory: Callable[[], AsyncSession]) -> None:
        self.stats = stats
        self.session_factory = session_factory
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Begin flushing in the running event loop."""
        self.task = asyncio.create_task(self._run(), name="leadflow-request-flusher")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(60 - time.time() % 60 + 1)
            try:
                await flush(self.stats, self.session_factory)
            except Exception:
                log.warning("request figures not flushed; retrying next minute", exc_info=True)

    async def stop(self) -> None:
        """Stop the loop and flush the current minute too."""
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        try:
            await flush(self.stats, self.session_factory, final=True)
        except Exception:
            log.warning("request figures lost at shutdown", exc_info=True)
