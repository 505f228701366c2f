"""Custom fields: definitions and validation of a lead's `custom` values against them."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import (
    delete_recorded,
    record_create,
    record_update,
    snapshot,
)
from leadflow.authz.actor import Actor
from leadflow.customfields import repository
from leadflow.customfields.errors import FieldExists
from leadflow.customfields.schemas import FieldCreate, FieldType, FieldUpdate
from leadflow.exceptions import NotFound, ValidationFailed
from leadflow.models.custom_field import CustomFieldDefinition


async def list_fields(session: AsyncSession, org_id: uuid.UUID) -> list[CustomFieldDefinition]:
    """Definitions of the organisation, in display order."""
    return await repository.list_fields(session, org_id)


async def _get(session: AsyncSession, actor: Actor, field_id: uuid.UUID) -> CustomFieldDefinition:
    row = await repository.get(session, actor, field_id)
    if row is None:
        raise NotFound("Custom field not found")
    return row


async def create_field(
    session: AsyncSession, actor: Actor, data: FieldCreate
) -> CustomFieldDefinition:
    """Define a new field; keys are unique per organisation."""
    existing = await list_fields(session, actor.organization_id)
    if any(f.key == data.key for f in existing):
        raise FieldExists(f"A custom field '{data.key}' exists")
    row = CustomFieldDefinition(
        organization_id=actor.organization_id,
        key=data.key,
        label=data.label,
        type=data.type.value,
        options=data.options,
        required=data.required,
        position=len(existing),
    )
    session.add(row)
    await session.flush()
    await record_create(session, actor, row, "custom_field.create", "custom_field")
    return row


async def update_field(
    session: AsyncSession, actor: Actor, field_id: uuid.UUID, data: FieldUpdate
) -> CustomFieldDefinition:
    """Relabel a field, change its options or whether it is required."""
    row = await _get(session, actor, field_id)
    before = snapshot(row)
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    if "options" in changes and row.type not in (FieldType.SELECT, FieldType.MULTISELECT):
        raise ValidationFailed("only select and multiselect fields take options", field="options")
    for key, value in changes.items():
        setattr(row, key, value)
    await session.flush()
    await record_update(session, actor, row, before, "custom_field.update", "custom_field")
    return row


async def delete_field(session: AsyncSession, actor: Actor, field_id: uuid.UUID) -> None:
    """Remove a definition (values already on leads are kept but no longer validated)."""
    row = await _get(session, actor, field_id)
    await delete_recorded(session, actor, row, "custom_field.delete", "custom_field")


def _coerce(defn: CustomFieldDefinition, value: Any) -> Any:
    t = defn.type
    if value is None or value == "":
        return None
    if t == FieldType.TEXT:
        if not isinstance(value, str | int | float):
            raise ValueError("must be text")
        return str(value)[:2000]
    if t == FieldType.NUMBER:
        if isinstance(value, bool):
            raise ValueError("must be a number")
        try:
            num = float(str(value).replace(",", ".")) if isinstance(value, str) else float(value)
        except (TypeError, ValueError):
            raise ValueError("must be a number") from None
        except OverflowError:  # an integer of more than ~308 digits
            raise ValueError("must be a finite number") from None
        if not math.isfinite(num):
            # "1e999", "nan": a float, but no JSON number (PostgreSQL's jsonb refuses them).
            raise ValueError("must be a finite number")
        return int(num) if num.is_integer() else num
    if t == FieldType.DATE:
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise ValueError("must be a date (YYYY-MM-DD)") from None
    if t == FieldType.BOOLEAN:
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in ("true", "1", "yes", "ja"):
            return True
        if text in ("false", "0", "no", "nein"):
            return False
        raise ValueError("must be true or false")
    if t == FieldType.SELECT:
        if str(value) not in defn.options:
            raise ValueError(f"must be one of {', '.join(map(str, defn.options))}")
        return str(value)
    # Text lists are split on `,` or `;` (the lead export joins lists with `;`).
    values = (
        value
        if isinstance(value, list)
        else [v.strip() for v in re.split(r"[,;]", str(value)) if v.strip()]
    )
    bad = [v for v in values if str(v) not in defn.options]
    if bad:
        raise ValueError(f"unknown options {bad}; allowed: {', '.join(map(str, defn.options))}")
    return [str(v) for v in values]


def validate_values(
    defs: Sequence[CustomFieldDefinition], values: Mapping[str, Any], *, require_all: bool
) -> dict[str, Any]:
    """Coerced values, or ValidationFailed listing every problem under `custom.<key>`."""
    by_key = {d.key: d for d in defs}
    errors: list[dict[str, Any]] = []
    out: dict[str, Any] = {}
    for key, value in values.items():
        defn = by_key.get(key)
        if defn is None:
            errors.append({"loc": ["body", "custom", key], "msg": "unknown custom field"})
            continue
        try:
            coerced = _coerce(defn, value)
        except ValueError as exc:
            errors.append({"loc": ["body", "custom", key], "msg": str(exc)})
            continue
        if coerced is not None:
            out[key] = coerced
    if require_all:
        for d in defs:
            if d.required and out.get(d.key) in (None, [], ""):
                errors.append({"loc": ["body", "custom", d.key], "msg": "required"})
    if errors:
        raise ValidationFailed("Invalid custom field values", errors=errors)
    return out
