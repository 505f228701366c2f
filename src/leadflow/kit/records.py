"""Plain records (column dicts) seen as objects, for code written against model attributes."""

from __future__ import annotations

from typing import Any


class RecordView:
    """Attribute access over a record dict (missing keys read as None), e.g. for conditions."""

    def __init__(self, rec: dict[str, Any]) -> None:
        self._rec = rec

    def __getattr__(self, name: str) -> Any:
        return self._rec.get(name)
