"""Alembic environment: async engine, batch mode on SQLite, URL from settings or config."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection

import leadflow.models  # noqa: F401
from leadflow.config import get_settings
from leadflow.db.base import Base
from leadflow.db.engine import build_engine, to_async_url

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.get_main_option("sqlalchemy.url") or get_settings().database_url
    return to_async_url(url)


def _include_object(obj: object, name: str | None, type_: str, reflected: bool, _: object) -> bool:
    # Indexes of one engine (PostgreSQL's trigram and GIN, pgx_*; SQLite's sqx_*) are created
    # by hand in migrations. Only a reflected sqx_* is ignored: one declared in the models
    # would be compared as usual.
    if type_ != "index" or not name:
        return True
    return not (name.startswith("pgx_") or (reflected and name.startswith("sqx_")))


def _configure(connection: Connection | None = None) -> None:
    is_sqlite = _url().startswith("sqlite")
    kwargs = dict(
        target_metadata=target_metadata,
        render_as_batch=is_sqlite,
        compare_type=True,
        include_object=_include_object,
    )
    if connection is None:
        context.configure(url=_url(), literal_binds=True, **kwargs)  # type: ignore[arg-type]
    else:
        context.configure(connection=connection, **kwargs)  # type: ignore[arg-type]


def _run_sync(connection: Connection) -> None:
    _configure(connection)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = build_engine(_url())
    async with engine.connect() as conn:
        await conn.run_sync(_run_sync)
        await conn.commit()
    await engine.dispose()


if context.is_offline_mode():
    _configure()
    with context.begin_transaction():
        context.run_migrations()
else:
    existing = config.attributes.get("connection")
    if existing is not None:
        _run_sync(existing)
    else:
        asyncio.run(_run_async())
