"""The published field catalogue, aggregations, filter operators and report templates.

A report names catalogue fields only; each field is a SQL expression over one lead (with its
stage, assignee, import batch and histories). Nothing a client sends becomes SQL: keys are
looked up here, values are bound as parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Integer,
    String,
    and_,
    case,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.orm import aliased

from leadflow.db.dialect import local_time_text
from leadflow.db.types import UTCDateTime
from leadflow.models.activity import Interaction
from leadflow.models.import_batch import ImportBatch
from leadflow.models.lead import Lead
from leadflow.models.lead_history import LeadStatusChange
from leadflow.models.pipeline_stage import PipelineStage
from leadflow.models.user import User

FieldType = Literal["id", "string", "number", "boolean", "datetime", "date", "month"]
Join = Literal["stage", "assignee", "batch"]

# The lead's current stage, its assignee and its import batch (joined only when used).
STAGE = aliased(PipelineStage, name="stage")
ASSIGNEE = aliased(User, name="assignee")
BATCH = aliased(ImportBatch, name="batch")

JOINS: dict[str, tuple[Any, ColumnElement[bool]]] = {
    "stage": (
        STAGE,
        and_(STAGE.organization_id == Lead.organization_id, STAGE.key == Lead.status),
    ),
    # Bound to the lead's organisation as well: a stray id from elsewhere names no one.
    "assignee": (
        ASSIGNEE,
        and_(ASSIGNEE.id == Lead.assignee_id, ASSIGNEE.organization_id == Lead.organization_id),
    ),
    "batch": (
        BATCH,
        and_(BATCH.id == Lead.import_batch_id, BATCH.organization_id == Lead.organization_id),
    ),
}


@dataclass(frozen=True)
class Context:
    """What field expressions depend on: the organisation's time zone, the engine, "now"."""

    timezone: str
    dialect: str
    now: datetime


Expr = Callable[[Context], ColumnElement[Any]]


@dataclass(frozen=True)
class FieldSpec:
    """One catalogue field. `order` is what sorting by it means (stage: pipeline order)."""

    key: str
    label: str
    type: FieldType
    description: str
    expr: Expr
    joins: tuple[Join, ...] = ()
    values: tuple[str, ...] | None = None
    order: Expr | None = None


def _col(column: Any) -> Expr:
    return lambda _ctx: column


def _won_at(_ctx: Context) -> ColumnElement[Any]:
    # First move into a stage of category "won" (lead_status_history, every door writes it).
    won_keys = select(PipelineStage.key).where(
        PipelineStage.organization_id == Lead.organization_id, PipelineStage.category == "won"
    )
    return (
        select(func.min(LeadStatusChange.created_at))
        .where(LeadStatusChange.lead_id == Lead.id, LeadStatusChange.to_status.in_(won_keys))
        .scalar_subquery()
    )


def _interaction_count(_ctx: Context) -> ColumnElement[Any]:
    return (
        select(func.count(Interaction.id))
        .where(Interaction.lead_id == Lead.id)
        .scalar_subquery()
        .cast(Integer)
    )


def _last_interaction_at(_ctx: Context) -> ColumnElement[Any]:
    return (
        select(func.max(Interaction.occurred_at))
        .where(Interaction.lead_id == Lead.id)
        .scalar_subquery()
    )


def _now(ctx: Context) -> ColumnElement[Any]:
    return literal(ctx.now, UTCDateTime())


def _sla_state(ctx: Context) -> ColumnElement[Any]:
    # The same rule as leads.service.sla_state (and /sla/status).
    now = _now(ctx)
    return case(
        (Lead.sla_deadline.is_(None), "none"),
        (Lead.sla_met_at.is_not(None), "met"),
        (or_(Lead.sla_breached_at.is_not(None), Lead.sla_deadline <= now), "breached"),
        (and_(Lead.sla_reminder_at.is_not(None), Lead.sla_reminder_at <= now), "at_risk"),
        else_="running",
    ).cast(String)


def _sla_breached(ctx: Context) -> ColumnElement[Any]:
    now = _now(ctx)
    breached = and_(
        Lead.sla_deadline.is_not(None),
        Lead.sla_met_at.is_(None),
        or_(Lead.sla_breached_at.is_not(None), Lead.sla_deadline <= now),
    )
    return case((breached, 1), else_=0).cast(Integer)


def _local(expr: Expr, part: Literal["date", "month"]) -> Expr:
    return lambda ctx: local_time_text(expr(ctx), ctx.timezone, part, ctx.dialect)


def _flag(condition: Callable[[], ColumnElement[bool]]) -> Expr:
    return lambda _ctx: case((condition(), 1), else_=0).cast(Integer)


_STRING_COLUMNS = (
    ("full_name", "Name", "First and last name"),
    ("first_name", "First name", ""),
    ("last_name", "Last name", ""),
    ("email", "Email", ""),
    ("phone", "Phone", "E.164"),
    ("company", "Company", ""),
    ("channel", "Channel", "How the lead came in (web, phone, …)"),
    ("source", "Source", "Where the lead came from"),
    ("utm_source", "UTM source", ""),
    ("utm_medium", "UTM medium", ""),
    ("utm_campaign", "UTM campaign", ""),
)

FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("id", "Lead id", "id", "The lead's id", _col(Lead.id)),
    *(
        FieldSpec(key, label, "string", description or label, _col(getattr(Lead, key)))
        for key, label, description in _STRING_COLUMNS
    ),
    FieldSpec("status", "Status", "string", "Key of the lead's stage", _col(Lead.status)),
    FieldSpec(
        "stage",
        "Stage",
        "string",
        "Name of the lead's stage; sorts in pipeline order",
        _col(STAGE.name),
        joins=("stage",),
        order=_col(STAGE.position),
    ),
    FieldSpec(
        "stage_category",
        "Stage category",
        "string",
        "open, won or lost",
        _col(STAGE.category),
        joins=("stage",),
        values=("open", "won", "lost"),
    ),
    FieldSpec(
        "stage_probability",
        "Stage probability",
        "number",
        "Win probability of the lead's stage in percent",
        _col(STAGE.probability),
        joins=("stage",),
    ),
    FieldSpec(
        "is_won",
        "Won",
        "number",
        "1 when the lead's stage is a won stage, else 0 (sum it to count enrollments)",
        _flag(lambda: STAGE.category == "won"),
        joins=("stage",),
    ),
    FieldSpec(
        "is_open",
        "Open",
        "number",
        "1 when the lead's stage is an open stage, else 0",
        _flag(lambda: STAGE.category == "open"),
        joins=("stage",),
    ),
    FieldSpec("assignee_id", "Assignee id", "id", "", _col(Lead.assignee_id)),
    FieldSpec(
        "assignee_name",
        "Assignee",
        "string",
        "Name of the assigned user (empty when unassigned)",
        _col(ASSIGNEE.full_name),
        joins=("assignee",),
    ),
    FieldSpec(
        "assignee_email",
        "Assignee email",
        "string",
        "",
        _col(ASSIGNEE.email),
        joins=("assignee",),
    ),
    FieldSpec("score", "Score", "number", "Lead score 0-100", _col(Lead.score)),
    FieldSpec("needs_action", "Needs action", "boolean", "", _col(Lead.needs_action)),
    FieldSpec(
        "created_at",
        "Created at",
        "datetime",
        "When the lead was created (UTC)",
        _col(Lead.created_at),
    ),
    FieldSpec(
        "created_date",
        "Created on",
        "date",
        "Day of creation in the organisation's time zone (YYYY-MM-DD)",
        _local(_col(Lead.created_at), "date"),
    ),
    FieldSpec(
        "created_month",
        "Created in month",
        "month",
        "Month of creation in the organisation's time zone (YYYY-MM)",
        _local(_col(Lead.created_at), "month"),
    ),
    FieldSpec("last_contacted_at", "Last contacted", "datetime", "", _col(Lead.last_contacted_at)),
    FieldSpec("next_action_at", "Next action at", "datetime", "", _col(Lead.next_action_at)),
    FieldSpec(
        "won_at",
        "Won at",
        "datetime",
        "First move into a won stage (status history); empty if never won",
        _won_at,
    ),
    FieldSpec(
        "won_month",
        "Won in month",
        "month",
        "Month of won_at in the organisation's time zone",
        _local(_won_at, "month"),
    ),
    FieldSpec(
        "interaction_count",
        "Interactions",
        "number",
        "Logged interactions (calls, emails, meetings, notes) of the lead",
        _interaction_count,
    ),
    FieldSpec(
        "last_interaction_at",
        "Last interaction",
        "datetime",
        "When the latest logged interaction took place",
        _last_interaction_at,
    ),
    FieldSpec(
        "sla_state",
        "SLA state",
        "string",
        "none, running, at_risk, breached or met, at the time the report runs",
        _sla_state,
        values=("none", "running", "at_risk", "breached", "met"),
    ),
    FieldSpec(
        "sla_breached",
        "SLA breached",
        "number",
        "1 when the SLA state is breached, else 0",
        _sla_breached,
    ),
    FieldSpec("sla_deadline", "SLA deadline", "datetime", "", _col(Lead.sla_deadline)),
    FieldSpec("sla_met_at", "SLA met at", "datetime", "", _col(Lead.sla_met_at)),
    FieldSpec("sla_breached_at", "SLA breached at", "datetime", "", _col(Lead.sla_breached_at)),
    FieldSpec("import_batch_id", "Import batch id", "id", "", _col(Lead.import_batch_id)),
    FieldSpec(
        "import_file",
        "Import file",
        "string",
        "File name of the import that created the lead",
        _col(BATCH.filename),
        joins=("batch",),
    ),
    FieldSpec(
        "import_date",
        "Imported on",
        "date",
        "Day the import started, in the organisation's time zone",
        _local(_col(BATCH.created_at), "date"),
        joins=("batch",),
    ),
)

BY_KEY: dict[str, FieldSpec] = {f.key: f for f in FIELDS}

AGGREGATIONS: dict[str, str] = {
    "count": "Number of rows (with a field: rows where it is not empty)",
    "sum": "Sum of a number field",
    "avg": "Average of a number field (2 decimals)",
    "min": "Smallest value (number, date, time or text)",
    "max": "Largest value (number, date, time or text)",
}
_ORDERED: frozenset[FieldType] = frozenset({"number", "datetime", "date", "month", "string"})


def aggregation_applies(function: str, field_type: FieldType) -> bool:
    """Whether `function` may aggregate a field of `field_type`."""
    if function == "count":
        return True
    if function in ("sum", "avg"):
        return field_type == "number"
    return field_type in _ORDERED


# operator -> the field types it applies to
_ALL: frozenset[FieldType] = frozenset(
    {"id", "string", "number", "boolean", "datetime", "date", "month"}
)
_RANGE: frozenset[FieldType] = frozenset({"number", "datetime", "date", "month"})
OPERATORS: dict[str, frozenset[FieldType]] = {
    "eq": _ALL,
    "ne": _ALL,
    "in": frozenset({"id", "string", "number", "date", "month"}),
    "not_in": frozenset({"id", "string", "number", "date", "month"}),
    "lt": _RANGE,
    "lte": _RANGE,
    "gt": _RANGE,
    "gte": _RANGE,
    "between": _RANGE,
    "contains": frozenset({"string"}),
    "is_null": _ALL,
    "is_not_null": _ALL,
    "within_last_days": frozenset({"datetime"}),
}
OPERATOR_HELP: dict[str, str] = {
    "eq": "equals value",
    "ne": "differs from value (empty values included)",
    "in": "is one of value (a list)",
    "not_in": "is none of value (a list; empty values included)",
    "lt": "less than value",
    "lte": "at most value",
    "gt": "greater than value",
    "gte": "at least value",
    "between": "value is [low, high], both included",
    "contains": "contains value, ignoring case",
    "is_null": "is empty (no value)",
    "is_not_null": "is not empty (no value)",
    "within_last_days": "from value days before the run until the run (value: 1-3660)",
}


@dataclass(frozen=True)
class Template:
    """A ready-made report definition."""

    id: str
    name: str
    description: str
    fields: tuple[str, ...]
    filters: tuple[dict[str, Any], ...] = ()
    grouping: tuple[str, ...] = ()
    sorting: tuple[dict[str, str], ...] = ()
    aggregations: tuple[dict[str, str], ...] = ()


TEMPLATES: tuple[Template, ...] = (
    Template(
        "pipeline_by_stage",
        "Pipeline by stage",
        "Leads per stage in pipeline order, with their average score.",
        fields=("stage",),
        grouping=("stage",),
        sorting=({"field": "stage", "direction": "asc"},),
        aggregations=(
            {"function": "count", "as": "leads"},
            {"function": "avg", "field": "score", "as": "avg_score"},
        ),
    ),
    Template(
        "leads_by_source_and_month",
        "Leads by source and month",
        "New leads per source and month of creation (organisation time zone).",
        fields=("created_month", "source"),
        grouping=("created_month", "source"),
        sorting=(
            {"field": "created_month", "direction": "asc"},
            {"field": "source", "direction": "asc"},
        ),
        aggregations=(
            {"function": "count", "as": "leads"},
            {"function": "sum", "field": "is_won", "as": "won"},
        ),
    ),
    Template(
        "counselor_activity",
        "Counselor activity",
        "Per assignee: leads, logged interactions, won leads and SLA breaches.",
        fields=("assignee_name",),
        grouping=("assignee_name",),
        sorting=({"field": "leads", "direction": "desc"},),
        aggregations=(
            {"function": "count", "as": "leads"},
            {"function": "sum", "field": "interaction_count", "as": "interactions"},
            {"function": "sum", "field": "is_won", "as": "won"},
            {"function": "sum", "field": "sla_breached", "as": "sla_breaches"},
        ),
    ),
    Template(
        "sla_breaches",
        "SLA breaches",
        "Leads whose response deadline passed without a response, oldest deadline first.",
        fields=("full_name", "status", "assignee_name", "sla_deadline", "sla_breached_at"),
        filters=({"field": "sla_state", "op": "eq", "value": "breached"},),
        sorting=({"field": "sla_deadline", "direction": "asc"},),
    ),
    Template(
        "import_results",
        "Import results",
        "Leads per import file: how many it created and where they stand now.",
        fields=("import_date", "import_file", "import_batch_id"),
        filters=({"field": "import_batch_id", "op": "is_not_null"},),
        grouping=("import_date", "import_file", "import_batch_id"),
        sorting=({"field": "import_date", "direction": "desc"},),
        aggregations=(
            {"function": "count", "as": "leads"},
            {"function": "sum", "field": "is_open", "as": "open"},
            {"function": "sum", "field": "is_won", "as": "won"},
        ),
    ),
)
