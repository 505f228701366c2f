"""Integrations: list, connect (validate, test, encrypt, store), disconnect, and read an
organisation's connected credentials for the domain that uses them.

Connecting runs in three steps so that no database connection waits on the outside service:
`prepare` validates the input (no I/O), `check_connection` talks to the service (no session
open), and `save` stores the result in a short transaction.
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.audit.service import record
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.exceptions import ValidationFailed
from leadflow.integrations import registry, repository
from leadflow.integrations.errors import (
    IntegrationConnectionFailed,
    IntegrationCredentialsUnreadable,
    IntegrationNotConnectable,
    IntegrationNotConnected,
    IntegrationTargetForbidden,
)
from leadflow.integrations.registry import CheckFailed, Spec
from leadflow.integrations.schemas import ConnectIn, ConnectOut, IntegrationRead
from leadflow.kit import crypto
from leadflow.kit.clock import utcnow
from leadflow.kit.outbound import TargetRefused, check_target
from leadflow.models.integration import Integration

log = logging.getLogger("leadflow.integrations")


@dataclass(frozen=True)
class Connected:
    """An organisation's connected integration, decrypted for use."""

    type: str
    credentials: dict[str, Any]
    config: dict[str, Any]


@dataclass(frozen=True)
class Prepared:
    """A validated connect request."""

    spec: Spec
    credentials: BaseModel
    config: BaseModel


def _spec(type_: str) -> Spec:
    spec = registry.get(type_)
    if spec is None or spec.credentials is None or spec.config is None or spec.check is None:
        raise IntegrationNotConnectable(
            f"The {type_} integration is not connected with credentials"
            + (
                "; create endpoints at /api/v1/admin/integrations/webhooks"
                if type_ == "webhook"
                else ""
            )
        )
    return spec


def _validated(model: type[BaseModel], data: dict[str, Any], where: str) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"loc": ["body", where, *map(str, e["loc"])], "msg": e["msg"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        raise ValidationFailed(f"Invalid {where}: {errors[0]['msg']}", errors=errors) from None


def prepare(type_: str, body: ConnectIn) -> Prepared:
    """Check the request against the type's models (nothing is contacted yet)."""
    spec = _spec(type_)
    assert spec.credentials is not None and spec.config is not None
    return Prepared(
        spec,
        _validated(spec.credentials, body.credentials, "credentials"),
        _validated(spec.config, body.config, "config"),
    )


async def check_connection(settings: Settings, prepared: Prepared) -> dict[str, Any]:
    """Test the connection (no database session open): the hosts first against private
    addresses, then the type's own check. 422 with the reason when it fails."""
    spec = prepared.spec
    for host, port in spec.hosts(prepared.config) if spec.hosts else []:
        try:
            await check_target(host, port, allow_private=settings.integrations_allow_private)
        except TargetRefused as exc:
            raise IntegrationTargetForbidden(str(exc)) from None
    assert spec.check is not None
    try:
        return await spec.check(prepared.credentials, prepared.config, settings)
    except TargetRefused as exc:
        raise IntegrationTargetForbidden(str(exc)) from None
    except CheckFailed as exc:
        raise IntegrationConnectionFailed(f"{spec.name}: {exc}") from None


async def save(
    session: AsyncSession,
    settings: Settings,
    actor: Actor,
    prepared: Prepared,
    found: dict[str, Any],
) -> ConnectOut:
    """Store the tested integration (replacing an earlier one), credentials encrypted."""
    spec = prepared.spec
    now = utcnow()
    config = prepared.config.model_dump(mode="json")
    token = crypto.encrypt(settings, json.dumps(prepared.credentials.model_dump(mode="json")))
    row = await repository.get(session, actor.organization_id, spec.type, for_update=True)
    before = None if row is None else {"config": row.config, "last_sync": row.last_sync}
    if row is None:
        row = Integration(organization_id=actor.organization_id, type=spec.type)
        session.add(row)
    row.credentials = token
    row.config = config
    row.connected_by = actor.user_id
    row.last_sync = now
    await session.flush()
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="integration.connect",
        resource_type="integration",
        resource_id=row.id,
        before=before,
        # Never the credentials: only which fields were given.
        after={
            "type": spec.type,
            "config": config,
            "credential_fields": sorted(
                k for k, v in prepared.credentials.model_dump().items() if v
            ),
        },
    )
    return ConnectOut(
        type=spec.type,
        name=spec.name,
        status="connected",
        source="organization",
        config=config,
        last_sync=now,
        check=found,
    )


async def disconnect(session: AsyncSession, actor: Actor, type_: str) -> None:
    """Remove the organisation's integration; the process-wide setting applies again."""
    spec = _spec(type_)
    row = await repository.get(session, actor.organization_id, spec.type, for_update=True)
    if row is None:
        raise IntegrationNotConnected(f"The {spec.name} integration is not connected")
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="integration.disconnect",
        resource_type="integration",
        resource_id=row.id,
        before={"type": row.type, "config": row.config},
    )
    await session.delete(row)
    await session.flush()


async def list_integrations(
    session: AsyncSession, settings: Settings, actor: Actor
) -> list[IntegrationRead]:
    """Every integration type with its state in the actor's organisation."""
    rows = {r.type: r for r in await repository.for_org(session, actor.organization_id)}
    out: list[IntegrationRead] = []
    for spec in registry.specs():
        if spec.summary is not None:
            s = await spec.summary(session, actor.organization_id)
            connected = s.status == "connected"
            out.append(
                IntegrationRead(
                    type=spec.type,
                    name=spec.name,
                    status="connected" if connected else "not_connected",
                    source="organization" if connected else None,
                    config=s.config,
                    last_sync=s.last_sync,
                )
            )
            continue
        row = rows.get(spec.type)
        if row is not None:
            status: Literal["connected", "error"] = "connected"
            try:
                crypto.decrypt(settings, row.credentials)
            except crypto.SecretUnreadable:
                status = "error"
            out.append(
                IntegrationRead(
                    type=spec.type,
                    name=spec.name,
                    status=status,
                    source="organization",
                    config=row.config,
                    last_sync=row.last_sync,
                )
            )
            continue
        default = spec.process_default(settings) if spec.process_default else None
        out.append(
            IntegrationRead(
                type=spec.type,
                name=spec.name,
                status="not_connected",
                source="process" if default is not None else None,
                config=default or {},
                last_sync=None,
            )
        )
    return out


async def connected(
    session: AsyncSession, settings: Settings, organization_id: uuid.UUID, type_: str
) -> Connected | None:
    """The organisation's connected integration of `type_`, decrypted; None when it has none
    (the caller then uses the process-wide setting). 503 when the stored credentials cannot
    be decrypted: falling back to the server's own account would be a surprise."""
    row = await repository.get(session, organization_id, type_)
    if row is None:
        return None
    try:
        credentials = json.loads(crypto.decrypt(settings, row.credentials))
    except crypto.SecretUnreadable as exc:
        log.error(
            "integration credentials unreadable",
            extra={"organization_id": str(organization_id), "type": type_},
        )
        raise IntegrationCredentialsUnreadable(
            f"The organisation's {type_} credentials cannot be decrypted; reconnect it or "
            "set LEADFLOW_PREVIOUS_SECRET_KEYS"
        ) from exc
    return Connected(type_, credentials, dict(row.config))
