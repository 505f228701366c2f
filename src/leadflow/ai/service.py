"""The AI bridge's public entry: phase 1 of a call and the stored calls (endpoints), and the
batch analysis of imports.

Every call is stored in `ai_generations` (and shows up in the lead's timeline as
`ai_generation`). The provider call itself (`ask`, phase 2) and storing it (`finish`, phase 3)
live in `leadflow.ai.provider_call`, the limits in `leadflow.ai.runtime`, the actions in
`messages`, `analysis` and `summary`. Imports analyse leads through `analyze_leads`, which is
always the local batch (see there).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

# Registers AI generations as a timeline source and as lead children; the app gets both here.
import leadflow.ai.timeline  # noqa: F401
from leadflow.ai import local, repository
from leadflow.ai.analysis import prepare_analysis
from leadflow.ai.messages import prepare_chat, prepare_message
from leadflow.ai.provider_call import Prepared
from leadflow.ai.runtime import AiRuntime, check_budget
from leadflow.ai.schemas import (
    AnalyzeRequest,
    ChatRequest,
    GenerateMessageRequest,
    SummarizeRequest,
)
from leadflow.ai.summary import prepare_summary
from leadflow.ai.types import Analysis, LeadContext
from leadflow.authz.actor import Actor
from leadflow.kit.pagination import PageParams
from leadflow.leads import service as leads
from leadflow.models.ai_generation import AiGeneration

# Above this many leads the local batch runs in a worker thread so the event loop keeps
# serving requests; below it the thread hand-off costs more than the analysis.
_THREAD_BATCH = 5_000


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
        prepared = await prepare_message(session, actor, body.data)
    elif isinstance(body, ChatRequest):
        prepared = await prepare_chat(session, actor, body.data)
    elif isinstance(body, AnalyzeRequest):
        prepared = await prepare_analysis(session, actor, body.data)
    else:
        prepared = await prepare_summary(session, actor, body.data)
    await check_budget(session, actor, rt)
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
