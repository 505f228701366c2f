"""Form input: text values of a submitted form and per-field validation messages."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from starlette.datastructures import FormData

from leadflow.exceptions import LeadflowError


def form_text(form: FormData, name: str) -> str:
    """The trimmed text of field `name` ('' when absent or a file)."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def form_list(form: FormData, name: str) -> list[str]:
    """Every non-empty text value of a repeated field."""
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def field_errors(exc: ValidationError | LeadflowError) -> dict[str, str]:
    """Messages per field name, from a schema's validation error or a service's 422.

    The service's own messages are shown as they are (the API's validation messages); a
    message that names no field goes under `_form`.
    """
    raw: list[dict[str, Any]]
    if isinstance(exc, ValidationError):
        raw = [
            {"loc": ["body", *map(str, e["loc"])], "msg": _pydantic_message(e)}
            for e in exc.errors()
        ]
    else:
        raw = list(exc.extra.get("errors") or [])
    out: dict[str, str] = {}
    for error in raw:
        loc = [str(p) for p in error.get("loc", []) if str(p) not in ("body", "query")]
        key = loc[0] if loc else "_form"
        out.setdefault(key, str(error.get("msg", "invalid")))
    if not out and isinstance(exc, LeadflowError):
        out["_form"] = exc.detail
    return out


def _pydantic_message(error: Any) -> str:
    msg = str(error.get("msg", "invalid"))
    ctx = error.get("ctx") or {}
    if "error" in ctx and msg.startswith("Value error"):
        return str(ctx["error"])
    return msg
