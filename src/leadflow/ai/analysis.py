"""The `analyze_lead` action: stage, urgency, next step and score; `apply` writes them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.ai.local_rules import STAGE_NAMES, format_date, normalize_status
from leadflow.ai.provider_call import (
    Answer,
    Prepared,
    fallback_warnings,
    response_meta,
    stored_input,
)
from leadflow.ai.providers import AnalyzeTask
from leadflow.ai.runtime import AiRuntime
from leadflow.ai.schemas import AnalysisResponse, AnalyzeData
from leadflow.ai.subject import resolve
from leadflow.ai.types import Analysis
from leadflow.authz.actor import Actor
from leadflow.kit.clock import utcnow
from leadflow.leads import service as leads
from leadflow.leads.effects import audit_view
from leadflow.models.ai_generation import AiGeneration
from leadflow.models.lead import Lead
from leadflow.organizations.service import org_settings
from leadflow.pipeline import repository as pipeline_repo

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
    a manual move would (history, SLA, audit); the whole apply is audited as
    `lead.ai_analysis`. The lock is taken only in phase 3: holding the row during a model
    call would block editors.
    """
    since = audit_view(lead)
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
        since=since,
        count_edit=not moved,  # one apply is one edit: the stage move already counted it
    )


async def prepare_analysis(session: AsyncSession, actor: Actor, data: AnalyzeData) -> Prepared:
    """Stage, urgency, next step, score and reasons; `apply` writes them to the lead."""
    now = utcnow()
    default = (await org_settings(session, actor.organization_id)).default_language
    subject = await resolve(
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

    def respond(answer: Answer[Any], gen: AiGeneration, rt: AiRuntime) -> AnalysisResponse:
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
            **response_meta(answer, gen, fallback_warnings(answer, rt)),
        )

    return Prepared(
        action="analyze_lead",
        lead_id=lead_id,
        input=stored_input(data, ctx),
        call=lambda p: p.analyze(task),
        output=output,
        respond=respond,
        apply=_apply if applied else None,
    )
