"""Per-process request figures by minute and route group, kept until they are flushed.

Each API process counts its own requests here (the request middleware calls `record`); once a
minute the health module adds the finished minutes to the shared `request_samples` table, where
the figures of every process meet. Latencies go into fixed bins, not a list: bins of several
processes add up, so a percentile over all processes (and over any span of minutes) comes from
the summed bins. A mean or a percentile per process could not be combined.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

# Upper bounds (milliseconds, inclusive) of the latency bins; one more bin holds the rest.
LATENCY_BOUNDS_MS: tuple[int, ...] = (
    5,
    10,
    25,
    50,
    75,
    100,
    150,
    250,
    400,
    600,
    1000,
    1500,
    2500,
    5000,
    10000,
)
BIN_COUNT = len(LATENCY_BOUNDS_MS) + 1
UNMATCHED = "unmatched"
# Unflushed minutes kept at most (the database may be away for a while, or nothing flushes):
# memory stays bounded.
MAX_PENDING_MINUTES = 60
MAX_PENDING_KEYS = 10_000


@lru_cache(maxsize=1024)
def route_group(template: str) -> str:
    """The group a route template counts under: its first path segment below `/api/v1`
    (`/api/v1/leads/{lead_id}` → `leads`), two for admin routes (`admin/jobs`), the first
    segment elsewhere (`/health/ready` → `health`). A request no route matched is `unmatched`.

    Templates are the application's own, so the groups are few whatever clients send.
    """
    parts = [p for p in template.split("/") if p]
    if template == UNMATCHED or not parts:
        return UNMATCHED
    if parts[:2] == ["api", "v1"]:
        parts = parts[2:]
    elif parts[0] == "api" and len(parts) > 1:
        parts = parts[1:]
    if not parts:
        return "api"
    if parts[0] == "admin" and len(parts) > 1 and not parts[1].startswith("{"):
        return f"admin/{parts[1]}"
    return parts[0]


def minute_of(at: datetime) -> int:
    """Unix time of `at` in whole minutes (the key of every sample)."""
    return math.floor(at.timestamp() / 60)


def bin_of(milliseconds: float) -> int:
    """Index of the latency bin holding `milliseconds`."""
    return bisect.bisect_left(LATENCY_BOUNDS_MS, milliseconds)


def quantile_ms(bins: Sequence[int], q: float) -> float | None:
    """The `q` quantile (0..1) of the latencies counted in `bins`, in milliseconds.

    Interpolated linearly inside the bin that holds it (as Prometheus' `histogram_quantile`);
    in the last, open bin it is that bin's lower bound. None without any request.
    """
    total = sum(bins)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(bins):
        if count and seen + count >= rank:
            if i >= len(LATENCY_BOUNDS_MS):
                return float(LATENCY_BOUNDS_MS[-1])
            lower = LATENCY_BOUNDS_MS[i - 1] if i else 0
            upper = LATENCY_BOUNDS_MS[i]
            return lower + (upper - lower) * (rank - seen) / count
        seen += count
    return float(LATENCY_BOUNDS_MS[-1])  # pragma: no cover  (rank <= total always hits)


@dataclass
class MinuteStats:
    """Requests of one route group in one minute, in one process."""

    requests: int = 0
    errors: int = 0
    latency_ms_sum: float = 0.0
    bins: list[int] = field(default_factory=lambda: [0] * BIN_COUNT)

    def add(self, other: MinuteStats) -> None:
        """Add `other`'s counts to these."""
        self.requests += other.requests
        self.errors += other.errors
        self.latency_ms_sum += other.latency_ms_sum
        self.bins = [a + b for a, b in zip(self.bins, other.bins, strict=True)]


Key = tuple[int, str]  # (minute, route group)


class RequestStats:
    """The unflushed request figures of this process.

    Used from the event loop only (the middleware and the flusher), so it needs no lock.
    """

    def __init__(self) -> None:
        self.pending: dict[Key, MinuteStats] = {}

    def record(self, group: str, status: int, seconds: float, at: datetime) -> None:
        """Count one answered request: 5xx answers are errors."""
        minute = minute_of(at)
        key = (minute, group)
        stats = self.pending.get(key)
        if stats is None:
            if len(self.pending) >= MAX_PENDING_KEYS:
                self.take(minute - MAX_PENDING_MINUTES)  # nobody flushes: drop the oldest
            stats = self.pending[key] = MinuteStats()
        ms = seconds * 1000
        stats.requests += 1
        stats.errors += status >= 500
        stats.latency_ms_sum += ms
        stats.bins[bin_of(ms)] += 1

    def take(self, before_minute: int | None = None) -> dict[Key, MinuteStats]:
        """Remove and return the minutes before `before_minute` (all when None)."""
        taken = {
            key: stats
            for key, stats in self.pending.items()
            if before_minute is None or key[0] < before_minute
        }
        for key in taken:
            del self.pending[key]
        return taken

    def restore(self, taken: dict[Key, MinuteStats], now_minute: int) -> None:
        """Put back figures whose flush failed, dropping those older than the bound."""
        for key, stats in taken.items():
            if key[0] < now_minute - MAX_PENDING_MINUTES:
                continue
            current = self.pending.get(key)
            if current is None:
                self.pending[key] = stats
            else:
                current.add(stats)
