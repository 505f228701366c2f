"""/api/v1/admin/integrations/webhooks: endpoints, their deliveries, replay and test."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, status

from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.engine import unit_of_work
from leadflow.db.session import SessionDep, SessionFactoryDep
from leadflow.kit.pagination import Page, PageParams, page_params
from leadflow.webhooks import delivery, service
from leadflow.webhooks.schemas import (
    DeliveryRead,
    EndpointCreate,
    EndpointCreated,
    EndpointRead,
    EndpointUpdate,
    RotateIn,
    SecretRotated,
    TestResult,
)

router = APIRouter(tags=["webhooks"])
Admin = Annotated[Actor, Depends(require_permission("admin:settings"))]
Paging = Annotated[PageParams, Depends(page_params)]
DeliveryStatus = Literal["pending", "retry", "delivered", "failed"]


@router.post("", response_model=EndpointCreated, status_code=status.HTTP_201_CREATED)
async def create_webhook(
    request: Request, session: SessionDep, actor: Admin, body: EndpointCreate
) -> EndpointCreated:
    """Subscribe a URL to events. The signing secret is in this response only."""
    return await service.create_endpoint(session, request.app.state.settings, actor, body)


@router.get("", response_model=Page[EndpointRead])
async def list_webhooks(session: SessionDep, actor: Admin, page: Paging) -> Page[EndpointRead]:
    """The organisation's endpoints, oldest first."""
    items, total = await service.list_endpoints(session, actor, page)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/deliveries/{delivery_id}/replay", response_model=DeliveryRead)
async def replay_delivery(
    session: SessionDep, actor: Admin, delivery_id: uuid.UUID
) -> DeliveryRead:
    """Send a delivered or failed delivery again (same `webhook-id`, fresh attempts)."""
    return await service.replay(session, actor, delivery_id)


@router.get("/{endpoint_id}", response_model=EndpointRead)
async def get_webhook(session: SessionDep, actor: Admin, endpoint_id: uuid.UUID) -> EndpointRead:
    """One endpoint (without its secret)."""
    return await service.get_endpoint(session, actor, endpoint_id)


@router.patch("/{endpoint_id}", response_model=EndpointRead)
async def update_webhook(
    request: Request,
    session: SessionDep,
    actor: Admin,
    endpoint_id: uuid.UUID,
    body: EndpointUpdate,
) -> EndpointRead:
    """Change events, URL, description, or status (`active` re-enables a disabled endpoint)."""
    return await service.update_endpoint(
        session, request.app.state.settings, actor, endpoint_id, body
    )


@router.delete("/{endpoint_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_webhook(session: SessionDep, actor: Admin, endpoint_id: uuid.UUID) -> Response:
    """Delete an endpoint with its deliveries."""
    await service.delete_endpoint(session, actor, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{endpoint_id}/rotate-secret", response_model=SecretRotated)
async def rotate_webhook_secret(
    request: Request,
    session: SessionDep,
    actor: Admin,
    endpoint_id: uuid.UUID,
    body: RotateIn | None = None,
) -> SecretRotated:
    """A new signing secret (shown once); the previous one also signs for 24 hours."""
    return await service.rotate_secret(
        session, request.app.state.settings, actor, endpoint_id, body or RotateIn()
    )


@router.get("/{endpoint_id}/deliveries", response_model=Page[DeliveryRead])
async def list_webhook_deliveries(
    session: SessionDep,
    actor: Admin,
    endpoint_id: uuid.UUID,
    page: Paging,
    status: Annotated[DeliveryStatus | None, Query()] = None,
) -> Page[DeliveryRead]:
    """The endpoint's deliveries, newest first, each with every attempt (status code,
    latency, response excerpt)."""
    items, total = await service.list_deliveries(session, actor, endpoint_id, page, status)
    return Page(items=items, total=total, limit=page.limit, offset=page.offset)


@router.post("/{endpoint_id}/test", response_model=TestResult)
async def test_webhook(
    request: Request,
    session: SessionDep,
    sessions: SessionFactoryDep,
    actor: Admin,
    endpoint_id: uuid.UUID,
) -> TestResult:
    """Send a signed `webhook.test` event now and answer with what the endpoint replied."""
    settings = request.app.state.settings
    out = await service.prepare_test(session, settings, actor, endpoint_id)
    # Written and audited; no connection is held while the endpoint answers.
    await session.commit()
    async with delivery.client_for(settings) as client:
        outcome = await delivery.send(client, out)
    async with sessions() as store, unit_of_work(store):
        return await service.finish_test(store, settings, outcome)
