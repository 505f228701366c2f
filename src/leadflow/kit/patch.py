"""Partial updates: a field sent as `null` is refused unless clearing it means something."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, model_validator


class PatchModel(BaseModel):
    """Base of PATCH bodies. Fields named in `not_null` may be left out but not sent as null:
    their columns always hold a value, and `null` would otherwise reach the database."""

    not_null: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="before")
    @classmethod
    def _refuse_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            nulls = sorted(k for k in cls.not_null if k in data and data[k] is None)
            if nulls:
                raise ValueError(f"cannot be null: {', '.join(nulls)} (leave the field out)")
        return data
