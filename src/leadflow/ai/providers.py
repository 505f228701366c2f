"""The provider interface of the AI bridge and the local (rule-based) provider behind it.

A provider answers four kinds of task — draft a message, chat, analyse a lead, summarise a lead
— from plain data (no ORM, no session). `LEADFLOW_AI_PROVIDER` picks `local` (default) or
`openai`; the local provider is also the fallback whenever the configured one fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from leadflow.ai import local
from leadflow.ai.local_rules import STAGE_NAMES, detect_language, normalize_status
from leadflow.ai.types import Analysis, Draft, LeadContext

T = TypeVar("T")

# The local provider is a set of keyword rules and templates, not a language model; its "model"
# name says so and changes whenever the rules change in a way users would notice.
LOCAL_MODEL = "leadflow-rules-v1"


class ProviderError(Exception):
    """The provider could not answer (error, timeout, invalid output).

    Tokens are kept when the provider reported them: a call that returned invalid JSON was
    still paid for.
    """

    def __init__(
        self, message: str, *, input_tokens: int | None = None, output_tokens: int | None = None
    ) -> None:
        super().__init__(message)
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One turn of a conversation: role `user`, `assistant` (or `system`, read as `user`)."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class MessageTask:
    """Draft a message to `lead` on `channel` (whatsapp, email, sms, phone) in `language`."""

    lead: LeadContext
    messages: Sequence[ChatTurn]
    channel: str
    language: str
    now: datetime

    @property
    def instruction(self) -> str:
        """The salesperson's latest request ("" when there is none)."""
        asked = [m.content for m in self.messages if m.role != "assistant"]
        return asked[-1] if asked else ""


@dataclass(frozen=True, slots=True)
class StageCount:
    """Leads in one pipeline stage."""

    key: str
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class PipelineContext:
    """The pipeline in the actor's scope, for questions that are not about one lead."""

    total: int
    needs_action: int
    stages: Sequence[StageCount] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True)
class ChatTask:
    """Answer the latest user turn; `lead` or `pipeline` is the context."""

    messages: Sequence[ChatTurn]
    language: str  # used when the conversation's language is unclear
    now: datetime
    lead: LeadContext | None = None
    pipeline: PipelineContext | None = None


@dataclass(frozen=True, slots=True)
class AnalyzeTask:
    """Stage, urgency, next step and score of `lead`; texts in `language`."""

    lead: LeadContext
    language: str
    now: datetime


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One timeline entry as a provider sees it."""

    occurred_at: datetime
    kind: str
    summary: str


@dataclass(frozen=True, slots=True)
class SummaryTask:
    """Summarise `lead` and its `events` (newest first) in `language`."""

    lead: LeadContext
    events: Sequence[TimelineEvent]
    language: str
    now: datetime


@dataclass(frozen=True)
class Result(Generic[T]):
    """A provider's answer with the tokens it used (None when not metered)."""

    value: T
    input_tokens: int | None = None
    output_tokens: int | None = None


class Provider(Protocol):
    """What the AI service needs from a provider."""

    name: str
    model: str
    prompt_version: str

    async def draft(self, task: MessageTask) -> Result[Draft]:
        """A message draft."""
        ...

    async def chat(self, task: ChatTask) -> Result[str]:
        """A chat answer."""
        ...

    async def analyze(self, task: AnalyzeTask) -> Result[Analysis]:
        """A lead analysis."""
        ...

    async def summarize(self, task: SummaryTask) -> Result[str]:
        """A short summary."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...


_PIPELINE_TEXT = {
    "de": {
        "empty": "In deiner Pipeline sind noch keine Leads.",
        "head": "Deine Pipeline: {total} Leads",
        "action": "{n} davon brauchen jetzt eine Aktion.",
        "hint": "Für Empfehlungen oder Nachrichten zu einem Lead schicke die lead_id mit.",
    },
    "en": {
        "empty": "Your pipeline has no leads yet.",
        "head": "Your pipeline: {total} leads",
        "action": "{n} of them need action now.",
        "hint": "For advice or a message about one lead, send its lead_id.",
    },
}


def pipeline_reply(pipeline: PipelineContext, language: str) -> str:
    """A rule-based overview of the pipeline: leads per stage and how many need action."""
    t = _PIPELINE_TEXT["en" if language == "en" else "de"]
    if pipeline.total == 0:
        return f"{t['empty']} {t['hint']}"
    names = STAGE_NAMES["en" if language == "en" else "de"]
    parts = []
    for stage in pipeline.stages:
        if stage.count:
            known = normalize_status(stage.key)
            label = names[known] if known and known == stage.key else stage.name
            parts.append(f"{label} {stage.count}")
    head = t["head"].format(total=pipeline.total)
    return f"{head} ({', '.join(parts)}). {t['action'].format(n=pipeline.needs_action)} {t['hint']}"


class LocalProvider:
    """The offline provider: `leadflow.ai.local`'s keyword rules and templates.

    Deterministic, no network and no language model — the response's `model`
    ("leadflow-rules-v1") says so.
    """

    name = "local"
    model = LOCAL_MODEL
    prompt_version = "rules-v1"  # no prompts: the rules are versioned with the model name

    async def draft(self, task: MessageTask) -> Result[Draft]:
        """A template draft in the lead's DISG style for the channel and language."""
        return Result(
            local.generate_message(
                task.lead,
                channel=task.channel,
                language=task.language,
                instruction=task.instruction,
                now=task.now,
            )
        )

    async def chat(self, task: ChatTask) -> Result[str]:
        """An intent-matched answer about the lead, or a pipeline overview without a lead."""
        if task.lead is None and task.pipeline is not None:
            asked = [m.content for m in task.messages if m.role != "assistant"]
            language = detect_language(asked[-1] if asked else None) or task.language
            return Result(pipeline_reply(task.pipeline, language))
        turns = [{"role": m.role, "content": m.content} for m in task.messages]
        return Result(local.chat_reply(task.lead, turns, now=task.now))

    async def analyze(self, task: AnalyzeTask) -> Result[Analysis]:
        """The rule-based analysis."""
        return Result(local.analyze(task.lead, now=task.now))

    async def summarize(self, task: SummaryTask) -> Result[str]:
        """Stage, last contact, latest activity and what the notes say."""
        events = [(e.occurred_at, e.kind, e.summary) for e in task.events]
        return Result(local.summarize(task.lead, events, language=task.language))

    async def aclose(self) -> None:
        """Nothing to release."""
