"""Matching a lead against rule conditions (assignment rules, SLA policies)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

POSTAL_CODE_KEYS = ("postal_code", "plz", "zip")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple | set):
        return [str(v) for v in value]
    return [str(value)]


def lead_matches(conditions: Mapping[str, Any], lead: Any) -> bool:
    """Whether `lead` satisfies every condition (an empty mapping matches everything).

    Keys: `source`, `channel`, `status` (any of the values, case-insensitive), `tags` (shares
    at least one tag), `custom` ({key: value or [values]}), `postal_code_prefix` (any prefix of
    the lead's `postal_code`/`plz`/`zip` custom value).
    """
    for key in ("source", "channel", "status"):
        wanted = {v.lower() for v in _as_list(conditions.get(key))}
        if wanted and (getattr(lead, key, None) or "").lower() not in wanted:
            return False
    tags = set(_as_list(conditions.get("tags")))
    if tags and not tags & set(getattr(lead, "tags", None) or []):
        return False
    custom = getattr(lead, "custom", None) or {}
    for key, value in (conditions.get("custom") or {}).items():
        have = custom.get(key)
        have_list = _as_list(have)
        if not set(_as_list(value)) & set(have_list):
            return False
    prefixes = _as_list(conditions.get("postal_code_prefix"))
    if prefixes:
        code = next((str(custom[k]) for k in POSTAL_CODE_KEYS if custom.get(k)), "")
        if not any(code.startswith(p) for p in prefixes):
            return False
    return True


CONDITION_KEYS = frozenset({"source", "channel", "status", "tags", "custom", "postal_code_prefix"})


def check_conditions(v: dict[str, Any]) -> dict[str, Any]:
    """Reject unknown condition keys."""
    unknown = sorted(set(v) - CONDITION_KEYS)
    if unknown:
        raise ValueError(
            f"unknown conditions: {', '.join(unknown)}; use {', '.join(sorted(CONDITION_KEYS))}"
        )
    return v
