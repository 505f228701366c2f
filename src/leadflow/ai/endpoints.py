"""POST /api/v1/ai (alias POST /ai) and GET /api/v1/ai/generations."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request

from leadflow.ai import actions, provider_call, service
from leadflow.ai.actions import app_runtime
from leadflow.ai.runtime import AiRuntime
from leadflow.ai.schemas import AiRequest, AiResponse, GenerationRead
from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep, SessionFactoryDep
from leadflow.kit.pagination import Page, PageParams, page_params

router = APIRouter(tags=["ai"])
AiUser = Annotated[Actor, Depends(require_permission("ai:use"))]


async def ai_runtime(request: Request) -> AiRuntime:
    """The app's provider, fallback and rate limiter, built on first use and rebuilt when the
    AI settings change (tests swap `app.state.settings`)."""
    return await app_runtime(request.app.state)


Runtime = Annotated[AiRuntime, Depends(ai_runtime)]


@router.post("", response_model=AiResponse)
async def run_action(
    request: Request,
    session: SessionDep,
    sessions: SessionFactoryDep,
    actor: AiUser,
    runtime: Runtime,
    body: AiRequest,
) -> provider_call.AiResponse:
    """Run an AI action: `generate_message`, `chat`, `analyze_lead` or `summarize_lead`.

    The `local` provider (default) is rule-based — keyword rules and templates, no language
    model; `openai` uses the Responses API and falls back to `local` when it fails
    (`fallback: true`). Every call is stored (`generation_id`) and rate-limited per
    organisation (429 with Retry-After); calls to a remote provider also count against the
    organisation's daily budget (429 `ai_budget_exhausted`) and wait for one of the process's
    provider slots (429 `ai_busy` when none frees up in time).
    """
    settings = request.app.state.settings
    return await actions.run_action(session, sessions, settings, runtime, actor, body)


@router.get("/generations", response_model=Page[GenerationRead])
async def list_generations(
    session: SessionDep,
    actor: AiUser,
    page: Annotated[PageParams, Depends(page_params)],
    lead_id: uuid.UUID | None = None,
    action: Literal["generate_message", "chat", "analyze_lead", "summarize_lead"] | None = None,
) -> Page[GenerationRead]:
    """Stored AI calls, newest first; `lead_id` (in your scope) narrows to one lead."""
    rows, total = await service.list_generations(
        session, actor, lead_id=lead_id, action=action, page=page
    )
    return Page(
        items=[GenerationRead.model_validate(r) for r in rows],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
