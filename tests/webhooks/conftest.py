"""Fixtures of the webhook tests: a real receiver, settings that let it be on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from leadflow.config import Settings
from leadflow.db.engine import Database
from leadflow.kit.clock import clock
from tests.fixtures.factories import make_settings
from tests.webhooks.receiver import Receiver

API = "/api/v1/admin/integrations/webhooks"
T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
ALL_LEAD_EVENTS = [
    "lead.created",
    "lead.updated",
    "lead.status_changed",
    "lead.assigned",
    "lead.deleted",
    "lead.merged",
]


@pytest.fixture
def settings(tmp_root: Path, database: Database) -> Settings:
    """The test settings with private targets allowed (the receiver is on 127.0.0.1)."""
    return make_settings(
        database.url,
        tmp_root / "data",
        webhooks_allow_private=True,
        integrations_allow_private=True,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A running receiver (stopped after the test)."""
    rx = Receiver().start()
    try:
        yield rx
    finally:
        rx.stop()


@pytest.fixture
def frozen() -> Iterator[datetime]:
    """The clock frozen at T0 (a Tuesday, 10:00 in Berlin)."""
    clock.freeze(T0)
    yield T0


async def subscribe(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    receiver: Receiver,
    events: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """Create an endpoint for `receiver` and give the receiver its secret."""
    r = await client.post(
        API,
        headers=headers,
        json={"events": events or ALL_LEAD_EVENTS, "endpoint_url": receiver.url, **extra},
    )
    assert r.status_code == 201, r.text
    data: dict[str, Any] = r.json()
    receiver.secret = data["secret"]
    return data
