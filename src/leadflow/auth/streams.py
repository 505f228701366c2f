"""Long-lived event streams: the per-user cap and the periodic re-check of the credential.

A stream outlives the request that authenticated it, so it re-runs the same authentication
as a normal request (`service.authenticate`) every `LEADFLOW_STREAM_RECHECK_SECONDS` and ends
once the session is logged out or revoked, the user deactivated, or the key revoked.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request
from fastapi.security.utils import get_authorization_scheme_param
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.auth import service
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.exceptions import Unauthorized
from leadflow.kit.sse import SessionRecheck, StreamSlots


def _credential(request: Request) -> str | None:
    # The same precedence as `current_actor`: bearer value first, then X-API-Key.
    scheme, param = get_authorization_scheme_param(request.headers.get("Authorization"))
    if scheme.lower() == "bearer" and param:
        return param
    return request.headers.get("X-API-Key") or None


def session_recheck(
    request: Request,
    factory: Callable[[], AsyncSession],
    actor: Actor,
    *,
    permission: str | None = None,
    credential: str | None = None,
) -> SessionRecheck:
    """A re-check of the request's credential: still valid, same user, still `permission`.

    `credential`: the one the request authenticated with when it is not a header (the web
    app's session cookie).
    """
    settings: Settings = request.app.state.settings
    credential = credential or _credential(request)

    async def check() -> bool:
        if credential is None:
            return False
        # A session of its own, never committed: the stream holds no connection between checks.
        async with factory() as session:
            try:
                current = await service.authenticate(session, settings, credential)
            except Unauthorized:
                return False
        return (
            current.organization_id == actor.organization_id
            and current.user_id == actor.user_id
            and (permission is None or current.can(permission))
        )

    return SessionRecheck(check, settings.stream_recheck_seconds)


def stream_slot(request: Request, actor: Actor) -> Callable[[], None]:
    """Take one of the caller's open-stream slots in this process (429 when all are taken)."""
    settings: Settings = request.app.state.settings
    slots: StreamSlots | None = getattr(request.app.state, "stream_slots", None)
    if slots is None:
        slots = request.app.state.stream_slots = StreamSlots()
    holder = f"user:{actor.user_id}" if actor.user_id else f"key:{actor.api_key_id}"
    return slots.acquire(holder, settings.streams_per_user)
