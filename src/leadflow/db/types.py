"""Portable column types: UUIDv7 ids, aware UTC timestamps, JSON (JSONB on PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import uuid_utils
from asyncpg.pgproto.pgproto import UUID as _WireUUID
from sqlalchemy import JSON, DateTime, Dialect, TypeDecorator
from sqlalchemy.dialects.postgresql import JSONB
from uuid_utils.compat import uuid7


def new_id() -> uuid.UUID:
    """A time-ordered UUIDv7 (keeps B-tree inserts local at millions of rows)."""
    return uuid7()


# Bulk writes (COPY) send millions of ids. asyncpg's own UUID type is a `uuid.UUID` (equal,
# same hash, same text) that its binary encoder writes without a call back into Python; a
# standard `uuid.UUID` costs one (`.bytes`) per value, and making one from uuid_utils costs
# another. So a bulk write makes its new ids in that form and converts the few ids repeated
# on every row (organisation, creator) once.


def new_wire_id() -> uuid.UUID:
    """`new_id` in the form asyncpg sends fastest (for rows written by COPY)."""
    return _WireUUID(uuid_utils.uuid7().bytes)


class WireIds(dict[uuid.UUID, uuid.UUID]):
    """The few distinct ids repeated over many COPY rows, each in asyncpg's form once."""

    def __missing__(self, key: uuid.UUID) -> uuid.UUID:
        value = self[key] = key if type(key) is _WireUUID else _WireUUID(key.bytes)
        return value


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamp stored in UTC and always returned timezone-aware."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Reject naive datetimes; normalise to UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; Leadflow stores aware UTC times only")
        value = value.astimezone(UTC)
        # SQLite has no timezone type: store naive UTC so ordering stays lexical.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Attach UTC to values read back from SQLite."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONType: Any = JSON().with_variant(JSONB(), "postgresql")
