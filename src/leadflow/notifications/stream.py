"""The notification event stream's events, for the API's `/notifications/stream` and the web
app's bell."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.fanout import Wakeups
from leadflow.kit.sse import SESSION_ENDED_EVENT, SessionRecheck
from leadflow.notifications import service
from leadflow.notifications.schemas import NotificationRead


async def notification_events(
    request: Request,
    factory: Callable[[], AsyncSession],
    user_id: uuid.UUID,
    after: uuid.UUID | None,
    max_events: int | None,
    max_seconds: float,
    guard: SessionRecheck,
) -> AsyncIterator[bytes]:
    """The `notification` events of a user after `after`, as this stream and the web app's
    bell send them (ends with `session_ended` once `guard` fails).

    The rows come from the database, whichever process wrote them; between reads the stream
    waits for a wake-up of its topic (Redis pub/sub, see `kit/fanout.py`) or, without Redis,
    re-reads every second.
    """
    wakeups: Wakeups = getattr(request.app.state, "wakeups", None) or Wakeups()
    sent = 0
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    yield b"retry: 3000\n\n"
    # Watching starts before the first read: a notification committed after that read wakes
    # the stream.
    async with wakeups.watch(service.stream_topic(user_id)) as watch:
        while loop.time() < deadline:
            if not await guard.still_valid():
                yield SESSION_ENDED_EVENT
                return
            async with factory() as session:
                rows = await service.newer_than(session, user_id, after)
            for row in rows:
                after = row.id
                data = NotificationRead.model_validate(row).model_dump_json()
                yield f"id: {row.id}\nevent: notification\ndata: {data}\n\n".encode()
                sent += 1
                if max_events is not None and sent >= max_events:
                    return
            if await request.is_disconnected():
                return
            yield b": keep-alive\n\n"
            await watch.wait(deadline - loop.time())
