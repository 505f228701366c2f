"""Plain records (column dicts) seen as objects, for code written against model attributes."""

from __future__ import annotations

from typing import Any


class RecordView:
    """Attribute access over a record dict (missing keys read as None); assigning an
    attribute writes the key, so model code such as `derive(lead)` works on a record."""

    __slots__ = ("_rec",)

    def __init__(self, rec: dict[str, Any]) -> None:
        object.__setattr__(self, "_rec", rec)

    def __getattr__(self, name: str) -> Any:
        return self._rec.get(name)

    def __setattr__(self, name: str, value: Any) -> None:
        self._rec[name] = value

    @property
    def record(self) -> dict[str, Any]:
        """The underlying dict."""
        return self._rec
