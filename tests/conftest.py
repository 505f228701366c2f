"""Fixtures: every DB test runs on SQLite and on PostgreSQL, schema from migrations,
each test inside a transaction that is rolled back."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from leadflow.app import create_app, init_state
from leadflow.config import Settings
from leadflow.db import engine as engine_module
from leadflow.db import migrate
from leadflow.db.engine import Database, unit_of_work
from leadflow.db.session import get_session, get_session_factory
from leadflow.kit.clock import clock
from leadflow.worker.jobs import JobContext, RecordingQueue, set_queue
from tests.fixtures.factories import Factory, make_settings
from tests.fixtures.services import IN_CI, POSTGRES_UP, POSTGRES_URL, REDIS_UP, require

ENGINES = ["sqlite", "postgresql"]
# A GET that writes would fail on SQLite only under contention: make it fail every time here.
engine_module.STRICT_READ_ONLY = True


def pytest_sessionstart(session: pytest.Session) -> None:
    """In CI, PostgreSQL and Redis are required: fail the run instead of skipping."""
    if IN_CI:
        missing = [n for n, up in (("PostgreSQL", POSTGRES_UP), ("Redis", REDIS_UP)) if not up]
        if missing:
            raise pytest.UsageError(f"CI=true but unreachable: {', '.join(missing)}")


async def _create_pg_database(name: str) -> str:
    base = POSTGRES_URL.replace("+asyncpg", "")
    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    root = POSTGRES_URL.rsplit("/", 1)[0]
    return f"{root}/{name}"


async def _drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL.replace("+asyncpg", ""))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def tmp_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A temporary folder for the whole run."""
    return tmp_path_factory.mktemp("leadflow")


@pytest.fixture(scope="session", params=ENGINES)
async def database(request: pytest.FixtureRequest, tmp_root: Path) -> AsyncIterator[Database]:
    """A migrated database per engine for the whole run."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_root / 'test.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        db = Database(url, pool_size=5)
        yield db
        await db.dispose()
        return
    require("PostgreSQL")
    async with migrated_pg_database(f"leadflow_test_{os.getpid()}") as url:
        db = Database(url, pool_size=5)
        yield db
        await db.dispose()


@asynccontextmanager
async def migrated_pg_database(name: str) -> AsyncIterator[str]:
    """A new PostgreSQL database `name`, migrated, dropped afterwards; yields its URL."""
    url = await _create_pg_database(name)
    try:
        # Alembic's env runs its own event loop, so migrate from a worker thread.
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
    finally:
        await _drop_pg_database(name)


@pytest.fixture
async def committed_pg() -> AsyncIterator[Database]:
    """A PostgreSQL database of its own whose transactions really commit (no per-test
    rollback): for concurrency and for requests that must run exactly as in production."""
    require("PostgreSQL")
    async with migrated_pg_database(f"leadflow_committed_{os.getpid()}") as url:
        db = Database(url, pool_size=10)
        yield db
        await db.dispose()


@pytest.fixture(params=ENGINES)
async def committed_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A migrated database of the test's own on each engine, whose transactions really
    commit (served processes, concurrent sessions); yields its URL."""
    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'committed.db'}"
        await asyncio.to_thread(migrate.upgrade, url)
        yield url
        return
    require("PostgreSQL")
    async with migrated_pg_database(f"leadflow_own_{os.getpid()}") as url:
        yield url


@pytest.fixture
async def committed_db(committed_db_url: str) -> AsyncIterator[Database]:
    """`committed_db_url` as a Database."""
    db = Database(committed_db_url, pool_size=5)
    yield db
    await db.dispose()


@pytest.fixture
def dialect(database: Database) -> str:
    """`sqlite` or `postgresql`."""
    return database.dialect


@pytest.fixture
def settings(tmp_root: Path, database: Database) -> Settings:
    """Settings for the app under test."""
    return make_settings(database.url, tmp_root / "data")


@pytest.fixture
async def conn(database: Database) -> AsyncIterator[AsyncConnection]:
    """One connection per test inside a transaction rolled back at the end."""
    async with database.engine.connect() as connection:
        trans = await connection.begin()
        try:
            yield connection
        finally:
            await trans.rollback()


def _session(conn: AsyncConnection) -> AsyncSession:
    # Commits inside the test become SAVEPOINT releases; the outer rollback discards all.
    return AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
async def session(conn: AsyncConnection) -> AsyncIterator[AsyncSession]:
    """A session on the test transaction (for factories and service tests)."""
    s = _session(conn)
    try:
        yield s
    finally:
        await s.close()


@pytest.fixture
def factory(session: AsyncSession, settings: Settings) -> Factory:
    """Row factories."""
    return Factory(session, settings)


# One built application per engine for the run: building the routes' dependency graphs is
# most of a short test's time, so each test gets the built one with fresh state instead.
_APPS: dict[str, FastAPI] = {}  # by settings (the database URL among them)


@pytest.fixture
def app(settings: Settings, database: Database, conn: AsyncConnection) -> FastAPI:
    """The application, with fresh state and request sessions bound to the test transaction.

    A test that changes the routes themselves builds its own with `create_app`.
    """
    # Settings read while building (CORS, trusted proxies) differ between some modules.
    key = repr([(k, v.get_secret_value() if isinstance(v, SecretStr) else v) for k, v in settings])
    application = _APPS.get(key)
    if application is None:
        application = _APPS[key] = create_app(settings, database=database)
    else:
        init_state(application, settings, database)
        application.dependency_overrides.clear()

    async def test_session() -> AsyncIterator[AsyncSession]:
        async with _session(conn) as s, unit_of_work(s):
            yield s

    application.dependency_overrides[get_session] = test_session
    # Streamed responses (exports) open their own sessions: keep them on the test transaction.
    application.dependency_overrides[get_session_factory] = lambda: lambda: _session(conn)
    return application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """HTTP client speaking to the app in-process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture(autouse=True)
def queue() -> Iterator[RecordingQueue]:
    """Jobs enqueued after commit land here; tests run them with `jobs`."""
    q = RecordingQueue()
    set_queue(q)
    yield q
    set_queue(RecordingQueue())


@pytest.fixture
def jobs(conn: AsyncConnection, app: FastAPI) -> JobContext:
    """Job context whose sessions join the test transaction (run jobs in-process)."""
    return JobContext(settings=app.state.settings, session_factory=lambda: _session(conn))


@pytest.fixture(autouse=True)
def _real_clock() -> Iterator[None]:
    """Every test starts and ends with an unfrozen clock."""
    clock.unfreeze()
    yield
    clock.unfreeze()


def new_uuid() -> str:
    """A random id that exists nowhere."""
    return str(uuid.uuid4())
