"""SQLite giving up on its write lock after the busy timeout (an overload: more writers queued
than it serves in time) answers 503 problem+json with Retry-After, not 500."""

from __future__ import annotations

import sqlite3
from typing import Any

import httpx
import pytest
from sqlalchemy import exc as sa_exc

from leadflow.kit.problems import database_busy
from leadflow.leads import service as leads
from tests.fixtures.factories import Factory


def _locked() -> sa_exc.OperationalError:
    return sa_exc.OperationalError("BEGIN", {}, sqlite3.OperationalError("database is locked"))


def test_only_a_lock_timeout_counts_as_busy() -> None:
    assert database_busy(_locked())
    wrapped = RuntimeError("while listing")
    wrapped.__cause__ = _locked()
    assert database_busy(wrapped)
    other = sa_exc.OperationalError("SELECT", {}, sqlite3.OperationalError("no such table: x"))
    assert not database_busy(other)
    assert not database_busy(ValueError("locked"))


async def test_a_busy_database_is_a_503_problem(
    client: httpx.AsyncClient, factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    org = await factory.org()
    admin = await factory.member(org)

    async def busy(*_: Any, **__: Any) -> Any:
        raise _locked()

    monkeypatch.setattr(leads, "list_leads", busy)
    r = await client.get("/api/v1/leads", headers=admin.headers)
    assert r.status_code == 503, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.headers["retry-after"] == "5"
    assert r.json()["code"] == "database_unavailable"
    assert "busy" in r.json()["detail"]
