"""The AI runtime of one app: the configured provider, the local fallback and the limits.

Three limits guard the provider: calls per organisation and minute (`CallLimiter`), provider
calls at once in this process (`ProviderSlots`), and provider calls per organisation and UTC
day (`check_budget`, counted from the stored generations).
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from limits import RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ai import repository
from leadflow.ai.errors import AiBudgetExhausted, AiBusy
from leadflow.ai.openai_provider import OpenAIProvider
from leadflow.ai.providers import LocalProvider, Provider
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.exceptions import TooManyRequests
from leadflow.kit.clock import utcnow
from leadflow.kit.ratelimit import build_storage


class CallLimiter:
    """AI calls per organisation in a moving one-minute window (memory, or Redis when set)."""

    def __init__(self, settings: Settings) -> None:
        self.per_minute = settings.ai_rate_limit_per_minute
        self._limiter = MovingWindowRateLimiter(build_storage(settings.redis_url))
        self._item = RateLimitItemPerMinute(self.per_minute, namespace="ai-calls")

    async def acquire(self, organization_id: uuid.UUID) -> None:
        """Count one call, or raise 429 with the seconds until the window frees up."""
        key = str(organization_id)
        if await self._limiter.hit(self._item, key):
            return
        stats = await self._limiter.get_window_stats(self._item, key)
        retry_after = max(1, math.ceil(stats.reset_time - time.time()))
        raise TooManyRequests(
            f"This organisation made {self.per_minute} AI calls in the last minute; "
            f"try again in {retry_after} s",
            retry_after=retry_after,
        )


class ProviderSlots:
    """At most `size` provider calls at once in this process; a caller waits up to
    `wait_seconds` for a free slot, then gets 429 `ai_busy`.

    A slow provider otherwise piles up requests (and their sockets, memory and timeouts)
    without bound; the cap makes the excess fail fast with a clear answer instead.
    """

    def __init__(self, size: int, wait_seconds: float) -> None:
        self.size = size
        self.wait_seconds = wait_seconds
        self._free = asyncio.Semaphore(size)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the duration of the block."""
        try:
            if self.wait_seconds <= 0:
                if self._free.locked():
                    raise TimeoutError
                await self._free.acquire()  # free: returns at once
            else:
                async with asyncio.timeout(self.wait_seconds):
                    await self._free.acquire()
        except TimeoutError:
            raise AiBusy(
                f"All {self.size} AI provider slots are busy; try again shortly",
                retry_after=max(1, math.ceil(self.wait_seconds)),
            ) from None
        try:
            yield
        finally:
            self._free.release()


def _runtime_key(settings: Settings) -> tuple[Any, ...]:
    return (
        settings.ai_provider,
        settings.openai_api_key,
        settings.openai_model,
        settings.openai_base_url,
        settings.ai_timeout_seconds,
        settings.ai_max_retries,
        settings.ai_rate_limit_per_minute,
        settings.redis_url,
        settings.ai_max_concurrency,
        settings.ai_queue_timeout_seconds,
        settings.ai_daily_limit,
    )


@dataclass
class AiRuntime:
    """The configured provider, the local fallback and the limits of one app."""

    provider: Provider
    fallback: LocalProvider
    limiter: CallLimiter
    key: tuple[Any, ...]
    slots: ProviderSlots
    daily_limit: int = 0  # provider calls per organisation and UTC day; 0 = unlimited

    @property
    def remote(self) -> Provider | None:
        """The configured provider when it is not the local one (it costs money and time)."""
        return self.provider if self.provider is not self.fallback else None

    def matches(self, settings: Settings) -> bool:
        """Whether this runtime was built from these AI settings."""
        return self.key == _runtime_key(settings)

    async def aclose(self) -> None:
        """Release the provider's connections."""
        await self.provider.aclose()


def build_runtime(settings: Settings) -> AiRuntime:
    """Provider, fallback and limits from the settings (`LEADFLOW_AI_*`)."""
    fallback = LocalProvider()
    provider: Provider = fallback
    if settings.ai_provider == "openai":
        provider = OpenAIProvider(
            api_key=settings.openai_api_key,
            model=settings.openai_model,
            base_url=settings.openai_base_url,
            timeout=settings.ai_timeout_seconds,
            max_retries=settings.ai_max_retries,
        )
    return AiRuntime(
        provider,
        fallback,
        CallLimiter(settings),
        _runtime_key(settings),
        ProviderSlots(settings.ai_max_concurrency, settings.ai_queue_timeout_seconds),
        settings.ai_daily_limit,
    )


def day_start(now: datetime) -> datetime:
    """Midnight UTC of `now`'s day: the AI budget's day."""
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


async def check_budget(session: AsyncSession, actor: Actor, rt: AiRuntime) -> None:
    """429 `ai_budget_exhausted` once the organisation made its provider calls of the day.

    Counted from the stored generations, so the count survives restarts and every process
    sees the same one. Calls running right now are not stored yet: concurrent calls can
    overshoot the budget by at most the calls in flight.
    """
    if rt.remote is None or rt.daily_limit <= 0:
        return
    now = utcnow()
    since = day_start(now)
    used = await repository.count_provider_calls(session, actor.organization_id, since)
    if used < rt.daily_limit:
        return
    retry_after = max(1, math.ceil((since + timedelta(days=1) - now).total_seconds()))
    raise AiBudgetExhausted(
        f"This organisation made its {rt.daily_limit} AI provider calls for today (UTC); "
        f"try again in {retry_after} s",
        retry_after=retry_after,
    )
