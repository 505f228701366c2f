"""`EXPLAIN (FORMAT JSON)` of any statement, with its parameters bound by SQLAlchemy."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import ClauseElement, Executable
from sqlalchemy.sql.visitors import InternalTraversal


class Explain(Executable, ClauseElement):
    """Wraps a SELECT so executing it returns the PostgreSQL plan as JSON."""

    # Cache key = the wrapped statement's key, so the SQL is compiled once per statement shape
    # rather than on every list request.
    inherit_cache = True
    _traverse_internals = [("statement", InternalTraversal.dp_clauseelement)]

    def __init__(self, statement: Any) -> None:
        self.statement = statement

    @property
    def _all_selected_columns(self) -> list[Any]:
        # A cached compilation re-matches result columns against the new statement; the plan
        # is one untyped text column, matched by position.
        return []


@compiles(Explain, "postgresql")
def _compile_explain(element: Explain, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (FORMAT JSON) " + compiler.process(element.statement, **kw)
