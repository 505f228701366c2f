"""Running an AI action for a caller: the app's runtime, the organisation's own provider, the
stored generation (the API's `POST /ai` and the lead page's AI panel)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ai import provider_call, service
from leadflow.ai.integration import runtime_for
from leadflow.ai.runtime import AiRuntime, build_runtime
from leadflow.ai.schemas import AiRequest
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.db.engine import unit_of_work


async def app_runtime(state: Any) -> AiRuntime:
    """The app's provider, fallback and rate limiter (`state` is `app.state`), built on first
    use and rebuilt when the AI settings change (tests swap `app.state.settings`)."""
    current: AiRuntime | None = getattr(state, "ai_runtime", None)
    if current is not None and current.matches(state.settings):
        return current
    state.ai_runtime = build_runtime(state.settings)
    if current is not None:
        await current.aclose()
    runtime: AiRuntime = state.ai_runtime
    return runtime


async def run_action(
    session: AsyncSession,
    sessions: Callable[[], AsyncSession],
    settings: Settings,
    runtime: AiRuntime,
    actor: Actor,
    body: AiRequest,
) -> provider_call.AiResponse:
    """Prepare, ask the provider (no transaction held meanwhile) and store the generation."""
    # The organisation's own OpenAI account, when it connected one, answers instead of the
    # server-wide provider (same limits, same local fallback).
    own = await runtime_for(session, settings, runtime, actor.organization_id)
    try:
        prepared = await service.prepare(session, actor, own, body)
        # The reads are done: end the request's transaction here so its connection goes back
        # to the pool while the provider works (seconds, for a language model). The request's
        # own commit at the end then has nothing left to do.
        await session.commit()
        answered = await provider_call.ask(actor, own, prepared)
        async with sessions() as store, unit_of_work(store):
            return await provider_call.finish(store, actor, own, prepared, answered)
    finally:
        if own is not runtime:
            await own.provider.aclose()
