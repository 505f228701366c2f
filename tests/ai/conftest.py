"""Fixtures of the AI tests: a local server speaking the OpenAI Responses API."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ai.fake_openai import FakeOpenAI


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    """A running fake OpenAI server on 127.0.0.1 (stopped after the test)."""
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()
