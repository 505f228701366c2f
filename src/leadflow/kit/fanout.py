"""Wake-ups for event streams across processes: Redis pub/sub when configured, else polling.

A stream's events live in the database: it reads them with its own query and resumes from
`Last-Event-ID`. What crosses processes is only a wake-up. A transaction that wrote events for
a topic (`notifications:<user id>`) names the topic with `announce`; once it commits, the
topic is published on Redis. Every API process holds one pattern subscription and wakes the
streams waiting on that topic, which then read the new rows. So an event written by any API
process or worker reaches a stream held by any other, and a stream costs no query while
nothing happens. A lost wake-up (Redis restarted, a publish that failed) delays an event by at
most the fallback interval, never loses it.

Without Redis there is nothing to listen to: a stream re-reads every `poll` seconds, which is
also correct across processes (the database is shared), just busier.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable

import redis
import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.kit.atcommit import AtCommit

log = logging.getLogger("leadflow.fanout")

CHANNEL_PREFIX = "leadflow:wake:"
_KEY = "leadflow_fanout_topics"


# ---- publishing: after commit, from any process ---------------------------------------------


class Publisher:
    """Publishes topics on Redis from a background thread.

    `publish` is called from SQLAlchemy's `after_commit` hook, inside request handlers and
    job threads alike: it only queues, so no event loop ever waits on Redis for it.
    """

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self._queue: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def publish(self, topics: Iterable[str]) -> None:
        """Queue a wake-up for each topic."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="leadflow-fanout", daemon=True
                )
                self._thread.start()
        for topic in topics:
            self._queue.put(topic)

    def close(self, timeout: float = 5) -> None:
        """Send what is queued, then stop the thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(None)
            thread.join(timeout)

    def _run(self) -> None:
        client = redis.Redis.from_url(self.redis_url, socket_timeout=5, socket_connect_timeout=5)
        try:
            while (topic := self._queue.get()) is not None:
                batch = {topic}
                # Whatever queued up meanwhile goes in the same round trip.
                stop = False
                while not self._queue.empty():
                    more = self._queue.get()
                    if more is None:
                        stop = True
                        break
                    batch.add(more)
                try:
                    with client.pipeline(transaction=False) as pipe:
                        for name in sorted(batch):
                            pipe.publish(CHANNEL_PREFIX + name, b"1")
                        pipe.execute()
                except redis.RedisError as exc:
                    # The streams' fallback re-read delivers these events a little later.
                    log.warning("could not publish stream wake-ups: %s", exc)
                if stop:
                    return
        finally:
            client.close()


_publisher: Publisher | None = None
_publisher_lock = threading.Lock()


def install_publisher(redis_url: str) -> None:
    """Publish announced topics on `redis_url` from now on in this process (empty: never)."""
    global _publisher
    with _publisher_lock:
        if _publisher is not None and _publisher.redis_url == redis_url:
            return
        old, _publisher = _publisher, (Publisher(redis_url) if redis_url else None)
    if old is not None:
        old.close()


def uninstall_publisher() -> None:
    """Stop publishing (process shutdown)."""
    install_publisher("")


def _publish(topics: list[str]) -> None:
    publisher = _publisher
    if publisher is not None:
        publisher.publish(set(topics))


_at_commit: AtCommit[str] = AtCommit(_KEY, _publish)


def announce(session: AsyncSession, topic: str) -> None:
    """Wake the streams of `topic` once the session's transaction commits (not on rollback,
    nor when a savepoint is released)."""
    _at_commit.add(session, topic, once=True)


# ---- listening: one subscription per API process ---------------------------------------------


class Watch:
    """One stream's interest in a topic: `wait` returns when it was published (or later)."""

    def __init__(self, wakeups: Wakeups) -> None:
        self._wakeups = wakeups
        self.event = asyncio.Event()

    async def wait(self, at_most: float) -> None:
        """Until a wake-up, `at_most` seconds, or the longest the wake-ups let a stream wait
        (the poll interval when nothing listens)."""
        seconds = min(at_most, self._wakeups.wait_seconds())
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.event.wait(), seconds)
        self.event.clear()


class Wakeups:
    """Polling: no wake-ups, a stream re-reads every `poll` seconds."""

    def __init__(self, poll: float = 1.0) -> None:
        self.poll = poll

    def wait_seconds(self) -> float:
        """The longest a stream waits before it re-reads on its own."""
        return self.poll

    @contextlib.asynccontextmanager
    async def watch(self, topic: str) -> AsyncIterator[Watch]:
        """Interest in `topic` for the duration of the block."""
        yield Watch(self)

    async def aclose(self) -> None:
        """Stop listening."""


class RedisWakeups(Wakeups):
    """Wake-ups from Redis pub/sub: one pattern subscription for the whole process.

    Streams wait up to `fallback` seconds between reads while subscribed (a safety net for a
    lost message); while the subscription is down they poll every `poll` seconds instead.
    """

    def __init__(self, redis_url: str, *, poll: float = 1.0, fallback: float = 15.0) -> None:
        super().__init__(poll)
        self.redis_url = redis_url
        self.fallback = fallback
        self._waiting: dict[str, set[Watch]] = defaultdict(set)
        self._subscribed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def subscribed(self) -> bool:
        """Whether the pattern subscription is up."""
        return self._subscribed.is_set()

    def wait_seconds(self) -> float:
        """`fallback` while subscribed, `poll` while the subscription is down."""
        return self.fallback if self._subscribed.is_set() else self.poll

    async def start(self, confirm_seconds: float = 2.0) -> None:
        """Subscribe (once per process); waits up to `confirm_seconds` for Redis to confirm
        (streams poll meanwhile)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._listen())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), confirm_seconds)

    @contextlib.asynccontextmanager
    async def watch(self, topic: str) -> AsyncIterator[Watch]:
        """Interest in `topic`; registered before the block runs, so a publish that follows
        the stream's first read is never missed."""
        await self.start()
        w = Watch(self)
        self._waiting[topic].add(w)
        try:
            yield w
        finally:
            found = self._waiting.get(topic)
            if found is not None:
                found.discard(w)
                if not found:
                    del self._waiting[topic]

    def _wake(self, topic: str) -> None:
        for w in self._waiting.get(topic, ()):
            w.event.set()

    def _wake_all(self) -> None:
        # After a reconnect: anything published meanwhile was missed, so everyone re-reads.
        for watches in self._waiting.values():
            for w in watches:
                w.event.set()

    async def _listen(self) -> None:
        while True:
            client = aioredis.from_url(self.redis_url, socket_connect_timeout=5)
            pubsub = client.pubsub()
            try:
                await pubsub.psubscribe(CHANNEL_PREFIX + "*")
                while True:
                    message = await pubsub.get_message(timeout=None)
                    if message is None:
                        continue
                    if message["type"] == "psubscribe":
                        self._subscribed.set()
                        self._wake_all()
                    elif message["type"] == "pmessage":
                        channel = message["channel"]
                        if isinstance(channel, bytes):
                            channel = channel.decode()
                        self._wake(channel.removeprefix(CHANNEL_PREFIX))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis gone: poll meanwhile, then subscribe again
                self._subscribed.clear()
                log.warning("stream wake-up subscription lost: %s", exc)
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                with contextlib.suppress(Exception):
                    await client.aclose()

    async def aclose(self) -> None:
        """Unsubscribe and stop the listener."""
        task, self._task = self._task, None
        self._subscribed.clear()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def build_wakeups(redis_url: str, *, poll: float = 1.0, fallback: float = 15.0) -> Wakeups:
    """Redis wake-ups when `redis_url` is set (re-reading at least every `fallback` seconds,
    at most 15), else polling every `poll` seconds."""
    if not redis_url:
        return Wakeups(poll)
    return RedisWakeups(redis_url, poll=poll, fallback=min(fallback, 15.0))
