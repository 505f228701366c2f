"""Run a read-only Core SELECT on the asyncpg connection itself (PostgreSQL hot paths).

SQLAlchemy's execution path (cache-key lookup, parameter processing, result rows with typed
processors) costs more per statement than the small indexed queries every request makes
(authentication, a page of leads). On PostgreSQL this module compiles each statement shape
once through SQLAlchemy — the SQL is still generated from the same Core expression — and
then hands the SQL and its positional parameters straight to asyncpg, whose Records are
decoded in C. On SQLite, or for a statement that needs SQLAlchemy's post-compile
expansion (`IN` lists), it simply executes through the session.

The statement runs on the session's own connection: inside the request's transaction once
one is open, on its own before that (see `_driver`). It relies on a few SQLAlchemy
internals — `_generate_cache_key`, `construct_params` with collected parameters and
`_cached_bind_processor` — exactly as SQLAlchemy's own execution uses them; the tests in
`tests/platform/test_fastpath.py` and every list/auth test on PostgreSQL pin them (and
`pyproject.toml` pins SQLAlchemy's minor version for that reason).

Driver types stop here: rows leave this module as plain dicts whose values are plain Python
types (`uuid.UUID`, not asyncpg's own UUID subclass), on both engines.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from asyncpg.pgproto.pgproto import UUID as _DriverUUID
from sqlalchemy.engine.interfaces import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.expression import Executable

from leadflow.db.dialect import is_postgres
from leadflow.kit.bounded import remember

_CACHE_SIZE = 500


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A compiled statement shape: SQL text plus how to order and convert its parameters."""

    compiled: Any
    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    uuid_keys: frozenset[str]  # result columns typed UUID (converted per row)


_prepared: dict[Any, _Prepared | None] = {}
_new = object.__new__
_set = object.__setattr__
_UNKNOWN = uuid.SafeUUID.unknown
_MISSING = object()
# Server-side errors that end the session (the socket may still look open for a moment).
_SESSION_ENDED = (
    asyncpg.PostgresConnectionError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
    asyncpg.CannotConnectNowError,
)


def _prepare(stmt: Any, dialect: Dialect, key: Any) -> _Prepared | None:
    compiled = stmt.compile(dialect=dialect, cache_key=key)
    sql = str(compiled)
    if "__[POSTCOMPILE" in sql or compiled.positiontup is None:
        return None  # needs SQLAlchemy's expansion at execution time
    names = tuple(compiled.positiontup)
    # The dialect-specific processors SQLAlchemy itself applies (e.g. asyncpg's ARRAY, JSONB).
    processors = tuple(compiled.binds[name].type._cached_bind_processor(dialect) for name in names)
    uuid_keys = frozenset(
        c.name for c in compiled._result_columns if isinstance(c.type, sqltypes.Uuid)
    )
    return _Prepared(compiled, sql, names, processors, uuid_keys)


def _lookup(stmt: Any, dialect: Dialect) -> tuple[_Prepared | None, Any]:
    key = stmt._generate_cache_key()
    if key is None:
        return None, None
    cache_key = (dialect, key.key)  # per dialect object, as SQLAlchemy's own cache
    found = _prepared.get(cache_key, _MISSING)
    if found is not _MISSING:
        return found, key  # type: ignore[return-value]
    prepared = _prepare(stmt, dialect, key)
    remember(_prepared, cache_key, prepared, _CACHE_SIZE)
    return prepared, key


def _plain_uuid(value: _DriverUUID) -> uuid.UUID:
    # What `uuid.UUID(int=...)` builds, without its argument checks (~2x faster): a page of
    # leads holds a hundred or more of them.
    u = _new(uuid.UUID)
    _set(u, "int", value.int)
    _set(u, "is_safe", _UNKNOWN)
    return u


def _plain(
    records: Sequence[Mapping[str, Any]], typed: frozenset[str] = frozenset()
) -> list[dict[str, Any]]:
    """asyncpg Records as dicts of plain values (asyncpg decodes UUIDs to its own subclass).

    `typed`: the columns the statement declares as UUIDs. A column it does not type (a
    literal, a cast) is found from the first row, where it holds a UUID or a NULL (a later
    row may hold one); only those columns are looked at in each row."""
    if not records:
        return []
    keys = {k for k, v in records[0].items() if k in typed or v is None or type(v) is _DriverUUID}
    rows = []
    for r in records:
        row = dict(r.items())
        for k in keys:
            v = row[k]
            if type(v) is _DriverUUID:
                row[k] = _plain_uuid(v)
        rows.append(row)
    return rows


async def _driver(conn: AsyncConnection) -> Any:
    raw = await conn.get_raw_connection()
    # SQLAlchemy's asyncpg adapter opens its transaction lazily, on the first statement it
    # runs. Once the request has one (it wrote, or read through the session), this read runs
    # inside it and sees its changes. Until then the read runs on its own: under READ
    # COMMITTED every statement takes its own snapshot anyway, and a request that only reads
    # (a list page) saves the BEGIN and COMMIT round trips.
    return raw.dbapi_connection.driver_connection  # type: ignore[union-attr]


async def fetch_all(
    session: AsyncSession, stmt: Executable, params: Mapping[str, Any] | None = None
) -> list[dict[str, Any]]:
    """All rows of `stmt` as dicts of plain Python values, on both engines.

    `params` fill named `bindparam()`s: a statement built once at import time and run with
    new values skips rebuilding and re-keying the expression on every call. For reads only:
    the session is not autoflushed first, so pending ORM changes are not seen.
    """
    conn = await session.connection()
    if is_postgres(conn):
        prepared, key = _lookup(stmt, conn.dialect)
        if prepared is not None:
            # The same call SQLAlchemy makes when it reuses a cached compilation: this
            # statement's values mapped onto the cached statement's parameter names.
            values = prepared.compiled.construct_params(
                params,
                extracted_parameters=key.bindparams,
                escape_names=False,
                _collected_params=key[2],
            )
            args = [
                proc(values[name]) if proc is not None else values[name]
                for name, proc in zip(prepared.names, prepared.processors, strict=True)
            ]
            driver = await _driver(conn)
            try:
                records: Sequence[Mapping[str, Any]] = await driver.fetch(prepared.sql, *args)
            except Exception as exc:
                if driver.is_closed() or isinstance(exc, _SESSION_ENDED):
                    # What SQLAlchemy does when its own statement meets a lost connection:
                    # drop it from the pool, so no later request inherits a dead connection.
                    # Other errors (a bad value, a cancelled statement) leave it in place.
                    await conn.invalidate()
                raise
            return _plain(records, prepared.uuid_keys)
    return [dict(m) for m in (await conn.execute(stmt, params)).mappings()]


async def fetch_one(
    session: AsyncSession, stmt: Executable, params: Mapping[str, Any] | None = None
) -> dict[str, Any] | None:
    """The first row of `stmt`, or None."""
    rows = await fetch_all(session, stmt, params)
    return rows[0] if rows else None
