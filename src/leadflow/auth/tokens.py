"""JWT access tokens (PyJWT, HS256 pinned, exp/iat/aud/iss required)."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import jwt

from leadflow.config import Settings
from leadflow.kit.clock import utcnow

ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What an access token asserts."""

    user_id: uuid.UUID
    organization_id: uuid.UUID
    session_id: uuid.UUID
    # The admin acting as `user_id` (RFC 8693 `act` claim) on an impersonation token.
    act: uuid.UUID | None = None


def issue_access_token(
    settings: Settings,
    *,
    user_id: uuid.UUID,
    organization_id: uuid.UUID,
    session_id: uuid.UUID,
    act: uuid.UUID | None = None,
    ttl: timedelta | None = None,
) -> tuple[str, int]:
    """A signed access token and its lifetime in seconds; `act` names an impersonating admin."""
    now = utcnow()
    ttl = ttl or timedelta(minutes=settings.access_token_minutes)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "org": str(organization_id),
        "sid": str(session_id),
        "typ": "access",
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
        "aud": settings.jwt_audience,
        "iss": settings.jwt_issuer,
        "jti": uuid.uuid4().hex,
    }
    if act is not None:
        claims["act"] = {"sub": str(act)}
    token = jwt.encode(claims, settings.resolved_secret_key(), algorithm=ALGORITHM)
    return token, int(ttl.total_seconds())


# Verified access tokens: the signature check and claim parsing cost more than the session
# lookup that follows, and a client sends the same token for up to its lifetime. Freshness
# is still checked against the clock on every use; the session row decides revocation.
_VERIFIED: OrderedDict[tuple[str, str, str, str], tuple[AccessClaims, dict[str, Any]]] = (
    OrderedDict()
)
_VERIFIED_MAX = 4096


def decode_access_token(settings: Settings, token: str) -> AccessClaims | None:
    """Verified claims, or None when the token is invalid, expired or not ours."""
    key = (token, settings.resolved_secret_key(), settings.jwt_audience, settings.jwt_issuer)
    hit = _VERIFIED.get(key)
    if hit is not None:
        _VERIFIED.move_to_end(key)
        return hit[0] if _fresh(hit[1]) else None
    try:
        data: dict[str, Any] = jwt.decode(
            token,
            settings.resolved_secret_key(),
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            # Time claims are required but checked below against the injectable clock.
            options={
                "require": ["exp", "iat", "aud", "iss", "sub"],
                "verify_exp": False,
                "verify_iat": False,
            },
        )
        if data.get("typ") != "access":
            return None
        act = data.get("act")
        claims = AccessClaims(
            uuid.UUID(data["sub"]),
            uuid.UUID(data["org"]),
            uuid.UUID(data["sid"]),
            uuid.UUID(str(act["sub"])) if act is not None else None,
        )
    except (jwt.PyJWTError, KeyError, ValueError, TypeError):
        return None
    _VERIFIED[key] = (claims, {"exp": data["exp"], "iat": data["iat"]})
    if len(_VERIFIED) > _VERIFIED_MAX:
        _VERIFIED.popitem(last=False)
    return claims if _fresh(data) else None


def decode_supabase_token(settings: Settings, token: str) -> str | None:
    """The confirmed email of a valid Supabase access token, else None.

    HS256 with the project's JWT secret, audience "authenticated", and the exact issuer when
    `supabase_issuer` is set. The email must be confirmed: anyone can sign up to a Supabase
    project with someone else's address, and the email is what maps to a Leadflow user.
    """
    if not settings.supabase_jwt_secret:
        return None
    required = ["exp", "sub", "aud"]
    if settings.supabase_issuer:
        required.append("iss")
    try:
        data: dict[str, Any] = jwt.decode(
            token,
            settings.supabase_jwt_secret,
            algorithms=[ALGORITHM],
            audience="authenticated",
            issuer=settings.supabase_issuer or None,
            options={"require": required, "verify_exp": False, "verify_iat": False},
        )
    except jwt.PyJWTError:
        return None
    if not _fresh(data) or not _email_confirmed(data):
        return None
    email = data.get("email")
    return email.lower() if isinstance(email, str) and email else None


def _email_confirmed(claims: dict[str, Any]) -> bool:
    # Only claims the user cannot write count: the top level and `app_metadata` (set by the
    # server, e.g. by a custom access-token hook). `user_metadata` is the user's own to edit
    # (`updateUser({data: ...})`), so an `email_verified` there proves nothing.
    meta = claims.get("app_metadata")
    for source in (claims, meta if isinstance(meta, dict) else {}):
        confirmed_at = source.get("email_confirmed_at")
        if isinstance(confirmed_at, str) and confirmed_at.strip():
            return True
        if source.get("email_verified") is True:
            return True
    return False


def _fresh(claims: dict[str, Any]) -> bool:
    now = utcnow().timestamp()
    try:
        exp = float(claims["exp"])
        iat = float(claims.get("iat", now))
    except (TypeError, ValueError, KeyError):
        return False
    return iat <= now + _SKEW_SECONDS and now < exp


_SKEW_SECONDS = 30
