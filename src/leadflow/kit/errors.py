"""Error codes of the kit: its own errors, and the codes its handlers write for failures that
are not a LeadflowError (framework HTTP errors, database refusals, crashes)."""

from __future__ import annotations

from leadflow.exceptions import BadRequest, TooManyRequests

# Problem codes the handlers in kit/problems.py and kit/middleware.py set themselves.
METHOD_NOT_ALLOWED = "method_not_allowed"
UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
HTTP_ERROR = "error"  # an HTTP status the handler has no name for
CONCURRENT_CONFLICT = "concurrent_conflict"
VALUE_OUT_OF_RANGE = "value_out_of_range"
INTERNAL_ERROR = "internal_error"


class TooManyStreams(TooManyRequests):
    """The caller already holds as many open event streams as allowed."""

    code = "too_many_streams"


class InvalidLastEventId(BadRequest):
    """A stream's `Last-Event-ID` header is not an id that stream sent."""

    code = "invalid_last_event_id"
