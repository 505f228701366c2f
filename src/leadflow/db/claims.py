"""Claims: a conditional UPDATE that exactly one of many concurrent callers wins.

Work that several workers may attempt at once (a due SLA reminder, a background import, an
outbox row, a provider event) is taken with one `UPDATE … WHERE <row still in the expected
state>`. The database serialises writes to a row and re-checks the WHERE against the winner's
committed change, so every other caller's UPDATE matches nothing. That needs no explicit lock
(no SELECT … FOR UPDATE, no advisory lock), leaves no window between a read and a write, and
runs the same on SQLite and PostgreSQL. Claims go by id, so "won" means exactly one row matched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Table, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from leadflow.db.base import Base


async def claim(
    session: AsyncSession,
    target: type[Base] | Table,
    /,
    *conditions: ColumnElement[bool],
    **values: Any,
) -> bool:
    """Set `values` on the row matching `conditions`; True only if exactly one row matched."""
    result = await session.execute(
        update(target)
        .where(*conditions)
        .values(**values)
        # Loaded objects keep their old values; a caller that needs the row reads it again.
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


async def claim_returning(
    session: AsyncSession,
    target: type[Base] | Table,
    returning: Sequence[ColumnElement[Any] | QueryableAttribute[Any]],
    /,
    *conditions: ColumnElement[bool],
    **values: Any,
) -> tuple[Any, ...] | None:
    """`claim`, answered by `UPDATE … RETURNING`: the won row's `returning` columns, or None."""
    result = await session.execute(
        update(target)
        .where(*conditions)
        .values(**values)
        .returning(*returning)
        .execution_options(synchronize_session=False)
    )
    row = result.one_or_none()
    return None if row is None else tuple(row)
