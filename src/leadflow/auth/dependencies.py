"""FastAPI dependencies: the current actor and permission guards."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, OAuth2PasswordBearer

import leadflow.auth.jobs  # noqa: F401  (registers the job the service queues)
from leadflow.auth import service
from leadflow.auth.errors import NotAuthenticated, PersonRequired
from leadflow.authz.actor import Actor
from leadflow.db.session import SessionDep

# OAuth2 password flow so /docs can authorize; the bearer value may also be an API key.
_bearer = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/login", auto_error=False)
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False)


async def current_actor(
    request: Request,
    session: SessionDep,
    bearer: Annotated[str | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Actor:
    """The authenticated caller, or 401."""
    credential = bearer or api_key
    if not credential:
        raise NotAuthenticated("Authentication required")
    actor = await service.authenticate(session, request.app.state.settings, credential)
    if actor.impersonator_id is not None:
        await service.check_impersonated_request(
            session, actor, request.method, _route_path(request)
        )
    request.state.actor = actor
    return actor


def _route_path(request: Request) -> str:
    """The path routing matched (aliases rewritten, a proxy's `root_path` taken off)."""
    path: str = request.scope["path"]
    root: str = request.scope.get("root_path") or ""
    return path[len(root) :] if root and path.startswith(root) else path


CurrentActor = Annotated[Actor, Depends(current_actor)]


async def current_person(actor: CurrentActor) -> Actor:
    """The current actor if it is a signed-in person; API keys get 403.

    For endpoints about "me" (notifications, logout): a key belongs to no person, and
    answering as its creator would let an integration read or end that person's things.
    """
    if actor.api_key_id is not None or actor.user_id is None:
        raise PersonRequired("This endpoint is for signed-in users, not API keys")
    return actor


CurrentPerson = Annotated[Actor, Depends(current_person)]


def require_permission(permission: str) -> Callable[[Actor], Awaitable[Actor]]:
    """Dependency factory: the current actor if it holds `permission`, else 403."""

    async def guard(actor: CurrentActor) -> Actor:
        actor.require(permission)
        return actor

    guard.__name__ = f"require_{permission.replace(':', '_')}"
    return guard
