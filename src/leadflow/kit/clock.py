"""The one source of "now". Tests freeze it instead of sleeping."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta


class Clock:
    """Aware-UTC clock that can be frozen and advanced."""

    def __init__(self) -> None:
        self._frozen: datetime | None = None

    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        return self._frozen if self._frozen is not None else datetime.now(UTC)

    def freeze(self, at: datetime) -> None:
        """Stop the clock at `at` (must be aware)."""
        if at.tzinfo is None:
            raise ValueError("frozen time must be timezone-aware")
        self._frozen = at.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        """Move a frozen clock forward."""
        if self._frozen is None:
            raise RuntimeError("clock is not frozen")
        self._frozen += delta

    def unfreeze(self) -> None:
        """Return to real time."""
        self._frozen = None

    @contextmanager
    def frozen(self, at: datetime) -> Iterator[Clock]:
        """Freeze for the duration of a `with` block."""
        self.freeze(at)
        try:
            yield self
        finally:
            self.unfreeze()


clock = Clock()


def utcnow() -> datetime:
    """Shortcut for `clock.now()`."""
    return clock.now()
