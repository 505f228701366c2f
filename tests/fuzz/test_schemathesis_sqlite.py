"""Schemathesis against the app served on SQLite (`schemathesis_run`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.server import Served
from tests.fuzz.schemathesis_run import run_schemathesis


@pytest.mark.parametrize("committed_db_url", ["sqlite"], indirect=True)
async def test_no_input_produces_a_server_error(served: Served, tmp_path: Path) -> None:
    await run_schemathesis(served, tmp_path)
