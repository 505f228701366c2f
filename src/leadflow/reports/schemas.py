"""Report requests and responses."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

Format = Literal["csv", "xlsx", "pdf", "sheets"]


class FilterIn(BaseModel):
    """`{field, op, value}`: a catalogue field, an operator of `GET /reports/fields`, a value."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(max_length=60)
    op: str = Field(max_length=30)
    value: Any = None


class SortIn(BaseModel):
    """Sort by a field (or, in a grouped report, an aggregation's name)."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(max_length=60)
    direction: Literal["asc", "desc"] = "asc"


class AggregationIn(BaseModel):
    """`{function, field, as}`: count (field optional), sum, avg, min or max of a field."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    function: str = Field(max_length=20)
    field: str | None = Field(default=None, max_length=60)
    as_: str | None = Field(default=None, alias="as", max_length=40)


class Definition(BaseModel):
    """What a report shows: fields (columns, or the grouping's columns), filters, grouping,
    sorting and aggregations."""

    model_config = ConfigDict(extra="forbid")

    fields: list[str] = Field(default_factory=list, max_length=50)
    filters: list[FilterIn] = Field(default_factory=list, max_length=30)
    grouping: list[str] = Field(default_factory=list, max_length=5)
    sorting: list[SortIn] = Field(default_factory=list, max_length=5)
    aggregations: list[AggregationIn] = Field(default_factory=list, max_length=20)


class BuildIn(Definition):
    """A new saved report."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)


class ColumnRead(BaseModel):
    """One output column: its key in `preview_data`, its header, its type."""

    key: str
    label: str
    type: str


class BuildOut(BaseModel):
    """The saved report, its columns, the first rows and how many rows it has."""

    report_id: uuid.UUID
    name: str
    columns: list[ColumnRead]
    preview_data: list[dict[str, Any]]
    row_count: int


class ReportRead(Definition):
    """A saved report."""

    id: uuid.UUID
    name: str
    created_at: datetime
    updated_at: datetime


class FieldRead(BaseModel):
    """A catalogue field with the aggregations and filter operators it takes."""

    key: str
    label: str
    type: str
    description: str
    aggregations: list[str]
    operators: list[str]
    values: list[str] | None = None


class OperatorRead(BaseModel):
    """A filter operator."""

    op: str
    description: str


class CatalogueRead(BaseModel):
    """The published catalogue: fields, aggregations and filter operators."""

    fields: list[FieldRead]
    aggregations: dict[str, str]
    operators: list[OperatorRead]


class TemplateRead(BaseModel):
    """A ready-made report; POST it (with a name) to /reports/build."""

    id: str
    name: str
    description: str
    fields: list[str]
    filters: list[dict[str, Any]]
    grouping: list[str]
    sorting: list[dict[str, str]]
    aggregations: list[dict[str, str]]


class ExportIn(BaseModel):
    """Export a saved report."""

    model_config = ConfigDict(extra="forbid")

    report_id: uuid.UUID
    format: Format = "csv"


class ExportOut(BaseModel):
    """Where to download the file (no bearer token needed) and until when."""

    run_id: uuid.UUID
    download_url: str
    expires_at: datetime
    file_name: str
    row_count: int


class ScheduleIn(BaseModel):
    """A recurring run mailed to `recipients`. `time` is HH:MM in `timezone` (default: the
    organisation's); weekly runs on `day_of_week` (1 = Monday, default), monthly on
    `day_of_month` (default 1; the month's last day when shorter)."""

    model_config = ConfigDict(extra="forbid")

    report_id: uuid.UUID
    frequency: Literal["daily", "weekly", "monthly"]
    time: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    timezone: str | None = Field(default=None, max_length=64)
    recipients: list[EmailStr] = Field(min_length=1, max_length=20)
    format: Format = "csv"
    day_of_week: int | None = Field(default=None, ge=1, le=7)
    day_of_month: int | None = Field(default=None, ge=1, le=31)


class ScheduleRead(BaseModel):
    """A schedule."""

    id: uuid.UUID
    report_id: uuid.UUID
    frequency: str
    time: str
    timezone: str
    day_of_week: int | None
    day_of_month: int | None
    recipients: list[str]
    format: str
    status: str
    next_run: datetime
    last_run_at: datetime | None
    created_at: datetime


class ScheduleCreated(ScheduleRead):
    """The new schedule (`schedule_id` = `id`)."""

    schedule_id: uuid.UUID


class ScheduleUpdate(BaseModel):
    """Pause or resume a schedule."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["active", "paused"]


class RunRead(BaseModel):
    """One run of a report: an export or a scheduled run."""

    id: uuid.UUID
    report_id: uuid.UUID
    schedule_id: uuid.UUID | None
    trigger: str
    format: str
    status: str
    row_count: int | None
    duration_ms: int | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    download_url: str | None
    expires_at: datetime | None
