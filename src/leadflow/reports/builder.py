"""A report definition checked against the catalogue and compiled to one SELECT.

`check` rejects anything outside the catalogue (422 with the offending place in `errors`);
`compile_report` turns a checked definition into a statement over the actor's leads: their
row scope (`authz.scopes`) is always part of the WHERE clause.

A report without grouping or aggregations lists one row per lead with `fields` as columns. A
grouped report has the grouping fields and then the aggregations as columns; its rows are
computed over a subquery of per-lead values, so every expression (and its parameters) is
written once and GROUP BY names plain columns on both engines.
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.sql.elements import UnaryExpression

from leadflow.authz.actor import Actor
from leadflow.authz.scopes import lead_scope_conditions
from leadflow.db.dialect import unicode_lower
from leadflow.models.lead import Lead
from leadflow.reports.catalogue import (
    AGGREGATIONS,
    BY_KEY,
    JOINS,
    OPERATORS,
    Context,
    FieldSpec,
    FieldType,
    aggregation_applies,
)
from leadflow.reports.errors import (
    InvalidReport,
    UnknownAggregation,
    UnknownField,
    UnknownOperator,
)
from leadflow.reports.schemas import Definition

ColumnKind = Literal["field", "count", "sum", "avg", "min", "max"]
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
_MONTH = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])$")
# Only the calendar form: date.fromisoformat would also take 20260131 or 2026-W05-1.
_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
MAX_LIST = 500
MAX_TEXT = 500


@dataclass(frozen=True)
class OutputColumn:
    """A column of the report's rows."""

    key: str
    label: str
    type: FieldType
    kind: ColumnKind = "field"


@dataclass(frozen=True)
class Aggregation:
    """A checked aggregation: its output name, function and (optional) field."""

    name: str
    function: str
    field: FieldSpec | None


@dataclass(frozen=True)
class Condition:
    """A checked filter with its value converted to the field's type."""

    field: FieldSpec
    op: str
    value: Any


@dataclass(frozen=True)
class Checked:
    """A definition whose every name is in the catalogue."""

    fields: tuple[FieldSpec, ...]
    grouping: tuple[FieldSpec, ...]
    aggregations: tuple[Aggregation, ...]
    conditions: tuple[Condition, ...]
    sorting: tuple[tuple[str, bool], ...]  # (key, descending)

    @property
    def grouped(self) -> bool:
        """Whether rows are groups (grouping or aggregations given) rather than leads."""
        return bool(self.grouping or self.aggregations)

    @property
    def columns(self) -> list[OutputColumn]:
        """The output columns, in order."""
        if not self.grouped:
            return [OutputColumn(f.key, f.label, f.type) for f in self.fields]
        cols = [OutputColumn(f.key, f.label, f.type) for f in self.grouping]
        for agg in self.aggregations:
            if agg.function == "count":
                label = f"Count of {agg.field.label}" if agg.field else "Count"
                cols.append(OutputColumn(agg.name, label, "number", "count"))
            else:
                assert agg.field is not None
                kind: ColumnKind = agg.function  # type: ignore[assignment]
                typ: FieldType = "number" if agg.function in ("sum", "avg") else agg.field.type
                label = f"{agg.function.capitalize()} of {agg.field.label}"
                cols.append(OutputColumn(agg.name, label, typ, kind))
        return cols


def _loc(*parts: str | int) -> list[str | int]:
    return ["body", *parts]


def _field(key: str, *loc: str | int) -> FieldSpec:
    spec = BY_KEY.get(key)
    if spec is None:
        raise UnknownField(
            f"Unknown field {key!r}: GET /api/v1/reports/fields lists the fields",
            errors=[{"loc": _loc(*loc), "msg": f"unknown field {key!r}"}],
            field=key,
        )
    return spec


def _invalid(msg: str, *loc: str | int) -> InvalidReport:
    return InvalidReport(msg, errors=[{"loc": _loc(*loc), "msg": msg}])


def _unique(keys: list[str], what: str) -> None:
    seen: set[str] = set()
    for i, key in enumerate(keys):
        if key in seen:
            raise _invalid(f"{key!r} is listed twice", what, i)
        seen.add(key)


def _scalar(spec: FieldSpec, value: Any, *loc: str | int) -> Any:
    """`value` converted to the type of `spec`, or InvalidReport."""
    typ = spec.type
    bad = _invalid(f"{value!r} is not a valid value for {spec.key} ({typ})", *loc)
    if typ == "id":
        try:
            return uuid.UUID(str(value))
        except ValueError:
            raise bad from None
    if typ == "string":
        if not isinstance(value, str) or len(value) > MAX_TEXT:
            raise bad
        return value
    if typ == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise bad
        if isinstance(value, float) and not math.isfinite(value):
            raise bad  # NaN and Infinity match nothing and no database stores them alike
        return value
    if typ == "boolean":
        if not isinstance(value, bool):
            raise bad
        return value
    if typ == "datetime":
        if not isinstance(value, str):
            raise bad
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise bad from None
        if parsed.tzinfo is None:
            raise _invalid(f"{spec.key}: give a time zone (e.g. 2026-01-31T00:00:00Z)", *loc)
        return parsed
    if not isinstance(value, str):
        raise bad
    if typ == "date":
        if not _DATE.fullmatch(value):
            raise bad
        try:
            date.fromisoformat(value)
        except ValueError:
            raise bad from None
        return value
    if not _MONTH.fullmatch(value):  # month
        raise bad
    return value


def _condition(spec: FieldSpec, op: str, value: Any, i: int) -> Condition:
    loc = ("filters", i, "value")
    if op in ("is_null", "is_not_null"):
        return Condition(spec, op, None)
    if op in ("in", "not_in"):
        if not isinstance(value, list) or not 1 <= len(value) <= MAX_LIST:
            raise _invalid(f"{op} takes a list of 1 to {MAX_LIST} values", *loc)
        return Condition(spec, op, [_scalar(spec, v, *loc) for v in value])
    if op == "between":
        if not isinstance(value, list) or len(value) != 2:
            raise _invalid("between takes [low, high]", *loc)
        return Condition(spec, op, [_scalar(spec, v, *loc) for v in value])
    if op == "within_last_days":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 3660:
            raise _invalid("within_last_days takes a whole number of days (1-3660)", *loc)
        return Condition(spec, op, value)
    if value is None:
        raise _invalid(f"{op} needs a value (use is_null for empty values)", *loc)
    if op == "contains":
        if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
            raise _invalid("contains takes a non-empty text", *loc)
        return Condition(spec, op, value)
    return Condition(spec, op, _scalar(spec, value, *loc))


def check(defn: Definition) -> Checked:
    """The definition with every name resolved in the catalogue; 422 on the first problem."""
    fields = tuple(_field(k, "fields", i) for i, k in enumerate(defn.fields))
    _unique(list(defn.fields), "fields")
    grouping = tuple(_field(k, "grouping", i) for i, k in enumerate(defn.grouping))
    _unique(list(defn.grouping), "grouping")

    aggs: list[Aggregation] = []
    for i, a in enumerate(defn.aggregations):
        if a.function not in AGGREGATIONS:
            raise UnknownAggregation(
                f"Unknown aggregation {a.function!r}: use one of {', '.join(AGGREGATIONS)}",
                errors=[{"loc": _loc("aggregations", i, "function"), "msg": "unknown"}],
                aggregation=a.function,
            )
        spec = _field(a.field, "aggregations", i, "field") if a.field is not None else None
        if spec is None and a.function != "count":
            raise _invalid(f"{a.function} needs a field", "aggregations", i, "field")
        if spec is not None and not aggregation_applies(a.function, spec.type):
            raise _invalid(
                f"{a.function} does not apply to {spec.key} ({spec.type})",
                "aggregations",
                i,
                "function",
            )
        name = a.as_ or (a.function if spec is None else f"{a.function}_{spec.key}")
        if not _NAME.match(name):
            raise _invalid(
                "an aggregation's name (as) is 1-40 of a-z, 0-9, _ and starts with a letter",
                "aggregations",
                i,
                "as",
            )
        if name in BY_KEY:
            raise _invalid(f"{name!r} is a field's name; choose another", "aggregations", i, "as")
        aggs.append(Aggregation(name, a.function, spec))
    _unique([a.name for a in aggs], "aggregations")

    grouped = bool(grouping or aggs)
    if not grouped and not fields:
        raise _invalid("name at least one field (or group and aggregate)", "fields")
    if grouped:
        group_keys = {g.key for g in grouping}
        for i, f in enumerate(fields):
            if f.key not in group_keys:
                raise _invalid(
                    f"{f.key!r} is neither grouped nor aggregated: add it to grouping",
                    "fields",
                    i,
                )

    conditions = []
    for i, flt in enumerate(defn.filters):
        spec = _field(flt.field, "filters", i, "field")
        if flt.op not in OPERATORS:
            raise UnknownOperator(
                f"Unknown operator {flt.op!r}: use one of {', '.join(OPERATORS)}",
                errors=[{"loc": _loc("filters", i, "op"), "msg": "unknown operator"}],
                operator=flt.op,
            )
        if spec.type not in OPERATORS[flt.op]:
            raise _invalid(
                f"{flt.op} does not apply to {spec.key} ({spec.type})", "filters", i, "op"
            )
        conditions.append(_condition(spec, flt.op, flt.value, i))

    sortable = {g.key for g in grouping} | {a.name for a in aggs} if grouped else set(BY_KEY)
    sorting = []
    for i, s in enumerate(defn.sorting):
        if s.field not in sortable:
            if grouped and s.field in BY_KEY:
                raise _invalid(
                    f"sort a grouped report by a grouped field or an aggregation, not {s.field!r}",
                    "sorting",
                    i,
                    "field",
                )
            _field(s.field, "sorting", i, "field")
        sorting.append((s.field, s.direction == "desc"))
    _unique([k for k, _ in sorting], "sorting")
    return Checked(fields, grouping, tuple(aggs), tuple(conditions), tuple(sorting))


def _where(cond: Condition, ctx: Context) -> ColumnElement[bool]:
    expr = cond.field.expr(ctx)
    op, value = cond.op, cond.value
    if op == "eq":
        return expr == value
    if op == "ne":
        return or_(expr != value, expr.is_(None))
    if op == "in":
        return expr.in_(value)
    if op == "not_in":
        return or_(expr.not_in(value), expr.is_(None))
    if op == "lt":
        return expr < value
    if op == "lte":
        return expr <= value
    if op == "gt":
        return expr > value
    if op == "gte":
        return expr >= value
    if op == "between":
        return expr.between(value[0], value[1])
    if op == "contains":
        escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        return unicode_lower(expr, ctx.dialect).like(f"%{escaped}%", escape="\\")
    if op == "is_null":
        return expr.is_(None)
    if op == "is_not_null":
        return expr.is_not(None)
    assert op == "within_last_days"
    return expr.between(ctx.now - timedelta(days=value), ctx.now)


def _direction(expr: Any, descending: bool) -> UnaryExpression[Any]:
    # Empty values last in both directions, on both engines (their defaults differ).
    return (expr.desc() if descending else expr.asc()).nulls_last()


@dataclass(frozen=True)
class Compiled:
    """The report's columns and its ordered row statement."""

    columns: list[OutputColumn]
    rows: Select[Any]

    def count(self) -> Select[Any]:
        """How many rows the report has."""
        return select(func.count()).select_from(self.rows.order_by(None).subquery())


def compile_report(checked: Checked, actor: Actor, ctx: Context) -> Compiled:
    """The statement of the report's rows, inside the actor's row scope."""
    used = [
        *checked.fields,
        *checked.grouping,
        *(a.field for a in checked.aggregations if a.field is not None),
        *(c.field for c in checked.conditions),
        *(BY_KEY[k] for k, _ in checked.sorting if k in BY_KEY),
    ]
    source: Any = Lead.__table__
    for name in sorted({j for spec in used for j in spec.joins}):
        target, on = JOINS[name]
        source = source.outerjoin(target, on)
    where = [*lead_scope_conditions(actor), *(_where(c, ctx) for c in checked.conditions)]

    if not checked.grouped:
        order = [
            _direction((BY_KEY[k].order or BY_KEY[k].expr)(ctx), desc)
            for k, desc in checked.sorting
        ]
        # Lead id last: equal sort values come in a stable order (preview = export start).
        order = order or [Lead.created_at.desc()]
        stmt = (
            select(*(f.expr(ctx).label(f.key) for f in checked.fields))
            .select_from(source)
            .where(*where)
            .order_by(*order, Lead.id.desc() if not checked.sorting else Lead.id.asc())
        )
        return Compiled(checked.columns, stmt)

    inner_cols: list[Any] = []
    for g in checked.grouping:
        inner_cols.append(g.expr(ctx).label(g.key))
        if g.order is not None:
            inner_cols.append(g.order(ctx).label(f"{g.key}__order"))
    for i, a in enumerate(checked.aggregations):
        if a.field is not None:
            inner_cols.append(a.field.expr(ctx).label(f"agg_{i}"))
    if not inner_cols:  # only count(*)
        inner_cols.append(Lead.id.label("agg_id"))
    inner = select(*inner_cols).select_from(source).where(*where).subquery("r")

    group_cols = [inner.c[g.key] for g in checked.grouping]
    order_of = {
        g.key: inner.c[f"{g.key}__order"] if g.order is not None else inner.c[g.key]
        for g in checked.grouping
    }
    outputs: dict[str, Any] = {}
    for i, a in enumerate(checked.aggregations):
        col = inner.c[f"agg_{i}"] if a.field is not None else None
        fn = getattr(func, a.function)
        agg = (
            (func.count() if col is None else func.count(col)) if a.function == "count" else fn(col)
        )
        outputs[a.name] = agg.label(a.name)
    order = [
        _direction(order_of[k] if k in order_of else outputs[k], desc)
        for k, desc in checked.sorting
    ]
    sorted_keys = {k for k, _ in checked.sorting}
    order += [
        _direction(order_of[g.key], False) for g in checked.grouping if g.key not in sorted_keys
    ]
    stmt = (
        select(*group_cols, *outputs.values())
        .select_from(inner)
        .group_by(*group_cols, *(order_of[g.key] for g in checked.grouping if g.order is not None))
        .order_by(*order)
    )
    return Compiled(checked.columns, stmt)


def jsonable(value: Any, column: OutputColumn) -> Any:
    """A result value as JSON shows it: ids and times as text, averages to 2 decimals."""
    if value is None:
        return None
    if column.kind == "avg":
        return round(float(value), 2)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if column.type == "boolean":
        return bool(value)
    return value
