"""The AI bridge: resolve the lead, pick the provider, fall back, rate-limit, record, apply.

Every call is stored in `ai_generations` (and shows up in the lead's timeline as
`ai_generation`). The configured provider answers first; when it fails (error, timeout,
invalid output) the local rule-based provider answers and the response says `fallback: true`.
Imports analyse leads through `analyze_leads`, which is always the local batch (see there).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, TypeVar, cast

from limits import RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ai import local, prompts, repository
from leadflow.ai.local_rules import (
    STAGE_NAMES,
    detect_language,
    format_date,
    normalize_channel,
    normalize_status,
)
from leadflow.ai.openai_provider import OpenAIProvider
from leadflow.ai.providers import (
    AnalyzeTask,
    ChatTask,
    ChatTurn,
    LocalProvider,
    MessageTask,
    PipelineContext,
    Provider,
    ProviderError,
    Result,
    StageCount,
    SummaryTask,
    TimelineEvent,
)
from leadflow.ai.schemas import (
    AiWarning,
    AnalysisResponse,
    AnalyzeData,
    AnalyzeRequest,
    Channel,
    ChatData,
    ChatMessageIn,
    ChatRequest,
    ChatResponse,
    GenerateMessageData,
    GenerateMessageRequest,
    Language,
    LeadIn,
    MessageResponse,
    SummarizeData,
    SummarizeRequest,
    SummaryResponse,
)
from leadflow.ai.types import Analysis, Draft, LeadContext
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.db.types import new_id
from leadflow.exceptions import NotFound, ServiceUnavailable, TooManyRequests
from leadflow.kit.clock import utcnow
from leadflow.kit.pagination import PageParams
from leadflow.kit.ratelimit import build_storage
from leadflow.leads import repository as leads_repo
from leadflow.leads import service as leads
from leadflow.leads.registry import register_lead_child
from leadflow.models.ai_generation import AiGeneration
from leadflow.models.lead import Lead
from leadflow.organizations.service import org_settings
from leadflow.pipeline import repository as pipeline_repo
from leadflow.pipeline import service as pipeline
from leadflow.timeline import service as timeline
from leadflow.timeline.registry import model_source, register_source, sources

log = logging.getLogger("leadflow.ai")

T = TypeVar("T")

TIMELINE_KIND = "ai_generation"
_SUMMARY_EVENTS = 100
# Above this many leads the local batch runs in a worker thread so the event loop keeps
# serving requests; below it the thread hand-off costs more than the analysis.
_THREAD_BATCH = 5_000

# --------------------------------------------------------------------------- runtime


class AiBusy(TooManyRequests):
    """Every provider slot of this process stayed busy for the whole queue wait."""

    code = "ai_busy"
    title = "AI provider busy"


class AiBudgetExhausted(TooManyRequests):
    """The organisation used up its provider calls of the (UTC) day."""

    code = "ai_budget_exhausted"
    title = "AI budget exhausted"


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


# --------------------------------------------------------------------------- batch analysis


async def analyze_leads(contexts: Sequence[LeadContext], *, now: datetime) -> list[Analysis]:
    """Analyses of many leads (imports), in input order, always by the local rules.

    One in-process batch call: no network and no per-lead round trip. This holds even when
    `LEADFLOW_AI_PROVIDER=openai`: a language-model call per row would cost money and seconds
    per lead — days and a large bill for a million-row import — while the rules answer a
    million leads in seconds. Single leads can be re-analysed with the configured provider
    through `analyze_lead` later.
    """
    if len(contexts) > _THREAD_BATCH:
        return await asyncio.to_thread(local.analyze_batch, contexts, now=now)
    return local.analyze_batch(contexts, now=now)


# --------------------------------------------------------------------------- timeline


def _short(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


_ACTION_LABELS = {
    "generate_message": "message draft",
    "chat": "chat answer",
    "analyze_lead": "lead analysis",
    "summarize_lead": "summary",
}


def _timeline_entry(row: AiGeneration) -> tuple[str, dict[str, Any]]:
    label = _ACTION_LABELS.get(row.action, row.action)
    via = row.provider + (", fallback" if row.fallback else "")
    reply = str((row.output or {}).get("reply") or "")
    return f"AI {label} ({via})", {
        "generation_id": str(row.id),
        "action": row.action,
        "provider": row.provider,
        "model": row.model,
        "outcome": row.outcome,
        "fallback": row.fallback,
        "reply": _short(reply) if reply else None,
    }


register_source(model_source(TIMELINE_KIND, AiGeneration, AiGeneration.created_at, _timeline_entry))
register_lead_child(AiGeneration)  # merging leads moves their AI history with them


# --------------------------------------------------------------------------- context


def _user_texts(messages: Sequence[ChatMessageIn]) -> list[str]:
    return [m.content for m in messages if m.role != "assistant"]


def _turns(messages: Sequence[ChatMessageIn]) -> list[ChatTurn]:
    return [ChatTurn(m.role, m.content) for m in messages]


async def _context_of(
    session: AsyncSession, lead: Lead, *, now: datetime, default_language: str
) -> LeadContext:
    """A stored lead as plain provider data (with its open and overdue tasks)."""
    open_tasks, overdue = await repository.task_counts(session, lead.id, now)
    return LeadContext(
        first_name=lead.first_name,
        last_name=lead.last_name,
        company=lead.company,
        email=lead.email,
        phone=lead.phone,
        channel=lead.channel,
        status=lead.status,
        notes=lead.notes,
        disg_type=lead.disg_type,
        last_contacted_at=lead.last_contacted_at,
        created_at=lead.created_at,
        open_tasks=open_tasks,
        overdue_tasks=overdue,
        language=detect_language(lead.notes) or default_language,
    )


def _context_from(data: LeadIn, *, default_language: str) -> LeadContext:
    """An inline lead (seed 000's object) as provider data."""
    first, last = data.first_name, data.last_name
    if data.name and not (first or last):
        first, last = leads.split_name(data.name)
    return LeadContext(
        first_name=first,
        last_name=last,
        company=data.company,
        email=data.email,
        phone=data.phone,
        channel=data.channel,
        status=data.status,
        notes=data.notes,
        disg_type=data.disg_type,
        last_contacted_at=data.last_contact,
        language=data.language or detect_language(data.notes) or default_language,
    )


@dataclass
class _Subject:
    """The lead a call is about: the stored row (if any) and its provider context."""

    row: Lead | None
    context: LeadContext


async def _resolve(
    session: AsyncSession,
    actor: Actor,
    *,
    lead: LeadIn | None,
    lead_id: uuid.UUID | None,
    now: datetime,
    default_language: str,
) -> _Subject | None:
    """The stored lead in scope (404 otherwise; reading it needs `leads:read`) or the inline one."""
    if lead_id is not None:
        row = await leads.get_lead(session, actor, lead_id)
        actor.require("leads:read")
        ctx = await _context_of(session, row, now=now, default_language=default_language)
        return _Subject(row, ctx)
    if lead is not None:
        return _Subject(None, _context_from(lead, default_language=default_language))
    return None


# --------------------------------------------------------------------------- calling
#
# A call runs in three phases so that no database connection waits on the provider:
# `prepare` reads everything in the request's session (the endpoint then commits it, which
# hands the connection back to the pool), `ask` calls the provider with no session open, and
# `finish` stores the generation (and applies an analysis) in a second, short transaction.

AiResponse = MessageResponse | ChatResponse | AnalysisResponse | SummaryResponse


@dataclass
class _Answer(Generic[T]):
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
    respond: Callable[[_Answer[Any], AiGeneration, AiRuntime], AiResponse]
    apply: bool = False  # analyze_lead with `apply`: write the analysis to the lead


def day_start(now: datetime) -> datetime:
    """Midnight UTC of `now`'s day: the AI budget's day."""
    return datetime(now.year, now.month, now.day, tzinfo=UTC)


async def _check_budget(session: AsyncSession, actor: Actor, rt: AiRuntime) -> None:
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


async def ask(actor: Actor, rt: AiRuntime, prepared: Prepared) -> _Answer[Any] | Failed:
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
                return _Answer(
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
    return _Answer(res.value, rt.fallback, fell_back, error, tokens[0], tokens[1], _ms(start))


def _ms(start: float) -> int:
    return max(0, round((time.perf_counter() - start) * 1000))


def _generation(
    actor: Actor,
    prepared: Prepared,
    answered: _Answer[Any] | Failed,
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
    answered: _Answer[Any] | Failed,
) -> AiResponse:
    """Phase 3, in a new short transaction: store the generation, apply an analysis, answer.

    When nothing could answer, the failed call is still stored (`outcome: error`) and kept
    although the request fails with 503. A stored lead deleted while the provider worked
    is a 404 and nothing is stored (the input holds the lead's notes).
    """
    output = None if isinstance(answered, Failed) else prepared.output(answered.value)
    lead: Lead | None = None
    if prepared.apply and prepared.lead_id is not None:
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
        raise ServiceUnavailable(
            "The AI bridge could not answer", code="ai_unavailable", keep_changes=True
        )
    if prepared.apply and lead is not None:
        await _apply(session, actor, lead, answered.value, gen.id)
    return prepared.respond(answered, gen, rt)


def _warnings(answer: _Answer[Any], rt: AiRuntime) -> list[AiWarning]:
    if not answer.fallback:
        return []
    return [
        AiWarning(
            code="provider_fallback",
            message=f"The {rt.provider.name} provider failed ({answer.error}); the rule-based "
            "local provider answered instead.",
        )
    ]


def _meta(answer: _Answer[Any], gen: AiGeneration, warnings: list[AiWarning]) -> dict[str, Any]:
    return {
        "provider": answer.provider.name,
        "model": answer.provider.model,
        "prompt_version": answer.provider.prompt_version,
        "generation_id": gen.id,
        "fallback": answer.fallback,
        "warnings": warnings,
    }


def _input(data: Any, ctx: LeadContext | None, **extra: Any) -> dict[str, Any]:
    """What is stored as the call's input: the request and the lead data the provider saw."""
    out: dict[str, Any] = {"data": data.model_dump(mode="json", exclude_none=True)}
    if ctx is not None:
        out["lead"] = prompts.lead_payload(ctx)
    out.update(extra)
    return out


# --------------------------------------------------------------------------- actions


async def _consents(session: AsyncSession, subject: _Subject) -> dict[str, bool] | None:
    """The latest consent per channel (granted or revoked); None for an inline lead."""
    if subject.row is None:
        return None
    latest = await leads_repo.latest_consents(session, subject.row.id)
    return {channel: row.granted for channel, row in latest.items()}


def _consent_warnings(consents: dict[str, bool] | None, channel: str) -> list[AiWarning]:
    """No consent, or a revoked one, for the draft's channel (stored leads only)."""
    if consents is None:
        return [
            AiWarning(
                code="consent_unchecked",
                message="Consent could not be checked for an inline lead; send a lead_id.",
            )
        ]
    granted = consents.get(channel)
    if granted is None:
        return [
            AiWarning(
                code="no_consent",
                message=f"The lead has no recorded consent for {channel}; check before sending.",
            )
        ]
    if not granted:
        return [
            AiWarning(
                code="consent_revoked",
                message=f"The lead revoked consent for {channel}; do not send this message.",
            )
        ]
    return []


_SUBJECT_LABEL = {"de": "Betreff", "en": "Subject"}


async def _prepare_message(
    session: AsyncSession, actor: Actor, data: GenerateMessageData
) -> Prepared:
    """A follow-up draft: first name, channel, DISG style, notes, last contact, language."""
    now = utcnow()
    default = (await org_settings(session, actor.organization_id)).default_language
    subject = await _resolve(
        session, actor, lead=data.lead, lead_id=data.lead_id, now=now, default_language=default
    )
    assert subject is not None  # the schema requires lead or lead_id
    ctx = subject.context
    # Language: as asked, else the language the salesperson writes in, else the lead's (its
    # own field or its notes), else the organisation's default (already in ctx.language).
    language = data.language or detect_language(*_user_texts(data.messages)) or ctx.language
    language = "en" if language == "en" else "de"
    channel = data.channel or normalize_channel(ctx.channel)
    task = MessageTask(ctx, _turns(data.messages), channel, language, now)
    lead_id = subject.row.id if subject.row else None
    consents = await _consents(session, subject)

    def reply_of(draft: Draft) -> str:
        if draft.subject:
            return f"{_SUBJECT_LABEL[language]}: {draft.subject}\n\n{draft.body}"
        return draft.body

    def output(draft: Draft) -> dict[str, Any]:
        return {"reply": reply_of(draft), "channel": draft.channel, "subject": draft.subject}

    def respond(answer: _Answer[Any], gen: AiGeneration, rt: AiRuntime) -> MessageResponse:
        draft: Draft = answer.value
        warnings = _warnings(answer, rt) + _consent_warnings(consents, draft.channel)
        return MessageResponse(
            reply=reply_of(draft),
            lead_id=lead_id,
            channel=cast(Channel, draft.channel),
            language=cast(Language, language),
            subject=draft.subject,
            body=draft.body,
            **_meta(answer, gen, warnings),
        )

    return Prepared(
        action="generate_message",
        lead_id=lead_id,
        input=_input(data, ctx, channel=channel, language=language),
        call=lambda p: p.draft(task),
        output=output,
        respond=respond,
    )


async def _pipeline_context(session: AsyncSession, actor: Actor) -> PipelineContext:
    summary = await pipeline.summary(session, actor)
    return PipelineContext(
        total=summary.total,
        needs_action=await repository.count_needing_action(session, actor),
        stages=[StageCount(s.key, s.name, s.count) for s in summary.stages],
    )


async def _prepare_chat(session: AsyncSession, actor: Actor, data: ChatData) -> Prepared:
    """An answer to the conversation, about the lead or, without one, the pipeline."""
    now = utcnow()
    default = (await org_settings(session, actor.organization_id)).default_language
    subject = await _resolve(
        session, actor, lead=data.lead, lead_id=data.lead_id, now=now, default_language=default
    )
    ctx = subject.context if subject else None
    pipeline_ctx = None if subject else await _pipeline_context(session, actor)
    language = (
        data.language
        or detect_language(_user_texts(data.messages)[-1])
        or (ctx.language if ctx else None)
        or default
    )
    task = ChatTask(_turns(data.messages), language, now, lead=ctx, pipeline=pipeline_ctx)
    lead_id = subject.row.id if subject and subject.row else None
    extra: dict[str, Any] = {}
    if pipeline_ctx is not None:
        extra["pipeline"] = {
            "total": pipeline_ctx.total,
            "needs_action": pipeline_ctx.needs_action,
            "stages": {s.key: s.count for s in pipeline_ctx.stages},
        }

    def respond(answer: _Answer[Any], gen: AiGeneration, rt: AiRuntime) -> ChatResponse:
        return ChatResponse(
            reply=answer.value, lead_id=lead_id, **_meta(answer, gen, _warnings(answer, rt))
        )

    return Prepared(
        action="chat",
        lead_id=lead_id,
        input=_input(data, ctx, **extra),
        call=lambda p: p.chat(task),
        output=lambda reply: {"reply": reply},
        respond=respond,
    )


_ANALYSIS_TEXT = {
    "de": {
        "closed": "Abgeschlossen ({stage}) – keine Aktion nötig.",
        "due": "Nächster Schritt: {action} – jetzt fällig.",
        "planned": "Nächster Schritt: {action} am {date}.",
        "score": "Score {score}/100.",
    },
    "en": {
        "closed": "Closed ({stage}) – no action needed.",
        "due": "Next step: {action} – due now.",
        "planned": "Next step: {action} on {date}.",
        "score": "Score {score}/100.",
    },
}


def _analysis_reply(analysis: Analysis, language: str, now: datetime) -> str:
    t = _ANALYSIS_TEXT["en" if language == "en" else "de"]
    names = STAGE_NAMES["en" if language == "en" else "de"]
    if analysis.next_action_description is None:
        line = t["closed"].format(stage=names.get(analysis.status, analysis.status))
    elif analysis.needs_action or analysis.next_action_at is None:
        line = t["due"].format(action=analysis.next_action_description)
    else:
        when = format_date(analysis.next_action_at, language, now=now)
        line = t["planned"].format(action=analysis.next_action_description, date=when)
    return f"{line} {t['score'].format(score=analysis.score)}"


async def _apply(
    session: AsyncSession, actor: Actor, lead: Lead, analysis: Analysis, generation_id: uuid.UUID
) -> None:
    """Write the analysis to the (row-locked) lead through the leads service.

    The stage moves only to a stage the organisation's pipeline has (otherwise it stays), as
    a manual move would (history, SLA, audit); the other fields are audited as
    `lead.ai_analysis`. The lock is taken only in phase 3: holding the row during a model
    call would block editors.
    """
    target = normalize_status(analysis.status)
    moved = False
    if (
        target
        and target != lead.status
        and await pipeline_repo.get_stage_by_key(session, lead.organization_id, target)
    ):
        await leads.change_status(session, actor, lead.id, target, "AI analysis")
        moved = True
    desc = analysis.next_action_description
    await leads.apply_fields(
        session,
        actor,
        lead,
        {
            "needs_action": analysis.needs_action,
            "next_action_at": analysis.next_action_at,
            "next_action_description": desc[:500] if desc else None,
            "score": analysis.score,
        },
        action="lead.ai_analysis",
        extra={"generation_id": str(generation_id), "reasons": analysis.reasons},
        count_edit=not moved,  # one apply is one edit: the stage move already counted it
    )


async def _prepare_analysis(session: AsyncSession, actor: Actor, data: AnalyzeData) -> Prepared:
    """Stage, urgency, next step, score and reasons; `apply` writes them to the lead."""
    now = utcnow()
    default = (await org_settings(session, actor.organization_id)).default_language
    subject = await _resolve(
        session, actor, lead=data.lead, lead_id=data.lead_id, now=now, default_language=default
    )
    assert subject is not None  # the schema requires lead or lead_id
    if data.apply:
        actor.require("leads:write")
    ctx = subject.context
    language = "en" if ctx.language == "en" else "de"
    task = AnalyzeTask(ctx, language, now)
    lead_id = subject.row.id if subject.row else None
    applied = bool(data.apply) and lead_id is not None

    def output(analysis: Analysis) -> dict[str, Any]:
        at = analysis.next_action_at
        return {
            "reply": _analysis_reply(analysis, language, now),
            "status": analysis.status,
            "needs_action": analysis.needs_action,
            "next_action_at": at.isoformat() if at else None,
            "next_action_description": analysis.next_action_description,
            "score": analysis.score,
            "reasons": analysis.reasons,
            "applied": bool(data.apply),
        }

    def respond(answer: _Answer[Any], gen: AiGeneration, rt: AiRuntime) -> AnalysisResponse:
        analysis: Analysis = answer.value
        return AnalysisResponse(
            reply=_analysis_reply(analysis, language, now),
            lead_id=lead_id,
            status=analysis.status,
            needs_action=analysis.needs_action,
            next_action_at=analysis.next_action_at,
            next_action_description=analysis.next_action_description,
            score=analysis.score,
            reasons=analysis.reasons,
            applied=bool(data.apply),
            **_meta(answer, gen, _warnings(answer, rt)),
        )

    return Prepared(
        action="analyze_lead",
        lead_id=lead_id,
        input=_input(data, ctx),
        call=lambda p: p.analyze(task),
        output=output,
        respond=respond,
        apply=applied,
    )


async def _prepare_summary(session: AsyncSession, actor: Actor, data: SummarizeData) -> Prepared:
    """A short summary of the lead and its timeline (AI entries themselves left out)."""
    now = utcnow()
    default = (await org_settings(session, actor.organization_id)).default_language
    subject = await _resolve(
        session, actor, lead=None, lead_id=data.lead_id, now=now, default_language=default
    )
    assert subject is not None and subject.row is not None
    ctx = subject.context
    lead_id = subject.row.id
    language = data.language or ("en" if ctx.language == "en" else "de")
    kinds = [k for k in sources() if k != TIMELINE_KIND]
    items, _total = await timeline.timeline(
        session, actor, data.lead_id, PageParams(limit=_SUMMARY_EVENTS, offset=0), kinds
    )
    events = [TimelineEvent(i.occurred_at, i.kind, i.summary) for i in items]
    task = SummaryTask(ctx, events, language, now)

    def respond(answer: _Answer[Any], gen: AiGeneration, rt: AiRuntime) -> SummaryResponse:
        return SummaryResponse(
            reply=answer.value,
            lead_id=lead_id,
            language=cast(Language, language),
            **_meta(answer, gen, _warnings(answer, rt)),
        )

    return Prepared(
        action="summarize_lead",
        lead_id=lead_id,
        input=_input(data, ctx, events=len(events)),
        call=lambda p: p.summarize(task),
        output=lambda reply: {"reply": reply},
        respond=respond,
    )


async def prepare(
    session: AsyncSession,
    actor: Actor,
    rt: AiRuntime,
    body: GenerateMessageRequest | ChatRequest | AnalyzeRequest | SummarizeRequest,
) -> Prepared:
    """Phase 1: every read the action needs (lead in scope, consents, timeline, settings)
    and the organisation's daily budget; nothing is written."""
    prepared: Prepared
    if isinstance(body, GenerateMessageRequest):
        prepared = await _prepare_message(session, actor, body.data)
    elif isinstance(body, ChatRequest):
        prepared = await _prepare_chat(session, actor, body.data)
    elif isinstance(body, AnalyzeRequest):
        prepared = await _prepare_analysis(session, actor, body.data)
    else:
        prepared = await _prepare_summary(session, actor, body.data)
    await _check_budget(session, actor, rt)
    return prepared


async def list_generations(
    session: AsyncSession,
    actor: Actor,
    *,
    lead_id: uuid.UUID | None,
    action: str | None,
    page: PageParams,
) -> tuple[list[AiGeneration], int]:
    """Stored AI calls of the organisation; a `lead_id` must be in scope (404 otherwise)."""
    if lead_id is not None:
        await leads.get_lead(session, actor, lead_id)
    return await repository.list_generations(
        session, actor, lead_id=lead_id, action=action, limit=page.limit, offset=page.offset
    )
