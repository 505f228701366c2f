"""Portable "JSON array contains" for tag-like columns (GIN-indexed @> on PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, column, exists, func, literal, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB


def json_array_contains(col: Any, value: str, dialect: str) -> ColumnElement[bool]:
    """`value` is an element of the JSON array in `col`."""
    if dialect == "postgresql":
        return type_coerce(col, JSONB).contains([value])
    each = func.json_each(col).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(column("value") == value))


def json_array_elements(col: Any, dialect: str) -> Any:
    """A table-valued expression yielding one `value` row per array element."""
    if dialect == "postgresql":
        return func.jsonb_array_elements_text(type_coerce(col, JSONB)).table_valued("value")
    return func.json_each(col).table_valued("value")
