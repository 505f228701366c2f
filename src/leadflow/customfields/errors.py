"""Errors of custom field definitions."""

from __future__ import annotations

from leadflow.exceptions import Conflict


class FieldExists(Conflict):
    """A custom field with this key already exists."""

    code = "field_exists"
