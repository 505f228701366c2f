"""Where SQLite and PostgreSQL differ, behind one small interface.

Domain code asks these functions for an expression or a capability instead of branching on
the dialect name itself (the idea of Prefect's `query_components`). A third engine, or a
changed trick on one of them, is then a change in this module only.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from operator import itemgetter
from typing import Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import (
    ARRAY,
    BindParameter,
    ColumnElement,
    Date,
    Float,
    Numeric,
    String,
    any_,
    bindparam,
    case,
    cast,
    column,
    exists,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy import text as sql_text
from sqlalchemy.dialects import postgresql as pg
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

POSTGRESQL = "postgresql"
SQLITE = "sqlite"


def dialect_name(bind: AsyncSession | AsyncConnection) -> str:
    """`sqlite` or `postgresql`."""
    if isinstance(bind, AsyncSession):
        return bind.get_bind().dialect.name
    return bind.dialect.name


def is_postgres(bind: AsyncSession | AsyncConnection | str) -> bool:
    """Whether `bind` (a session, a connection or a dialect name) talks to PostgreSQL.

    For capabilities only PostgreSQL has (planner estimates, ANALYZE, COPY, index
    maintenance); SQL that differs between the engines has its own function below.
    """
    name = bind if isinstance(bind, str) else dialect_name(bind)
    return name == POSTGRESQL


def one_of_param(
    col: Any,
    dialect: str,
    bind: Callable[[Any, bool], BindParameter[Any]],
    element_type: Any = None,
) -> ColumnElement[bool]:
    """`col` equals one element of a list parameter made by `bind(type_, expanding)`.

    PostgreSQL binds the list as one array (`= ANY(:p)`): the SQL does not depend on the
    list's length, so one compiled statement serves every length. SQLite expands an IN list.
    """
    element_type = element_type if element_type is not None else String()
    if is_postgres(dialect):
        return col == any_(bind(ARRAY(element_type), False))
    return col.in_(bind(element_type, True))


def one_of_values(col: Any, values: Sequence[Any], dialect: str) -> ColumnElement[bool]:
    """`col` equals one of `values` (strings), bound inline.

    One array parameter on PostgreSQL: a list of thousands costs more to compile and plan as
    an IN list than to run.
    """
    if is_postgres(dialect):
        return col == any_(literal(list(values), ARRAY(String)))
    return col.in_(values)


def json_array_contains(col: Any, value: Any, dialect: str) -> ColumnElement[bool]:
    """`value` (a string or a string-typed bind parameter) is an element of the array in `col`."""
    if is_postgres(dialect):
        # `@> jsonb_build_array(value)` rather than `@> '["value"]'`: the value stays a plain
        # text parameter on both dialects, and the tags GIN index (jsonb_path_ops) still serves it.
        return type_coerce(col, JSONB).contains(func.jsonb_build_array(value))
    each = func.json_each(col).table_valued("value")
    return exists(select(literal(1)).select_from(each).where(column("value") == value))


def json_array_elements(col: Any, dialect: str) -> Any:
    """A table-valued expression yielding one `value` row per array element."""
    if is_postgres(dialect):
        return func.jsonb_array_elements_text(type_coerce(col, JSONB)).table_valued("value")
    return func.json_each(col).table_valued("value")


# SQLite knows no time zones: a Python function, registered on every SQLite connection, turns a
# stored UTC timestamp into local calendar text. PostgreSQL converts with `timezone()`.
SQLITE_LOCAL_TIME = "leadflow_local_time"
LocalPart = Literal["date", "month"]
_PG_FORMATS: dict[str, str] = {"date": "YYYY-MM-DD", "month": "YYYY-MM"}
_PY_FORMATS: dict[str, str] = {"date": "%Y-%m-%d", "month": "%Y-%m"}


def _sqlite_local_time(value: str | None, tz: str, part: str) -> str | None:
    if value is None:
        return None
    stored = datetime.fromisoformat(value).replace(tzinfo=UTC)  # stored as naive UTC
    return stored.astimezone(ZoneInfo(tz)).strftime(_PY_FORMATS[part])


# SQLite's lower() folds ASCII only ("ÄRGER" stays "ÄRGER"); this one folds like Python's
# str.lower(), which is what PostgreSQL's lower() does in a UTF-8 database.
SQLITE_UNICODE_LOWER = "leadflow_lower"


def _sqlite_lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def register_sqlite_functions(dbapi_conn: Any) -> None:
    """Add Leadflow's SQL functions to a new SQLite connection (the engine's connect hook)."""
    dbapi_conn.create_function(SQLITE_LOCAL_TIME, 3, _sqlite_local_time, deterministic=True)
    dbapi_conn.create_function(SQLITE_UNICODE_LOWER, 1, _sqlite_lower, deterministic=True)


def unicode_lower(expr: Any, dialect: str) -> ColumnElement[str]:
    """`lower(expr)` that folds non-ASCII letters too on both engines (compare it with a
    Python `str.lower()`ed value)."""
    if is_postgres(dialect):
        return func.lower(expr, type_=String())
    return func.leadflow_lower(expr, type_=String())


def local_time_text(col: Any, tz: str, part: LocalPart, dialect: str) -> ColumnElement[str]:
    """The calendar `part` (`date` → YYYY-MM-DD, `month` → YYYY-MM) of a UTC timestamp
    column as it reads in the time zone `tz` (an IANA name), as text; NULL stays NULL.

    Daylight saving is applied per row, so a bucket is a local day or month on both engines.
    """
    if is_postgres(dialect):
        return func.to_char(func.timezone(tz, col), _PG_FORMATS[part], type_=String())
    return func.leadflow_local_time(col, tz, part, type_=String())


def _json_text(value: Any) -> str:
    if not value:
        return "{}" if isinstance(value, dict) else "[]"
    return json.dumps(value)


def copy_rows(
    rows: list[dict[str, Any]], columns: Sequence[str], json_columns: Iterable[str] = ()
) -> list[Sequence[Any]]:
    """`rows` (dicts keyed by column name) as the value tuples a PostgreSQL COPY of
    `columns` sends, `json_columns` as JSON text (`bulk_insert`; an import builds them
    ahead, while its previous chunk is written)."""
    json_at = [columns.index(c) for c in json_columns]
    records: list[Sequence[Any]]
    try:
        # itemgetter picks a row's columns in C: an import copies ~40 columns per lead.
        if len(columns) < 2:
            raise KeyError(columns)  # one column: itemgetter would return bare values
        records = list(map(itemgetter(*columns), rows))
    except KeyError:
        records = [tuple(map(r.get, columns)) for r in rows]
    if json_at:
        for n, values in enumerate(records):
            record = list(values)
            for i in json_at:
                record[i] = _json_text(record[i])
            records[n] = record
    return records


async def update_by_id(
    session: AsyncSession, model: Any, columns: Sequence[str], rows: list[dict[str, Any]]
) -> None:
    """Write `columns` of many rows of `model`'s table by `id` in one executemany (every row
    carries `id` and all of `columns`)."""
    if not rows:
        return
    # The table, not the model: a plain executemany (the ORM would read a list of parameter
    # sets as its own bulk update). Bind names differ from the columns', which SQLAlchemy
    # keeps for the values of an UPDATE.
    table: Any = model.__table__
    stmt = (
        update(table)
        .where(table.c.id == bindparam("b_id", type_=table.c.id.type))
        .values({c: bindparam(f"b_{c}", type_=table.c[c].type) for c in columns})
    )
    await session.execute(
        stmt, [{"b_id": r["id"], **{f"b_{c}": r[c] for c in columns}} for r in rows]
    )


async def bulk_insert(
    session: AsyncSession,
    model: Any,
    rows: list[dict[str, Any]],
    *,
    columns: Sequence[str],
    json_columns: Iterable[str] = (),
    copied: list[Sequence[Any]] | None = None,
    written_here: Iterable[str] = (),
) -> None:
    """Insert `rows` (dicts keyed by column name) into `model`'s table in this transaction.

    PostgreSQL uses COPY through the session's own connection (same transaction, about ten
    times faster than INSERT); `columns` are the ones copied, `json_columns` are sent as
    JSON text; `copied` are the rows as `copy_rows` made them, if the caller has them
    already. `written_here` names foreign-key columns whose referenced rows this transaction
    wrote itself, for every row (they are not checked at all: the rows exist and no other
    transaction can delete them). SQLite runs one executemany INSERT.
    """
    if not rows:
        return
    conn = await session.connection()
    if not is_postgres(conn):
        await session.execute(insert(model), rows)
        return
    records = copied if copied is not None else copy_rows(rows, columns, json_columns)
    raw = await conn.get_raw_connection()
    keys = _foreign_keys(model.__table__, columns)
    per_statement = keys is not None and await _check_keys(
        conn, keys, records, columns, set(written_here)
    )
    if not per_statement:
        # PostgreSQL checks the keys per row (its RI triggers). The pool plans every
        # statement for its parameters (engine.PG_SERVER_SETTINGS), which would plan each of
        # those checks again (25 µs a row); the rest of this bulk write's transaction may keep
        # their generic plan, a primary-key probe.
        await conn.execute(sql_text("SELECT set_config('plan_cache_mode', 'auto', true)"))
    try:
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            model.__tablename__, records=records, columns=list(columns)
        )
    except BaseException as exc:
        # An error of the server aborted the transaction (or the caller's savepoint), whose
        # rollback restores the role; a statement sent now would only replace that error
        # with "transaction aborted". Anything else (a cancellation, a client-side failure)
        # may leave the transaction open: switch the per-row checks back on at once.
        if per_statement and not isinstance(exc, asyncpg.PostgresError):
            with contextlib.suppress(Exception):
                await conn.execute(sql_text(_ORIGIN))
        raise
    if per_statement:
        await conn.execute(sql_text(_ORIGIN))


_ORIGIN = "SELECT set_config('session_replication_role', 'origin', true)"


def _foreign_keys(table: Any, columns: Sequence[str]) -> list[tuple[str, str, str]] | None:
    """(column, referenced table, referenced column) of `table`'s foreign keys among
    `columns`, organisations first (the order in which deleting one takes its locks); None
    where one of them cannot be checked per statement here (several columns, deferrable,
    or a key column the COPY leaves to a default)."""
    keys = []
    for constraint in table.foreign_key_constraints:
        cols = [c.name for c in constraint.columns]
        if len(cols) > 1 or constraint.deferrable or constraint.initially:
            return None
        fk = constraint.elements[0]
        if cols[0] not in columns:
            if fk.parent.default is not None or fk.parent.server_default is not None:
                return None
            continue
        keys.append((fk.column.table.name, cols[0], fk.column.name))
    return [(col, ref_table, ref_col) for ref_table, col, ref_col in sorted(keys)]


def _row_checks_skippable(conn: AsyncConnection) -> str:
    """SQL: whether this transaction's role may set `session_replication_role` (a superuser,
    or PostgreSQL ≥ 15 with `GRANT SET ON PARAMETER session_replication_role`). Asked per
    COPY: `SET ROLE` may change it."""
    if (conn.dialect.server_version_info or (0,)) >= (15,):
        return "has_parameter_privilege('session_replication_role', 'SET')"
    return "(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)"


async def _check_keys(
    conn: AsyncConnection,
    keys: list[tuple[str, str, str]],
    records: list[Sequence[Any]],
    columns: Sequence[str],
    written_here: set[str],
) -> bool:
    """Check (and lock, as PostgreSQL's own check does) every row the foreign keys of
    `records` reference (but those of `written_here`), with one query for the whole COPY, and
    switch PostgreSQL's per-row checks off until `_ORIGIN`. Returns False (nothing checked or
    switched) where the role may not switch them off; raises IntegrityError for a missing
    row. The statement names `FOR KEY SHARE` either way, so the role needs `UPDATE` on the
    referenced tables even where the branch does not run (the application's role has it).

    PostgreSQL checks a foreign key with one query per inserted row (its RI triggers):
    the 3 keys of a lead cost more than its 21 index entries. Triggers that keep data are
    enabled ALWAYS (migration 0026), so the replica role skips only these checks. One round
    trip: the question, the switch and the counts (evaluated only when it may) are one
    statement, sent once per chunk on an import's critical path.
    """
    quote = conn.dialect.identifier_preparer.quote
    # Each part runs only where the role may (CASE is evaluated lazily, and so are the
    # uncorrelated subqueries): a role without the privilege gets False and no error, which
    # would abort the caller's transaction.
    parts = ["CASE WHEN may THEN set_config('session_replication_role', 'replica', true) END"]
    params: dict[str, Any] = {}
    expected: list[int] = []
    checked: list[tuple[str, str, str]] = []
    for n, (col, ref_table, ref_col) in enumerate(keys):
        if col in written_here:
            continue  # this transaction wrote those rows: they exist and are its own
        at = columns.index(col)
        values = list({r[at] for r in records} - {None})
        found = (
            f"SELECT count(*) FROM (SELECT 1 FROM ONLY {quote(ref_table)}"  # noqa: S608
            f" WHERE {quote(ref_col)} = ANY(:k{n}) FOR KEY SHARE) AS s{n}"
        )
        parts.append(f"CASE WHEN may THEN ({found}) END")
        params[f"k{n}"] = values
        expected.append(len(values))
        checked.append((col, ref_table, ref_col))
    may = _row_checks_skippable(conn)
    query = f"SELECT may, {', '.join(parts)} FROM (SELECT {may} AS may) AS m"  # noqa: S608
    row = (await conn.execute(sql_text(query), params)).one()
    if not row[0]:
        return False
    for (col, ref_table, ref_col), want, got in zip(checked, expected, row[2:], strict=True):
        if got != want:
            await conn.execute(sql_text(_ORIGIN))
            missing = f"{want - got} row(s) of {ref_table} missing"
            raise IntegrityError(
                f"COPY violates the foreign key {col} → {ref_table}.{ref_col}",
                None,
                LookupError(missing),
            )
    return True


@asynccontextmanager
async def local_settings(
    bind: AsyncSession | AsyncConnection, **settings: str
) -> AsyncIterator[None]:
    """PostgreSQL settings changed for the statements inside the block only (this
    transaction's values are restored after it; a failure aborts the transaction, whose
    rollback undoes them anyway). SQLite: nothing to change."""
    if not is_postgres(bind) or not settings:
        yield
        return
    names = list(settings)
    result = await bind.execute(
        sql_text("SELECT current_setting(n) FROM unnest(CAST(:names AS text[])) AS n"),
        {"names": names},
    )
    was = list(result.scalars())
    await _set_local(bind, dict(settings))
    yield
    await _set_local(bind, dict(zip(names, was, strict=True)))


async def _set_local(bind: AsyncSession | AsyncConnection, settings: dict[str, str]) -> None:
    await bind.execute(
        sql_text(
            "SELECT set_config(n, v, true)"
            " FROM unnest(CAST(:names AS text[]), CAST(:values AS text[])) AS s(n, v)"
        ),
        {"names": list(settings), "values": list(settings.values())},
    )


async def upsert(
    session: AsyncSession,
    model: Any,
    rows: Sequence[dict[str, Any]],
    *,
    key: Sequence[str],
    add: Sequence[str] = (),
    replace: Sequence[str] = (),
) -> None:
    """Insert `rows`; where a row with the same `key` (a unique constraint) exists, add the
    new values of the `add` columns to the stored ones and overwrite the `replace` columns.
    Without `add` and `replace`, rows that exist already are left as they are.

    One `INSERT … ON CONFLICT` on both engines: atomic against concurrent writers of the same
    key (PostgreSQL re-checks the conflict under the row lock). Rows are written in key order,
    so two writers of the same keys lock them in the same order and cannot deadlock.
    """
    if not rows:
        return
    table = model.__table__
    stmt = (pg.insert if is_postgres(session) else sqlite.insert)(table)
    ordered = sorted(rows, key=lambda r: tuple(r[k] for k in key))
    values: dict[str, Any] = {c: table.c[c] + stmt.excluded[c] for c in add}
    values.update({c: stmt.excluded[c] for c in replace})
    if values:
        stmt = stmt.on_conflict_do_update(index_elements=list(key), set_=values)
    else:
        stmt = stmt.on_conflict_do_nothing(index_elements=list(key))
    await session.execute(stmt, ordered)


# ---- analytics: local dates, durations, numbers inside JSON ----------------------------------


def utc_offset_segments(
    timezone: str, start: datetime, end: datetime
) -> list[tuple[datetime | None, int]]:
    """The UTC offsets (minutes) of `timezone` between `start` and `end` (aware UTC).

    `[(until, offset), …]`: `offset` holds for times before `until` (exclusive, UTC) and after
    the previous segment; the last segment has `until=None`. Transitions are found by a day
    walk and a bisection to the second: a year has two, ten years about twenty.
    """
    zone = ZoneInfo(timezone)

    def offset(at: datetime) -> int:
        delta = at.astimezone(zone).utcoffset() or timedelta(0)
        return int(delta.total_seconds() // 60)

    def instant(seconds: int) -> datetime:
        return datetime.fromtimestamp(seconds, UTC)

    segments: list[tuple[datetime | None, int]] = []
    current, at = offset(start), start
    while at < end:
        step = min(at + timedelta(days=1), end)
        if offset(step) != current:
            # Transitions fall on whole seconds: bisect over integer timestamps.
            lo, hi = math.floor(at.timestamp()), math.ceil(step.timestamp())
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if offset(instant(mid)) == current:
                    lo = mid
                else:
                    hi = mid
            segments.append((instant(hi), current))
            current = offset(instant(hi))
        at = step
    segments.append((None, current))
    return segments


def local_date(
    col: Any, timezone: str, start: datetime, end: datetime, dialect: str
) -> ColumnElement[date]:
    """The calendar date in `timezone` of the UTC timestamp `col`, for rows in [start, end).

    PostgreSQL converts with its own time zone database (`timezone(tz, col)::date`). SQLite
    has none: its expression shifts `col` by the offset of the stretch it falls in
    (`utc_offset_segments`), exact across DST changes and for zones a quarter hour off.
    Group by it through a subquery: the zone is a bind parameter, and PostgreSQL does not
    match two separately bound copies of one expression in SELECT and GROUP BY.
    """
    if is_postgres(dialect):
        return cast(func.timezone(literal(timezone, String), col), Date)
    segments = utc_offset_segments(timezone, start, end)

    def shifted(minutes: int) -> Any:
        return func.date(col, literal(f"{minutes:+d} minutes", String))

    *bounded, (_, last) = segments
    if not bounded:
        return type_coerce(shifted(last), Date)
    whens = [(col < until, shifted(minutes)) for until, minutes in bounded]
    return type_coerce(case(*whens, else_=shifted(last)), Date)


def minutes_between(later: Any, earlier: Any, dialect: str) -> ColumnElement[float]:
    """Minutes from the timestamp `earlier` to `later` (fractional)."""
    if is_postgres(dialect):
        # date_part is double precision; EXTRACT is numeric since PostgreSQL 14 (several
        # times slower over a period's worth of rows, and no more exact for minutes).
        return type_coerce(func.date_part("epoch", later - earlier) / 60, Float)
    return type_coerce((func.julianday(later) - func.julianday(earlier)) * 1440.0, Float)


_JSON_KEY = re.compile(r"^[A-Za-z0-9_]+$")


def json_number(col: Any, key: str, dialect: str) -> ColumnElement[float]:
    """The number stored under `key` of the JSON object in `col`; NULL when it is missing or
    not a JSON number (a string "1000" does not count)."""
    if not _JSON_KEY.match(key):
        raise ValueError(f"unsupported JSON key {key!r}")
    if is_postgres(dialect):
        doc = type_coerce(col, JSONB)
        return case(
            (func.jsonb_typeof(doc[key]) == "number", cast(doc[key].astext, Numeric)),
            else_=None,
        )
    path = f"$.{key}"
    return case(
        (func.json_type(col, path).in_(("integer", "real")), func.json_extract(col, path)),
        else_=None,
    )
