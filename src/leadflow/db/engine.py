"""Engine and session factory for SQLite (aiosqlite) and PostgreSQL (asyncpg)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from pathlib import Path
from types import MappingProxyType
from typing import Any

from pydantic_core import from_json
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from leadflow.config import Settings, get_settings
from leadflow.db.dialect import register_sqlite_functions
from leadflow.exceptions import LeadflowError

log = logging.getLogger("leadflow.db")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # Take over transaction control from the driver so SAVEPOINTs and BEGIN work as documented.
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
    register_sqlite_functions(dbapi_conn)


# Whether transactions begun in this context may write. A SQLite transaction that starts by
# reading and then writes cannot wait for the write lock (WAL answers SQLITE_BUSY at once when
# another writer committed in between), so write transactions take the lock at BEGIN and queue
# behind the busy timeout instead. Everything writes unless it says it only reads (GET/HEAD).
_may_write: ContextVar[bool] = ContextVar("leadflow_may_write", default=True)


@contextmanager
def transactions_that(*, write: bool) -> Iterator[None]:
    """Transactions begun inside this block may write (`write=True`) or only read."""
    token = _may_write.set(write)
    try:
        yield
    finally:
        _may_write.reset(token)


def may_write() -> bool:
    """Whether transactions begun now may write (False inside a GET request)."""
    return _may_write.get()


def _sqlite_begin(conn: Any) -> None:
    conn.exec_driver_sql("BEGIN IMMEDIATE" if _may_write.get() else "BEGIN")


_WRITES = ("insert", "update", "delete", "replace")
# Tests turn this on so that a GET which writes fails loudly instead of only under contention.
STRICT_READ_ONLY = False


def _sqlite_guard(
    _conn: Any, _cursor: Any, statement: str, _params: Any, _context: Any, _many: bool
) -> None:
    if not _may_write.get() and statement.lstrip()[:7].lower().startswith(_WRITES):
        if STRICT_READ_ONLY:
            raise RuntimeError("write in a read-only transaction: " + statement[:80])
        log.warning("write in a read-only transaction: %s", statement[:80])


# Session settings of every PostgreSQL connection of the application.
# - plan_cache_mode: asyncpg prepares every statement; after five runs PostgreSQL may switch to
#   a generic plan that ignores the actual filter values (e.g. a selective trigram search) and
#   walks a sort index instead. Lists filter on very different values, so always plan with the
#   real parameters.
# - jit: compiling a statement to machine code costs 0.3-0.6 s and pays off only for queries
#   that run for many seconds; an OLTP request never does, so JIT only adds latency (an
#   analytics aggregate over 1M leads took 1 s with it and a fraction of that without).
PG_SERVER_SETTINGS: Mapping[str, str] = MappingProxyType(
    {"plan_cache_mode": "force_custom_plan", "jit": "off"}
)


def build_engine(
    url: str, *, echo: bool = False, pool_size: int = 10, pre_ping: bool = False
) -> AsyncEngine:
    """Create an async engine configured for the URL's backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, json_deserializer=from_json)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        event.listen(engine.sync_engine, "begin", _sqlite_begin)
        event.listen(engine.sync_engine, "before_cursor_execute", _sqlite_guard)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=pre_ping,
        pool_recycle=1800,
        # pydantic-core's JSON parser: lead pages decode two JSON columns per row, and this
        # is several times faster than the stdlib's.
        json_deserializer=from_json,
        connect_args={"server_settings": dict(PG_SERVER_SETTINGS)},
    )


def to_async_url(url: str) -> str:
    """Accept plain `postgresql://` / `sqlite://` URLs and pick the async driver."""
    if url.startswith(("postgres://", "postgresql://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite://"):
        return "sqlite+aiosqlite://" + url.split("://", 1)[1]
    return url


class Database:
    """An engine plus its session factory."""

    def __init__(
        self, url: str, *, echo: bool = False, pool_size: int = 10, pre_ping: bool = False
    ) -> None:
        self.url = to_async_url(url)
        self.engine = build_engine(self.url, echo=echo, pool_size=pool_size, pre_ping=pre_ping)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def dialect(self) -> str:
        """`sqlite` or `postgresql`."""
        return self.engine.dialect.name

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()


_database: Database | None = None


def get_database(settings: Settings | None = None) -> Database:
    """The process-wide database (created on first use)."""
    global _database
    if _database is None:
        s = settings or get_settings()
        _database = Database(
            s.database_url, echo=s.db_echo, pool_size=s.db_pool_size, pre_ping=s.db_pre_ping
        )
    return _database


def set_database(db: Database | None) -> None:
    """Replace the process-wide database (tests, CLI)."""
    global _database
    _database = db


@asynccontextmanager
async def session_scope(db: Database | None = None) -> AsyncIterator[AsyncSession]:
    """A unit of work outside HTTP (CLI, jobs): commit on success, roll back on error."""
    database = db or get_database()
    async with database.sessionmaker() as session, unit_of_work(session):
        yield session


@asynccontextmanager
async def unit_of_work(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """Commit when the block succeeds; roll back when it raises (unless the error keeps changes)."""
    try:
        yield session
        await session.commit()
    except LeadflowError as exc:
        if exc.keep_changes:
            await session.commit()
        else:
            await session.rollback()
        raise
    except BaseException:
        await session.rollback()
        raise
