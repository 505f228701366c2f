"""Server-sent event streams: per-user caps, the periodic credential re-check, Last-Event-ID.

Generic pieces only (no domain imports); the endpoints supply how to re-check a credential.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from leadflow.kit.clock import utcnow
from leadflow.kit.errors import InvalidLastEventId, TooManyStreams

T = TypeVar("T")

SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# Sent before a stream closes because its session or credential is no longer valid: the client
# must sign in again rather than reconnect.
SESSION_ENDED_EVENT = b'event: session_ended\ndata: {"reason":"session_ended"}\n\n'


class StreamSlots:
    """Open streams per holder (user or API key) in this process; over the cap is a 429."""

    def __init__(self) -> None:
        self._open: Counter[str] = Counter()
        self._lock = threading.Lock()

    def acquire(self, holder: str, limit: int) -> Callable[[], None]:
        """Take a slot for `holder` or raise 429; returns an idempotent release."""
        with self._lock:
            if self._open[holder] >= limit:
                raise TooManyStreams(
                    f"At most {limit} open event streams per user; close one first",
                    retry_after=5,
                )
            self._open[holder] += 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                self._open[holder] -= 1
                if self._open[holder] <= 0:
                    del self._open[holder]

        return release

    def open_count(self, holder: str) -> int:
        """How many streams `holder` has open."""
        with self._lock:
            return self._open[holder]


class SlotStreamingResponse(StreamingResponse):
    """A streaming response that gives its slot back however the stream ends.

    Released here rather than in the generator: a generator that never started (client gone
    before the first byte) would never run its `finally`.
    """

    def __init__(self, content: Any, *, release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release
        # A response that is never sent (the request failed after the endpoint returned, e.g.
        # in a dependency's teardown) still gives its slot back once it is dropped.
        weakref.finalize(self, release)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


class SessionRecheck:
    """Re-validates a stream's credential once `interval` has passed on the injectable clock."""

    def __init__(self, check: Callable[[], Awaitable[bool]], interval_seconds: float) -> None:
        self._check = check
        self._interval = timedelta(seconds=interval_seconds)
        self._last = utcnow()  # the request was authenticated just now

    async def still_valid(self) -> bool:
        """False once the credential no longer authenticates; checks at most once per interval."""
        now = utcnow()
        if now - self._last < self._interval:
            return True
        self._last = now
        return await self._check()


def parse_last_event_id(value: str | None, parse: Callable[[str], T]) -> T | None:
    """The `Last-Event-ID` header parsed with `parse`, None when absent; malformed is a 400."""
    if value is None or not value.strip():
        return None
    try:
        return parse(value.strip())
    except ValueError:
        raise InvalidLastEventId(
            "Last-Event-ID is not an id this stream sent",
            errors=[{"loc": ["header", "Last-Event-ID"], "msg": "malformed event id"}],
        ) from None
