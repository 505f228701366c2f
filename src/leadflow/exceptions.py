"""The generic errors. Each carries an HTTP status and a stable `code`; one handler renders them.

Specific codes are subclasses, one per code, in the owning package's `errors.py`."""

from __future__ import annotations

from typing import Any


class LeadflowError(Exception):
    """Base of every error the API reports on purpose."""

    status: int = 400
    code: str = "bad_request"
    title: str = "Bad request"

    def __init__(
        self, detail: str | None = None, *, keep_changes: bool = False, **extra: Any
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        # Some failures must still persist what was flushed (e.g. revoking a session on
        # refresh-token reuse); the request boundary commits instead of rolling back.
        self.keep_changes = keep_changes
        self.extra = extra


class BadRequest(LeadflowError):
    """The request cannot be processed as sent."""


class ValidationFailed(LeadflowError):
    """Input is well-formed but invalid; `errors` lists what is wrong."""

    status = 422
    code = "validation_error"
    title = "Validation failed"

    def __init__(self, detail: str, *, field: str | None = None, **extra: Any) -> None:
        if field is not None and "errors" not in extra:
            extra["errors"] = [{"loc": ["body", field], "msg": detail}]
        super().__init__(detail, **extra)


class Unauthorized(LeadflowError):
    """Missing or invalid credentials."""

    status = 401
    code = "unauthorized"
    title = "Not authenticated"


class Forbidden(LeadflowError):
    """Authenticated, but the permission is missing."""

    status = 403
    code = "forbidden"
    title = "Permission denied"


class NotFound(LeadflowError):
    """No such resource within the caller's scope."""

    status = 404
    code = "not_found"
    title = "Not found"


class Conflict(LeadflowError):
    """The request conflicts with the current state."""

    status = 409
    code = "conflict"
    title = "Conflict"


class TooManyRequests(LeadflowError):
    """A rate limit was hit."""

    status = 429
    code = "rate_limited"
    title = "Too many requests"

    def __init__(self, detail: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class PayloadTooLarge(LeadflowError):
    """The request body is larger than allowed."""

    status = 413
    code = "payload_too_large"
    title = "Payload too large"


class ServiceUnavailable(LeadflowError):
    """A dependency (such as the database) does not answer."""

    status = 503
    code = "service_unavailable"
    title = "Service unavailable"


class DatabaseUnavailable(ServiceUnavailable):
    """The database does not answer (stopped, restarting, unreachable): retry shortly."""

    code = "database_unavailable"
