"""Portable "JSON array contains" for tag-like columns (GIN-indexed @> on PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, column, exists, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB


def json_array_contains(col: Any, value: Any, dialect: str) -> ColumnElement[bool]:
    """`value` (a string or a string-typed bind parameter) is an element of the array in `col`."""
    if dialect == "postgresql":
        # `@> jsonb_build_array(value)` rather than `@> '["value"]'`: the value stays a plain
        # text parameter on both dialects, and the tags GIN index (jsonb_path_ops) still serves it.
        return type_coerce(col, JSONB).contains(func.jsonb_build_array(value))
    each = func.json_each(col).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(column("value") == value))


def json_array_elements(col: Any, dialect: str) -> Any:
    """A table-valued expression yielding one `value` row per array element."""
    if dialect == "postgresql":
        return func.jsonb_array_elements_text(type_coerce(col, JSONB)).table_valued("value")
    return func.json_each(col).table_valued("value")
