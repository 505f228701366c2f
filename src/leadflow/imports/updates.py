"""Applying a file's values to leads that already exist (`on_duplicate="update"`).

An update writes what an API update writes, plus the before-image that undo restores.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from uuid_utils.compat import uuid7

from leadflow.audit.service import diff
from leadflow.imports import repository
from leadflow.imports.rows import ImportContext
from leadflow.kit.clock import utcnow
from leadflow.kit.context import current_request
from leadflow.kit.security import redact
from leadflow.models.audit_log import AuditLog
from leadflow.models.import_batch import ImportUpdate
from leadflow.models.lead_history import LeadStatusChange

_UPDATABLE = (
    "first_name",
    "last_name",
    "full_name",
    "email",
    "phone",
    "company",
    "channel",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "status",
    "tags",
    "disg_type",
    "notes",
    "custom",
    "score",
    "needs_action",
    "next_action_at",
    "next_action_description",
    "last_contacted_at",
    "analyzed_at",
    "search_text",
)


_DERIVED = ("full_name", "search_text")
# Every updated lead writes all of these (unchanged ones with their current value), so the
# whole chunk is one executemany however the rows differ.
_WRITTEN = (*_UPDATABLE, "sla_met_at", "version", "updated_at")
_AUDIT_EXCLUDE = frozenset({"search_text", "updated_at", "version"})
DATETIME_FIELDS = frozenset({"next_action_at", "last_contacted_at", "analyzed_at", "sla_met_at"})


def _plain(value: Any) -> Any:
    """A JSON-ready copy (datetimes as ISO text, ids as strings), as audit rows store them."""
    return json.loads(
        json.dumps(value, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
    )


async def apply_updates(
    session: AsyncSession,
    ctx: ImportContext,
    batch_id: uuid.UUID | None,
    updates: list[tuple[uuid.UUID, dict[str, Any]]],
) -> int:
    """Apply the file's values to existing leads in the importer's scope; how many changed.

    Writes what an API update writes (audit row per changed lead, status history when the
    status moves, the SLA response when a lead leaves the first stage) plus the before-image
    for undo, each as one set-based statement for the whole chunk.
    """
    if not updates:
        return 0
    now = utcnow()
    # Locked and re-checked against the scope in this transaction: a lead that left the
    # scope or was deleted since it was matched is not touched.
    current = await repository.leads_for_update(session, ctx.actor, [i for i, _ in updates])
    state: dict[uuid.UUID, dict[str, Any]] = {}
    for lead_id, rec in updates:
        if lead_id not in current:
            continue
        row = state.setdefault(lead_id, dict(current[lead_id]))
        for key in _UPDATABLE:
            value = rec.get(key)
            if key in _DERIVED or value in (None, "", []):
                continue
            if key == "status" and rec.get("_keep_status"):
                continue
            row[key] = {**(row["custom"] or {}), **value} if key == "custom" else value
    if not state:
        return 0
    actor = ctx.actor
    request = current_request()
    leads: list[dict[str, Any]] = []
    befores: list[dict[str, Any]] = []
    moves: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    known = (
        await repository.updated_lead_ids(session, batch_id, list(state))
        if batch_id is not None
        else set()
    )
    for lead_id, row in state.items():
        old = current[lead_id]
        row["full_name"] = " ".join(p for p in (row["first_name"], row["last_name"]) if p)
        parts = (row["full_name"], row["email"], row["phone"], row["company"])
        row["search_text"] = " ".join(p for p in parts if p).lower()
        if row["status"] != old["status"]:
            moves.append(
                {
                    "id": uuid7(),
                    "organization_id": ctx.org_id,
                    "lead_id": lead_id,
                    "actor_user_id": actor.user_id,
                    "from_status": old["status"],
                    "to_status": row["status"],
                    "reason": "import",
                    "created_at": now,
                }
            )
            if (
                old["status"] == ctx.first_stage
                and old["sla_deadline"] is not None
                and old["sla_met_at"] is None
            ):
                row["sla_met_at"] = now  # leaving the first stage counts as the response
        row["version"] = (old["version"] or 1) + 1
        row["updated_at"] = now
        leads.append(row)
        changed = [k for k in _WRITTEN if k not in ("version", "updated_at") and row[k] != old[k]]
        if batch_id is not None and lead_id not in known:
            # The first before-image of a lead in this batch is the one undo restores.
            befores.append(
                {
                    "batch_id": batch_id,
                    "lead_id": lead_id,
                    "before": _plain({k: old[k] for k in changed}),
                }
            )
        b, a = diff(
            _plain({k: old[k] for k in changed if k not in _AUDIT_EXCLUDE}),
            _plain({k: row[k] for k in changed if k not in _AUDIT_EXCLUDE}),
        )
        if a:
            audits.append(
                {
                    "id": uuid7(),
                    "organization_id": ctx.org_id,
                    "actor_user_id": actor.user_id,
                    "actor_api_key_id": actor.api_key_id,
                    "actor_label": actor.label,
                    "action": "lead.update",
                    "resource_type": "lead",
                    "resource_id": str(lead_id),
                    "before": redact(b),
                    "after": redact(a),
                    "ip": request.ip,
                    "request_id": request.request_id,
                    "created_at": now,
                }
            )
    await repository.update_leads(session, _WRITTEN, leads)
    await repository.insert_rows(session, ImportUpdate, befores)
    await repository.insert_rows(session, LeadStatusChange, moves)
    await repository.insert_rows(session, AuditLog, audits)
    return len(leads)
