"""Errors of authentication: sign-up, login, tokens, sessions and API keys."""

from __future__ import annotations

from leadflow.exceptions import BadRequest, Forbidden, Unauthorized


class SignupDisabled(Forbidden):
    """Self sign-up is switched off on this server."""

    code = "signup_disabled"


class InvalidCredentials(Unauthorized):
    """Login with an unknown email, a wrong password or an inactive user."""

    code = "invalid_credentials"


class InvalidRefreshToken(Unauthorized):
    """The refresh token is unknown."""

    code = "invalid_refresh_token"


class RefreshTokenReused(Unauthorized):
    """A spent refresh token was sent again; its session is revoked."""

    code = "refresh_token_reused"


class SessionEnded(Unauthorized):
    """The login session was revoked or expired, or its user is no longer active."""

    code = "session_ended"


class InvalidToken(Unauthorized):
    """The bearer token is no valid Leadflow token nor a Supabase token of an active user."""

    code = "invalid_token"


class InvalidApiKey(Unauthorized):
    """The API key is unknown or revoked."""

    code = "invalid_api_key"


class ApiKeyCreatorInactive(Unauthorized):
    """The API key's creator is no longer active, so the key stops working too."""

    code = "api_key_creator_inactive"


class NotAuthenticated(Unauthorized):
    """No credential was sent."""

    code = "not_authenticated"


class PersonRequired(Forbidden):
    """An API key called an endpoint that is for signed-in users only."""

    code = "person_required"


class ImpersonationRestricted(Forbidden):
    """An impersonation token called the admin console (`/api/v1/admin/*`)."""

    code = "impersonation_restricted"


class ScopeEscalation(Forbidden):
    """A new API key would get scopes its creator does not hold."""

    code = "scope_escalation"


class MalformedBody(BadRequest):
    """The login body cannot be read (neither valid JSON nor a form)."""

    code = "malformed_body"
