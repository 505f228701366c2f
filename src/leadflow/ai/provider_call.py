"""One AI call: ask the configured provider, fall back to the local one, store the generation.

A call runs in three phases so that no database connection waits on the provider:
`prepare` (in `leadflow.ai.service`) reads everything in the request's session (the endpoint
then commits it, which hands the connection back to the pool), `ask` calls the provider with
no session open, and `finish` stores the generation (and applies an analysis) in a second,
short transaction. Every call is stored in `ai_generations`; when the configured provider
fails (error, timeout, invalid output) the local rule-based provider answers and the
response says `fallback: true`.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ai import prompts, repository
from leadflow.ai.errors import PROVIDER_FALLBACK, AiUnavailable
from leadflow.ai.providers import Provider, ProviderError, Result
from leadflow.ai.runtime import AiRuntime
from leadflow.ai.schemas import (
    AiWarning,
    AnalysisResponse,
    ChatResponse,
    MessageResponse,
    SummaryResponse,
)
from leadflow.ai.types import LeadContext
from leadflow.authz.actor import Actor
from leadflow.db.types import new_id
from leadflow.exceptions import NotFound
from leadflow.leads import service as leads
from leadflow.models.ai_generation import AiGeneration
from leadflow.models.lead import Lead

log = logging.getLogger("leadflow.ai")

T = TypeVar("T")

AiResponse = MessageResponse | ChatResponse | AnalysisResponse | SummaryResponse
# Phase 3's write of the answer to the stored lead: session, actor, the lead, the provider's
# answer and the generation's id.
Apply = Callable[[AsyncSession, Actor, Lead, Any, uuid.UUID], Awaitable[None]]


@dataclass
class Answer(Generic[T]):
    """What answered, with what, and how long it took."""

    value: T
    provider: Provider
    fallback: bool
    error: str | None
    input_tokens: int | None
    output_tokens: int | None
    latency_ms: int


@dataclass
class Failed:
    """Nothing could answer; kept as an `outcome: error` generation."""

    provider: Provider
    fallback: bool
    error: str
    input_tokens: int | None
    output_tokens: int | None
    latency_ms: int


@dataclass
class Prepared:
    """What phase 1 read: the provider call to make, and how to store and answer its result.

    Holds plain data only (no ORM rows), so nothing needs the first session any more.
    """

    action: str
    lead_id: uuid.UUID | None
    input: dict[str, Any]
    call: Callable[[Provider], Awaitable[Result[Any]]]
    output: Callable[[Any], dict[str, Any]]
    respond: Callable[[Answer[Any], AiGeneration, AiRuntime], AiResponse]
    apply: Apply | None = None  # analyze_lead with `apply`: write the analysis to the lead


def stored_input(data: Any, ctx: LeadContext | None, **extra: Any) -> dict[str, Any]:
    """What is stored as the call's input: the request and the lead data the provider saw."""
    out: dict[str, Any] = {"data": data.model_dump(mode="json", exclude_none=True)}
    if ctx is not None:
        out["lead"] = prompts.lead_payload(ctx)
    out.update(extra)
    return out


async def ask(actor: Actor, rt: AiRuntime, prepared: Prepared) -> Answer[Any] | Failed:
    """Phase 2 (no database session open): rate-limit, call the provider in one of the
    process's slots, fall back to the local one when it fails."""
    await rt.limiter.acquire(actor.organization_id)
    start = time.perf_counter()
    remote = rt.remote
    error: str | None = None
    tokens: tuple[int | None, int | None] = (None, None)
    if remote is not None:
        async with rt.slots.slot():
            try:
                res = await prepared.call(remote)
                return Answer(
                    res.value, remote, False, None, res.input_tokens, res.output_tokens, _ms(start)
                )
            except ProviderError as exc:
                error = f"{remote.name}/{remote.model}: {exc}"[:500]
                tokens = (exc.input_tokens, exc.output_tokens)
                log.warning("AI provider failed, local fallback answers", extra={"error": error})
            except Exception as exc:
                # A bug on our side of the vendor boundary must not cost the user the answer.
                error = f"{remote.name}/{remote.model}: {type(exc).__name__}"
                log.exception("AI provider raised unexpectedly, local fallback answers")
    try:
        res = await prepared.call(rt.fallback)
    except Exception as exc:
        # The rules are pure functions; reaching this is a bug. Keep the evidence.
        log.exception("local AI provider failed")
        failed = remote or rt.fallback
        return Failed(
            failed,
            remote is not None,
            (error or f"{failed.name}: {type(exc).__name__}")[:500],
            tokens[0],
            tokens[1],
            _ms(start),
        )
    fell_back = remote is not None
    return Answer(res.value, rt.fallback, fell_back, error, tokens[0], tokens[1], _ms(start))


def _ms(start: float) -> int:
    return max(0, round((time.perf_counter() - start) * 1000))


def _generation(
    actor: Actor,
    prepared: Prepared,
    answered: Answer[Any] | Failed,
    output: dict[str, Any] | None,
) -> AiGeneration:
    p = answered.provider
    failed = isinstance(answered, Failed)
    return AiGeneration(
        id=new_id(),
        organization_id=actor.organization_id,
        actor_user_id=actor.user_id,
        lead_id=prepared.lead_id,
        action=prepared.action,
        provider=p.name,
        model=p.model,
        prompt_version=p.prompt_version,
        input=prepared.input,
        output=output,
        input_tokens=answered.input_tokens,
        output_tokens=answered.output_tokens,
        latency_ms=answered.latency_ms,
        outcome="error" if failed else ("fallback" if answered.fallback else "ok"),
        fallback=answered.fallback,
        error=answered.error,
    )


async def finish(
    session: AsyncSession,
    actor: Actor,
    rt: AiRuntime,
    prepared: Prepared,
    answered: Answer[Any] | Failed,
) -> AiResponse:
    """Phase 3, in a new short transaction: store the generation, apply an analysis, answer.

    When nothing could answer, the failed call is still stored (`outcome: error`) and kept
    although the request fails with 503. A stored lead deleted while the provider worked
    is a 404 and nothing is stored (the input holds the lead's notes).
    """
    output = None if isinstance(answered, Failed) else prepared.output(answered.value)
    lead: Lead | None = None
    if prepared.apply is not None and prepared.lead_id is not None:
        # Lock the lead before the insert: the insert's foreign-key check share-locks the
        # lead on PostgreSQL, and two applies that both hold that share and then ask for the
        # row lock deadlock.
        lead = await leads.get_lead(session, actor, prepared.lead_id, for_update=True)
    try:
        # Otherwise the write comes first: on SQLite a transaction that reads before it
        # writes cannot wait for the write lock when another writer went first.
        gen = await repository.add_generation(
            session, _generation(actor, prepared, answered, output)
        )
    except IntegrityError:
        raise NotFound("Lead not found") from None  # erased meanwhile
    if lead is None and prepared.lead_id is not None:
        lead = await leads.get_lead(session, actor, prepared.lead_id)
    if isinstance(answered, Failed):
        raise AiUnavailable("The AI bridge could not answer", keep_changes=True)
    if prepared.apply is not None and lead is not None:
        await prepared.apply(session, actor, lead, answered.value, gen.id)
    return prepared.respond(answered, gen, rt)


def fallback_warnings(answer: Answer[Any], rt: AiRuntime) -> list[AiWarning]:
    """The `provider_fallback` warning when the local provider answered instead."""
    if not answer.fallback:
        return []
    return [
        AiWarning(
            code=PROVIDER_FALLBACK,
            message=f"The {rt.provider.name} provider failed ({answer.error}); the rule-based "
            "local provider answered instead.",
        )
    ]


def response_meta(
    answer: Answer[Any], gen: AiGeneration, warnings: list[AiWarning]
) -> dict[str, Any]:
    """The fields every AI response carries: who answered, the generation, the warnings."""
    return {
        "provider": answer.provider.name,
        "model": answer.provider.model,
        "prompt_version": answer.provider.prompt_version,
        "generation_id": gen.id,
        "fallback": answer.fallback,
        "warnings": warnings,
    }
