"""kit/fanout: a committed notification wakes the watching stream through Redis; a rolled-back
one does not, and without Redis streams fall back to polling."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from leadflow.config import Settings
from leadflow.db import migrate
from leadflow.db.engine import Database
from leadflow.kit.fanout import RedisWakeups, Wakeups, build_wakeups, install_publisher
from leadflow.notifications.service import notify, stream_topic
from tests.fixtures.factories import Factory
from tests.fixtures.services import REDIS_URL, require


@pytest.fixture(scope="module")
async def db(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Database]:
    url = f"sqlite+aiosqlite:///{tmp_path_factory.mktemp('fanout') / 'fanout.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    database = Database(url)
    yield database
    await database.dispose()


async def test_commit_wakes_rollback_does_not(db: Database, tmp_path: Path) -> None:
    require("Redis")
    wakeups = RedisWakeups(REDIS_URL, fallback=15)
    install_publisher(REDIS_URL)
    try:
        async with db.sessionmaker() as session:
            factory = Factory(session, Settings(secret_key="s" * 40, data_dir=tmp_path))
            org = await factory.org()
            user = await factory.user(org, "counselor")
        async with wakeups.watch(stream_topic(user.id)) as watch:
            assert wakeups.subscribed
            async with db.sessionmaker() as session:
                await notify(
                    session, organization_id=org.id, user_id=user.id, kind="t", title="Dropped"
                )
                await session.rollback()
            # Nothing was committed, so nothing is published (the commit below proves the
            # path works; this bounded wait only shows no wake-up came first).
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(watch.event.wait(), 0.5)
            async with db.sessionmaker() as session:
                await notify(
                    session, organization_id=org.id, user_id=user.id, kind="t", title="Kept"
                )
                await session.commit()
            await asyncio.wait_for(watch.event.wait(), 10)
    finally:
        install_publisher("")
        await wakeups.aclose()


async def test_without_redis_streams_poll() -> None:
    wakeups = build_wakeups("", poll=0.01)
    assert type(wakeups) is Wakeups
    async with wakeups.watch("notifications:x") as watch:
        await watch.wait(60)  # returns after the poll interval, not the minute


async def test_unreachable_redis_degrades_to_polling() -> None:
    wakeups = RedisWakeups("redis://127.0.0.1:1/0", poll=0.01, fallback=15)
    try:
        async with wakeups.watch("notifications:x") as watch:
            assert not wakeups.subscribed
            await watch.wait(60)  # polls while the subscription is down
    finally:
        await wakeups.aclose()
