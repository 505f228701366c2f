"""Errors of the AI bridge, and the codes of the warnings its answers carry."""

from __future__ import annotations

from leadflow.exceptions import ServiceUnavailable, TooManyRequests

# Warning codes (`warnings: [{code, message}]` in an AI answer).
CONSENT_UNCHECKED = "consent_unchecked"
NO_CONSENT = "no_consent"
CONSENT_REVOKED = "consent_revoked"
PROVIDER_FALLBACK = "provider_fallback"


class AiBusy(TooManyRequests):
    """Every provider slot of this process stayed busy for the whole queue wait."""

    code = "ai_busy"
    title = "AI provider busy"


class AiBudgetExhausted(TooManyRequests):
    """The organisation used up its provider calls of the (UTC) day."""

    code = "ai_budget_exhausted"
    title = "AI budget exhausted"


class AiUnavailable(ServiceUnavailable):
    """Neither the provider nor the local fallback answered (the generation is still stored)."""

    code = "ai_unavailable"
