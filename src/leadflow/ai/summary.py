"""The `summarize_lead` action: a short summary of a stored lead and its timeline."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ai.provider_call import (
    Answer,
    Prepared,
    fallback_warnings,
    response_meta,
    stored_input,
)
from leadflow.ai.providers import SummaryTask, TimelineEvent
from leadflow.ai.runtime import AiRuntime
from leadflow.ai.schemas import Language, SummarizeData, SummaryResponse
from leadflow.ai.subject import resolve
from leadflow.ai.timeline import TIMELINE_KIND
from leadflow.authz.actor import Actor
from leadflow.kit.clock import utcnow
from leadflow.kit.pagination import PageParams
from leadflow.models.ai_generation import AiGeneration
from leadflow.organizations.service import org_settings
from leadflow.timeline import service as timeline
from leadflow.timeline.registry import sources

_SUMMARY_EVENTS = 100


async def prepare_summary(session: AsyncSession, actor: Actor, data: SummarizeData) -> Prepared:
    """A short summary of the lead and its timeline (AI entries themselves left out)."""
    now = utcnow()
    default = (await org_settings(session, actor.organization_id)).default_language
    subject = await resolve(
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

    def respond(answer: Answer[Any], gen: AiGeneration, rt: AiRuntime) -> SummaryResponse:
        return SummaryResponse(
            reply=answer.value,
            lead_id=lead_id,
            language=cast(Language, language),
            **response_meta(answer, gen, fallback_warnings(answer, rt)),
        )

    return Prepared(
        action="summarize_lead",
        lead_id=lead_id,
        input=stored_input(data, ctx, events=len(events)),
        call=lambda p: p.summarize(task),
        output=lambda reply: {"reply": reply},
        respond=respond,
    )
