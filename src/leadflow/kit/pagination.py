"""Offset pagination shared by every list endpoint: `{items, total, limit, offset}`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Generic, TypeVar

from fastapi import Query
from pydantic import BaseModel

T = TypeVar("T")

MAX_LIMIT = 500


# Deeper than this is not paging; lists that grow that long offer keyset cursors.
MAX_OFFSET = 1_000_000_000


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int
    limit: int
    offset: int


@dataclass(frozen=True, slots=True)
class PageParams:
    """Validated `limit` and `offset`."""

    limit: int = 50
    offset: int = 0


async def page_params(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (max 500)")] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Rows to skip")] = 0,
) -> PageParams:
    """FastAPI dependency reading `limit`/`offset` from the query string."""
    return PageParams(limit=limit, offset=offset)
