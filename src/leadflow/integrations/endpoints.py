"""/api/v1/admin/integrations: list, connect, disconnect."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status

from leadflow.auth.dependencies import require_permission
from leadflow.authz.actor import Actor
from leadflow.db.engine import unit_of_work
from leadflow.db.session import SessionDep, SessionFactoryDep
from leadflow.integrations import service
from leadflow.integrations.registry import IntegrationType
from leadflow.integrations.schemas import ConnectIn, ConnectOut, IntegrationRead

router = APIRouter(tags=["integrations"])
Admin = Annotated[Actor, Depends(require_permission("admin:settings"))]


@router.get("", response_model=list[IntegrationRead])
async def list_integrations(
    request: Request, session: SessionDep, actor: Admin
) -> list[IntegrationRead]:
    """SMTP, OpenAI, Twilio and webhooks: state, non-secret config and last sync."""
    return await service.list_integrations(session, request.app.state.settings, actor)


@router.post("/{type}/connect", response_model=ConnectOut)
async def connect_integration(
    request: Request,
    session: SessionDep,
    sessions: SessionFactoryDep,
    actor: Admin,
    type: IntegrationType,
    body: ConnectIn,
) -> ConnectOut:
    """Test the credentials against the service (SMTP login, an OpenAI models call, a Twilio
    account fetch) and store them encrypted; 422 `integration_connection_failed` with the
    reason when the test fails. Credentials are never returned."""
    settings = request.app.state.settings
    prepared = service.prepare(type, body)
    # Authentication read the database; hand its connection back while the service answers.
    await session.commit()
    found = await service.check_connection(settings, prepared)
    async with sessions() as store, unit_of_work(store):
        return await service.save(store, settings, actor, prepared, found)


@router.delete("/{type}/disconnect", status_code=status.HTTP_204_NO_CONTENT)
async def disconnect_integration(
    session: SessionDep, actor: Admin, type: IntegrationType
) -> Response:
    """Remove the organisation's integration; the server-wide setting applies again."""
    await service.disconnect(session, actor, type)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
