"""Custom field definition requests and responses."""

from __future__ import annotations

import uuid
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FieldType(StrEnum):
    """Value types a custom field can have."""

    TEXT = "text"
    NUMBER = "number"
    DATE = "date"
    BOOLEAN = "boolean"
    SELECT = "select"
    MULTISELECT = "multiselect"


class FieldCreate(BaseModel):
    """A new custom field."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    key: str = Field(min_length=1, max_length=60, pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1, max_length=120)
    type: FieldType
    options: list[str] = Field(default_factory=list)
    required: bool = False

    @model_validator(mode="after")
    def _options(self) -> FieldCreate:
        needs = self.type in (FieldType.SELECT, FieldType.MULTISELECT)
        if needs and not self.options:
            raise ValueError("select and multiselect fields need options")
        if not needs and self.options:
            raise ValueError("only select and multiselect fields take options")
        return self


class FieldUpdate(BaseModel):
    """Changes to a custom field (key and type are fixed)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    label: str | None = Field(default=None, min_length=1, max_length=120)
    options: list[str] | None = None
    required: bool | None = None


class FieldRead(BaseModel):
    """A custom field definition."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    key: str
    label: str
    type: str
    options: list[Any]
    required: bool
