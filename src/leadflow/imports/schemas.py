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


class ImportWarning(BaseModel):
    """Something about an imported row (`row`) or the whole file (`row` null) worth knowing:
    an owner that names no user it may be given to, a status placed on a nearby stage."""

    row: int | None
    column: str | None
    value: str | None
    message: str
    code: str


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
    warning_count: int = 0
    warnings: list[ImportWarning] = []


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


class PreviewFile(BaseModel):
    """How the file was read."""

    format: str  # csv, xlsx, json
    encoding: str | None  # CSV only
    delimiter: str | None  # CSV only
    rows: int  # non-empty data rows


class PreviewSource(BaseModel):
    """The product that exported the file (`product` null: none recognised)."""

    product: str | None
    name: str | None
    confidence: float


class PreviewColumn(BaseModel):
    """Where a column goes, why, and what it holds."""

    column: str
    target: str | None  # a lead field, owner, custom.<key>, or null (ignored)
    rule: str
    reason: str
    samples: list[str]
    date_format: str | None = None  # date columns: the format the values are read in


class PreviewStatus(BaseModel):
    """A distinct status value of the file and the stage it goes to (null: not decided by the
    file; default_status or the analysis decides)."""

    value: str
    count: int
    stage: str | None
    rule: str
    reason: str


class PreviewOwner(BaseModel):
    """A distinct owner value and the user it names (`found`) and is assigned (`assigned`)."""

    value: str
    count: int
    found: bool
    assigned: bool
    user_id: uuid.UUID | None
    user_name: str | None
    code: str | None
    message: str | None


class PreviewCustomField(BaseModel):
    """A text custom field the import would define."""

    key: str
    label: str


class PreviewProblem(BaseModel):
    """What keeps the file from importing as it is (the import would answer with `code`)."""

    code: str
    message: str
    column: str | None = None
    examples: list[str] = []


class ImportPreview(BaseModel):
    """What an import of this file would do; nothing is written. Send `mapping`,
    `status_map` and `date_formats` (edited or not) back with the import."""

    file: PreviewFile
    source: PreviewSource
    columns: list[PreviewColumn]
    ignored_columns: list[str]
    statuses: list[PreviewStatus]
    owners: list[PreviewOwner]
    custom_fields_to_create: list[PreviewCustomField]
    mapping: dict[str, str]
    status_map: dict[str, str]
    date_formats: dict[str, str]
    problems: list[PreviewProblem]
