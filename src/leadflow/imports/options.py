"""What the caller of an import asked for (stored on the batch for background runs)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic_core import from_json

from leadflow.exceptions import ValidationFailed
from leadflow.imports.parsing import DATE_ORDERS
from leadflow.kit.nultext import DETAIL as NUL_DETAIL
from leadflow.kit.nultext import nul_path

OnDuplicate = Literal["skip", "update", "create"]


@dataclass
class ImportOptions:
    """What the caller asked for."""

    dry_run: bool = False
    on_duplicate: OnDuplicate = "skip"
    mapping: dict[str, str] | None = None
    default_status: str | None = None
    assignee_id: uuid.UUID | None = None
    analyze: bool = True
    # status value as in the file -> stage key ("" leaves it to default_status / the analysis)
    status_map: dict[str, str] | None = None
    # date column -> "DD/MM/YYYY" or "MM/DD/YYYY"; the import adds the orders it detected, so a
    # background run reads the file as the request that accepted it did
    date_formats: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form (stored on the batch)."""
        return {
            "dry_run": self.dry_run,
            "on_duplicate": self.on_duplicate,
            "mapping": self.mapping,
            "default_status": self.default_status,
            "assignee_id": str(self.assignee_id) if self.assignee_id else None,
            "analyze": self.analyze,
            "status_map": self.status_map,
            "date_formats": self.date_formats,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImportOptions:
        """Inverse of `to_json`."""
        return cls(
            dry_run=bool(data.get("dry_run")),
            on_duplicate=data.get("on_duplicate", "skip"),
            mapping=data.get("mapping"),
            default_status=data.get("default_status"),
            assignee_id=uuid.UUID(data["assignee_id"]) if data.get("assignee_id") else None,
            analyze=data.get("analyze", True),
            status_map=data.get("status_map"),
            date_formats=data.get("date_formats"),
        )


def _bool(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValidationFailed(f"{name} must be true or false", field=name)


def parse_options(raw: dict[str, Any]) -> ImportOptions:
    """The options of an import request (query, JSON body or form values), validated."""
    opts = ImportOptions()
    if "dry_run" in raw:
        opts.dry_run = _bool(raw["dry_run"], "dry_run")
    if "analyze" in raw:
        opts.analyze = _bool(raw["analyze"], "analyze")
    if raw.get("on_duplicate"):
        if raw["on_duplicate"] not in ("skip", "update", "create"):
            raise ValidationFailed(
                "on_duplicate must be skip, update or create", field="on_duplicate"
            )
        opts.on_duplicate = raw["on_duplicate"]
    if raw.get("mapping"):
        opts.mapping = _str_map(raw["mapping"], "mapping")
    if raw.get("default_status"):
        opts.default_status = str(raw["default_status"])
        _refuse_nul(opts.default_status, "default_status")
    if raw.get("assignee_id"):
        try:
            opts.assignee_id = uuid.UUID(str(raw["assignee_id"]))
        except ValueError:
            raise ValidationFailed("assignee_id must be a user id", field="assignee_id") from None
    if raw.get("status_map"):
        opts.status_map = _str_map(raw["status_map"], "status_map")
    if raw.get("date_formats"):
        formats = _str_map(raw["date_formats"], "date_formats")
        orders = {o.lower(): o for o in DATE_ORDERS}
        bad = [v for v in formats.values() if v.strip().lower() not in orders]
        if bad:
            raise ValidationFailed(
                "date_formats values must be DD/MM/YYYY or MM/DD/YYYY", field="date_formats"
            )
        opts.date_formats = {k: orders[v.strip().lower()] for k, v in formats.items()}
    return opts


def _str_map(value: Any, name: str) -> dict[str, str]:
    """A JSON object of strings (given as an object, or as JSON text in a form or query)."""
    if isinstance(value, str):
        try:
            value = from_json(value)
        except ValueError:
            raise ValidationFailed(f"{name} must be a JSON object", field=name) from None
    if not isinstance(value, dict) or not all(
        isinstance(v, str) and len(v) <= 200 for v in value.values()
    ):
        raise ValidationFailed(f"{name} must map names to names", field=name)
    if len(value) > MAX_MAP_ENTRIES:
        raise ValidationFailed(f"{name} has more than {MAX_MAP_ENTRIES} entries", field=name)
    _refuse_nul(value, name)
    return {str(k)[:500]: v for k, v in value.items()}


def _refuse_nul(value: Any, name: str) -> None:
    # The upload's routes take their options past the request-wide NUL check (the file's
    # cells have NULs dropped instead); an option keeps none: it is stored on the batch,
    # which PostgreSQL cannot hold and SQLite would hand on.
    found = nul_path(value)
    if found is not None:
        raise ValidationFailed(
            NUL_DETAIL, errors=[{"loc": ["body", name, *found], "msg": NUL_DETAIL}]
        )


MAX_MAP_ENTRIES = 5000
# The option names a request may carry.
OPTION_KEYS = (
    "dry_run",
    "on_duplicate",
    "mapping",
    "default_status",
    "assignee_id",
    "analyze",
    "status_map",
    "date_formats",
)
