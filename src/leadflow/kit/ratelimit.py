"""Rate limiting with `limits`: in memory by default, shared through Redis when configured."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter


def build_storage(redis_url: str) -> Storage:
    """Memory storage, or Redis storage (redis-py client) when `redis_url` is given."""
    if redis_url:
        uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
        return RedisStorage(uri, implementation="redispy")
    return MemoryStorage()


class FailureLimiter:
    """Counts failures per key in a moving one-minute window."""

    def __init__(self, storage: Storage, per_minute: int, namespace: str) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerMinute(per_minute, namespace=namespace)

    async def blocked_for(self, *keys: str) -> int:
        """Seconds until the first blocked key frees up; 0 when none is blocked."""
        wait = 0
        for key in keys:
            if not await self._limiter.test(self._item, key):
                stats = await self._limiter.get_window_stats(self._item, key)
                wait = max(wait, max(1, math.ceil(stats.reset_time - time.time())))
        return wait

    async def record_failure(self, *keys: str) -> None:
        """Count one failure against every key."""
        for key in keys:
            await self._limiter.hit(self._item, key)

    async def reset(self, *keys: str) -> None:
        """Forget the failures of `keys` (after a success)."""
        for key in keys:
            await self._limiter.clear(self._item, key)


class HitLimiter:
    """Allows `item`'s amount of hits per key in a moving window (e.g. sign-ups per IP)."""

    def __init__(self, storage: Storage, item: RateLimitItem) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = item

    async def hit(self, key: str) -> int:
        """Count one hit for `key`: 0 when allowed, else seconds until the window frees up."""
        if await self._limiter.hit(self._item, key):
            return 0
        stats = await self._limiter.get_window_stats(self._item, key)
        return max(1, math.ceil(stats.reset_time - time.time()))
