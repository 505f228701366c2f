"""A dict kept to a size, oldest entries out first (process-wide caches)."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def remember(cache: dict[K, V], key: K, value: V, limit: int) -> None:
    """Store `value` under `key` as the newest entry and drop the oldest beyond `limit`.

    Worker threads may share such a cache: plain dict operations only, and a concurrent
    change of the dict ends the trimming instead of raising."""
    cache.pop(key, None)  # re-inserted last, so it is the newest
    cache[key] = value
    while len(cache) > limit:
        try:
            cache.pop(next(iter(cache)))
        except (KeyError, RuntimeError, StopIteration):
            break
