"""What the caller of an import asked for (stored on the batch for background runs)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Literal

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
