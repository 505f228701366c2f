"""Per-request context (request id, client ip) carried in contextvars."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What audit rows and logs need to know about the current request."""

    request_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None


_EMPTY = RequestContext()
_current: ContextVar[RequestContext | None] = ContextVar("leadflow_request", default=None)


def current_request() -> RequestContext:
    """The context of the request being served (empty outside a request)."""
    return _current.get() or _EMPTY


def set_request(ctx: RequestContext) -> object:
    """Install `ctx`; returns a token for `reset_request`."""
    return _current.set(ctx)


def reset_request(token: object) -> None:
    """Restore the previous context."""
    _current.reset(token)  # type: ignore[arg-type]
