"""The integration types and what each needs: credential and config models, a connection test,
the hosts it talks to, and the process-wide default it replaces.

A domain registers its type (`leadflow.notifications.integration` registers `smtp`, and so on),
so this package depends on no domain; `leadflow.wiring` imports the registrations.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings

IntegrationType = Literal["smtp", "openai", "twilio", "webhook"]
TYPES: tuple[IntegrationType, ...] = ("smtp", "openai", "twilio", "webhook")


class CheckFailed(Exception):
    """A connection test failed; the message is shown to the admin (no secrets in it)."""


@dataclass(frozen=True)
class Summary:
    """How an integration without credentials (webhooks) reports itself in the list."""

    status: str
    config: dict[str, Any]
    last_sync: datetime | None


@dataclass(frozen=True)
class Spec:
    """One integration type.

    `check(credentials, config, settings)` tests a connection and returns facts worth showing
    (an account status, the models found); it raises `CheckFailed`. `hosts(config)` are the
    (host, port) pairs it connects to, checked against private addresses first.
    `process_default(settings)` is the non-secret config of the process-wide setting the
    integration replaces, or None when that is not set. A type with `summary` instead of
    credentials is listed but not connected here.
    """

    type: IntegrationType
    name: str
    credentials: builtins.type[BaseModel] | None = None
    config: builtins.type[BaseModel] | None = None
    check: Callable[[Any, Any, Settings], Awaitable[dict[str, Any]]] | None = None
    hosts: Callable[[Any], list[tuple[str, int]]] | None = None
    process_default: Callable[[Settings], dict[str, Any] | None] | None = None
    summary: Callable[[AsyncSession, uuid.UUID], Awaitable[Summary]] | None = None


_SPECS: dict[str, Spec] = {}


def register(spec: Spec) -> Spec:
    """Make `spec` known (idempotent per type)."""
    _SPECS[spec.type] = spec
    return spec


def get(type_: str) -> Spec | None:
    """The spec of `type_`, if registered."""
    return _SPECS.get(type_)


def specs() -> list[Spec]:
    """Registered specs in the order of `TYPES`."""
    return [_SPECS[t] for t in TYPES if t in _SPECS]
