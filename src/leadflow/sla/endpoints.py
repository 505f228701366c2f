"""/api/v1/sla/policies and /api/v1/sla/status."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response, status

from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep
from leadflow.kit.clock import utcnow
from leadflow.kit.pagination import Page, PageParams, page_params
from leadflow.leads.service import sla_state
from leadflow.sla import service
from leadflow.sla.schemas import PolicyCreate, PolicyRead, PolicyUpdate, SlaLead

router = APIRouter(tags=["sla"])
Reader = Annotated[Actor, Depends(require_permission("leads:read"))]
Admin = Annotated[Actor, Depends(require_permission("admin:settings"))]


@router.get("/policies", response_model=list[PolicyRead])
async def list_policies(session: SessionDep, actor: Reader) -> list[PolicyRead]:
    """Policies in evaluation order (without a match the default applies)."""
    return [PolicyRead.model_validate(p) for p in await service.list_policies(session, actor)]


@router.post("/policies", response_model=PolicyRead, status_code=status.HTTP_201_CREATED)
async def create_policy(
    request: Request, session: SessionDep, actor: Admin, body: PolicyCreate
) -> PolicyRead:
    """Add a policy."""
    return PolicyRead.model_validate(
        await service.create_policy(session, actor, request.app.state.settings, body)
    )


@router.patch("/policies/{policy_id}", response_model=PolicyRead)
async def update_policy(
    session: SessionDep, actor: Admin, policy_id: uuid.UUID, body: PolicyUpdate
) -> PolicyRead:
    """Change a policy."""
    return PolicyRead.model_validate(await service.update_policy(session, actor, policy_id, body))


@router.delete("/policies/{policy_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_policy(session: SessionDep, actor: Admin, policy_id: uuid.UUID) -> Response:
    """Remove a policy."""
    await service.delete_policy(session, actor, policy_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/status", response_model=Page[SlaLead])
async def sla_status(
    session: SessionDep,
    actor: Reader,
    page: Annotated[PageParams, Depends(page_params)],
    state: Literal["at_risk", "breached", "met", "running"] = "at_risk",
) -> Page[SlaLead]:
    """Leads in your scope by SLA state, most urgent deadline first."""
    rows, total = await service.leads_in_state(session, actor, state, page)
    now = utcnow()
    return Page(
        items=[
            SlaLead(
                id=r.id,
                full_name=r.full_name,
                status=r.status,
                assignee_id=r.assignee_id,
                sla_deadline=r.sla_deadline,
                sla_met_at=r.sla_met_at,
                sla_breached_at=r.sla_breached_at,
                state=sla_state(r, now),
            )
            for r in rows
        ],
        total=total,
        limit=page.limit,
        offset=page.offset,
    )
