"""The browser session: a cookie holding an access token of a login session, and CSRF tokens.

Sign-in goes through the same auth service as `POST /api/v1/auth/login` (throttling, audit,
login session row); the cookie then carries an access token of that login session, issued for
`LEADFLOW_WEB_SESSION_HOURS` and renewed while the browser is used. Every request resolves it
with `auth.service.authenticate`, so logging out (here or through the API), revoking the
session or deactivating the user ends it at once, as for a bearer token.

CSRF: a signed-in form or htmx request carries a token bound to the login session (an HMAC of
its id under the secret key), as the form field `csrf_token` or the `X-CSRF-Token` header. The
forms used before signing in (login, invitation) use a double-submit token: a random value in
an HTTP-only cookie that the form must repeat.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import timedelta
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from starlette.responses import Response

from leadflow.auth import repository as auth_repository
from leadflow.auth import service
from leadflow.auth.schemas import TokenPair
from leadflow.auth.tokens import decode_access_token, issue_access_token
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.db.session import SessionDep
from leadflow.exceptions import Unauthorized
from leadflow.kit.clock import utcnow
from leadflow.kit.security import new_token
from leadflow.web.errors import CsrfRejected, SignInRequired

SESSION_COOKIE = "lf_session"
ANON_CSRF_COOKIE = "lf_csrf"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CSRF_PURPOSE = b"leadflow-web-csrf:"


# ---- cookies --------------------------------------------------------------------------------


def cookie_secure(request: Request) -> bool:
    """Whether cookies get `Secure`: always, except in development or tests over plain http."""
    settings: Settings = request.app.state.settings
    return not (settings.env in ("development", "test") and request.url.scheme == "http")


def queue_cookie(request: Request, name: str, value: str, max_age: int | None) -> None:
    """Set a cookie on whatever response the request ends with (see `apply_cookies`)."""
    pending: dict[str, tuple[str, int | None]] = _pending(request)
    pending[name] = (value, max_age)


def _pending(request: Request) -> dict[str, tuple[str, int | None]]:
    pending = getattr(request.state, "web_cookies", None)
    if pending is None:
        pending = request.state.web_cookies = {}
    return pending


def apply_cookies(request: Request, response: Response) -> Response:
    """Write the cookies queued during the request onto `response`."""
    secure = cookie_secure(request)
    for name, (value, max_age) in _pending(request).items():
        if max_age == 0:
            response.delete_cookie(name, path="/", secure=secure, httponly=True, samesite="lax")
            continue
        response.set_cookie(
            name, value, max_age=max_age, path="/", secure=secure, httponly=True, samesite="lax"
        )
    return response


# ---- sign-in --------------------------------------------------------------------------------


def _web_ttl(settings: Settings) -> timedelta:
    return timedelta(hours=settings.web_session_hours)


def sign_in(request: Request, pair: TokenPair) -> None:
    """Put a browser token of the login session `pair` opened into the session cookie."""
    settings: Settings = request.app.state.settings
    claims = decode_access_token(settings, pair.access_token)
    if claims is None:  # just issued with the same settings: cannot happen
        raise SignInRequired("Sign in to continue")
    token, ttl = issue_access_token(
        settings,
        user_id=claims.user_id,
        organization_id=claims.organization_id,
        session_id=claims.session_id,
        ttl=_web_ttl(settings),
    )
    queue_cookie(request, SESSION_COOKIE, token, ttl)
    # The pre-sign-in CSRF cookie has done its job; signed-in forms use the session's token.
    queue_cookie(request, ANON_CSRF_COOKIE, "", 0)


def sign_out(request: Request) -> None:
    """Clear the session cookie."""
    queue_cookie(request, SESSION_COOKIE, "", 0)


async def browser_actor(request: Request, session: SessionDep) -> Actor | None:
    """The signed-in person of the session cookie, or None (no, bad or ended session)."""
    cached = getattr(request.state, "web_actor", None)
    if cached is not None:
        return cached
    token = request.cookies.get(SESSION_COOKIE)
    if not token or token.startswith(service.API_KEY_PREFIX):
        return None
    settings: Settings = request.app.state.settings
    try:
        actor = await service.authenticate(session, settings, token)
    except Unauthorized:
        return None
    # Only our own login sessions: not an API key, a Supabase token or an impersonation.
    if actor.session_id is None or actor.api_key_id is not None or actor.impersonator_id:
        return None
    request.state.web_actor = actor
    request.state.web_token = token
    await _renew(request, session, settings, actor, token)
    return actor


async def _renew(
    request: Request, session: Any, settings: Settings, actor: Actor, token: str
) -> None:
    """Re-issue the cookie once a quarter of its lifetime has passed (never past the end of
    the login session): a browser in use stays signed in, an idle one is signed out."""
    ttl = _web_ttl(settings)
    issued = jwt.decode(token, options={"verify_signature": False}).get("iat", 0)
    now = utcnow()
    if now.timestamp() - float(issued) < ttl.total_seconds() / 4:
        return
    assert actor.session_id is not None and actor.user_id is not None
    row = await auth_repository.get_session_row(session, actor.session_id)
    if row is None or row.expires_at <= now:
        return
    fresh, seconds = issue_access_token(
        settings,
        user_id=actor.user_id,
        organization_id=actor.organization_id,
        session_id=actor.session_id,
        ttl=min(ttl, row.expires_at - now),
    )
    queue_cookie(request, SESSION_COOKIE, fresh, seconds)


# ---- CSRF -----------------------------------------------------------------------------------


def session_csrf_token(settings: Settings, session_id: uuid.UUID) -> str:
    """The CSRF token of a login session (stable for its lifetime)."""
    key = hashlib.sha256(_CSRF_PURPOSE + settings.resolved_secret_key().encode()).digest()
    digest = hmac.new(key, session_id.bytes, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def anonymous_csrf_token(request: Request) -> str:
    """The double-submit token of a browser not signed in (set as a cookie if new)."""
    current = request.cookies.get(ANON_CSRF_COOKIE)
    if current and len(current) >= 32:
        return current
    queued = _pending(request).get(ANON_CSRF_COOKIE)
    if queued and queued[0]:
        return queued[0]
    token = new_token()
    queue_cookie(request, ANON_CSRF_COOKIE, token, 2 * 3600)
    return token


def csrf_token(request: Request) -> str:
    """The token forms and htmx requests of this page must send back."""
    actor: Actor | None = getattr(request.state, "web_actor", None)
    if actor is not None and actor.session_id is not None:
        return session_csrf_token(request.app.state.settings, actor.session_id)
    return anonymous_csrf_token(request)


async def _sent_token(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    ctype = request.headers.get("content-type", "")
    if ctype.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


async def verify_csrf(request: Request, expected: str | None) -> None:
    """403 `csrf_rejected` unless the request repeats `expected`."""
    sent = await _sent_token(request)
    if not expected or not sent or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise CsrfRejected("The form has expired; reload the page and try again.")


async def verify_anonymous_csrf(request: Request) -> None:
    """CSRF check of the forms shown before signing in (double-submit cookie)."""
    await verify_csrf(request, request.cookies.get(ANON_CSRF_COOKIE))


# ---- dependencies ---------------------------------------------------------------------------


async def web_actor(request: Request, session: SessionDep) -> Actor:
    """The signed-in person (else sign-in); unsafe methods must carry the session's CSRF token."""
    actor = await browser_actor(request, session)
    if actor is None:
        raise SignInRequired("Sign in to continue")
    if request.method not in SAFE_METHODS:
        assert actor.session_id is not None
        await verify_csrf(request, session_csrf_token(request.app.state.settings, actor.session_id))
    return actor


WebActor = Annotated[Actor, Depends(web_actor)]
