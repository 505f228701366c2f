"""The conversational AI actions: a follow-up message draft (`generate_message`) and a chat
answer about a lead or, without one, the pipeline (`chat`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ai import repository
from leadflow.ai.errors import CONSENT_REVOKED, CONSENT_UNCHECKED, NO_CONSENT
from leadflow.ai.local_rules import detect_language, normalize_channel
from leadflow.ai.provider_call import (
    Answer,
    Prepared,
    fallback_warnings,
    response_meta,
    stored_input,
)
from leadflow.ai.providers import ChatTask, ChatTurn, MessageTask, PipelineContext, StageCount
from leadflow.ai.runtime import AiRuntime
from leadflow.ai.schemas import (
    AiWarning,
    Channel,
    ChatData,
    ChatMessageIn,
    ChatResponse,
    GenerateMessageData,
    Language,
    MessageResponse,
)
from leadflow.ai.subject import Subject, resolve
from leadflow.ai.types import Draft
from leadflow.authz.actor import Actor
from leadflow.kit.clock import utcnow
from leadflow.leads import repository as leads_repo
from leadflow.models.ai_generation import AiGeneration
from leadflow.organizations.service import org_settings
from leadflow.pipeline import service as pipeline


def _user_texts(messages: Sequence[ChatMessageIn]) -> list[str]:
    return [m.content for m in messages if m.role != "assistant"]


def _turns(messages: Sequence[ChatMessageIn]) -> list[ChatTurn]:
    return [ChatTurn(m.role, m.content) for m in messages]


async def _consents(session: AsyncSession, subject: Subject) -> dict[str, bool] | None:
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
                code=CONSENT_UNCHECKED,
                message="Consent could not be checked for an inline lead; send a lead_id.",
            )
        ]
    granted = consents.get(channel)
    if granted is None:
        return [
            AiWarning(
                code=NO_CONSENT,
                message=f"The lead has no recorded consent for {channel}; check before sending.",
            )
        ]
    if not granted:
        return [
            AiWarning(
                code=CONSENT_REVOKED,
                message=f"The lead revoked consent for {channel}; do not send this message.",
            )
        ]
    return []


_SUBJECT_LABEL = {"de": "Betreff", "en": "Subject"}


async def prepare_message(
    session: AsyncSession, actor: Actor, data: GenerateMessageData
) -> Prepared:
    """A follow-up draft: first name, channel, DISG style, notes, last contact, language."""
    now = utcnow()
    default = (await org_settings(session, actor.organization_id)).default_language
    subject = await resolve(
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

    def respond(answer: Answer[Any], gen: AiGeneration, rt: AiRuntime) -> MessageResponse:
        draft: Draft = answer.value
        warnings = fallback_warnings(answer, rt) + _consent_warnings(consents, draft.channel)
        return MessageResponse(
            reply=reply_of(draft),
            lead_id=lead_id,
            channel=cast(Channel, draft.channel),
            language=cast(Language, language),
            subject=draft.subject,
            body=draft.body,
            **response_meta(answer, gen, warnings),
        )

    return Prepared(
        action="generate_message",
        lead_id=lead_id,
        input=stored_input(data, ctx, channel=channel, language=language),
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


async def prepare_chat(session: AsyncSession, actor: Actor, data: ChatData) -> Prepared:
    """An answer to the conversation, about the lead or, without one, the pipeline."""
    now = utcnow()
    default = (await org_settings(session, actor.organization_id)).default_language
    subject = await resolve(
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

    def respond(answer: Answer[Any], gen: AiGeneration, rt: AiRuntime) -> ChatResponse:
        return ChatResponse(
            reply=answer.value,
            lead_id=lead_id,
            **response_meta(answer, gen, fallback_warnings(answer, rt)),
        )

    return Prepared(
        action="chat",
        lead_id=lead_id,
        input=stored_input(data, ctx, **extra),
        call=lambda p: p.chat(task),
        output=lambda reply: {"reply": reply},
        respond=respond,
    )
