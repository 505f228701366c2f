"""Errors of call requests, and the codes of the warnings an accepted request carries."""

from __future__ import annotations

from leadflow.exceptions import Conflict, Forbidden, TooManyRequests, ValidationFailed

# Warning code (`warnings: [{field, code, message}]` of an accepted call request).
PHONE_UNVERIFIED = "phone_unverified"


class IllegalTransition(Conflict):
    """The request's current status does not allow the change."""

    code = "illegal_transition"
    title = "Illegal status transition"


class CallLimitExceeded(TooManyRequests):
    """Too many call requests in the hour (per user or organisation) or the UTC day."""

    code = "call_limit_exceeded"
    title = "Call request limit reached"

    def __init__(self, detail: str, *, retry_after: int, limit: str) -> None:
        super().__init__(detail, retry_after=retry_after)
        self.extra["limit"] = limit  # user_hour, org_hour or org_day


class DuplicateRequestId(Conflict):
    """The request_id is taken by a request of the organisation the caller may not see."""

    code = "duplicate_request_id"


class CallCountryNotAllowed(ValidationFailed):
    """The number to call is in a country the organisation does not allow."""

    code = "call_country_not_allowed"


class InvalidSignature(Forbidden):
    """A Twilio status callback has no valid `X-Twilio-Signature`."""

    code = "invalid_signature"
