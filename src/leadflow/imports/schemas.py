"""Import responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class RowError(BaseModel):
    """A row that was not imported. `row` is the line in the file (the header is line 1)."""

    row: int
    column: str | None
    value: str | None
    message: str
    # invalid_value, or duplicate_out_of_scope: a lead with this email/phone exists outside
    # the importer's row scope (nothing about it is shown and nothing was written).
    code: str | None = None


class ImportResult(BaseModel):
    """Outcome of a synchronous import (or dry run).

    `errors` lists the first failed rows; `errors_not_stored` failed rows are counted in
    `error_count` but not stored for errors.csv.
    """

    import_batch_id: uuid.UUID | None
    dry_run: bool
    total_rows: int
    imported_count: int
    updated_count: int
    skipped_count: int
    needs_action_count: int
    without_last_contact_count: int
    error_count: int
    errors: list[RowError]
    errors_not_stored: int = 0
    ignored_columns: list[str]


class ImportAccepted(BaseModel):
    """A large import handed to the worker."""

    import_batch_id: uuid.UUID
    status: str
    status_url: str


class BatchRead(BaseModel):
    """An import batch with its progress and counts.

    `error_count` counts every failed row; only the first `LEADFLOW_IMPORT_MAX_STORED_ERRORS`
    are stored (`errors_stored`, listed in errors.csv), `errors_not_stored` were only counted.
    """

    id: uuid.UUID
    status: str
    filename: str | None
    file_format: str
    options: dict[str, Any]
    total_rows: int
    processed_rows: int
    progress: float | None
    imported_count: int
    updated_count: int
    skipped_count: int
    error_count: int
    needs_action_count: int
    without_last_contact_count: int
    ignored_columns: list[str]
    errors: list[RowError]
    errors_stored: int = 0
    errors_not_stored: int = 0
    errors_truncated: bool = False
    failure: str | None
    created_at: datetime
    finished_at: datetime | None
    undone_at: datetime | None
