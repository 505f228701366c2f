"""Errors of analytics and the dashboard."""

from __future__ import annotations

from typing import Any

from leadflow.exceptions import ValidationFailed


class InvalidPeriod(ValidationFailed):
    """`date_from`/`date_to` are reversed, span more than ten years, or lie outside 1900-2999."""

    code = "invalid_period"

    def __init__(self, detail: str, *, parameter: str) -> None:
        super().__init__(detail, errors=[{"loc": ["query", parameter], "msg": detail}])


class InvalidFilter(ValidationFailed):
    """A filter parameter names nothing that can match (e.g. `assigned_to` is no user id)."""

    code = "invalid_filter"

    def __init__(self, detail: str, *, parameter: str, **extra: Any) -> None:
        super().__init__(detail, errors=[{"loc": ["query", parameter], "msg": detail}], **extra)
