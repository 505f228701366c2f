"""The app served for schemathesis, on a fresh, migrated database of each engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.server import Served, serve


@pytest.fixture
def served(committed_db_url: str, tmp_path: Path) -> Iterator[Served]:
    """The app served on a fresh, migrated database of each engine."""
    settings = {"access_token_minutes": "120", "register_per_hour": "1000"}
    with serve(committed_db_url, tmp_path, **settings) as s:
        yield s
