"""Many leads at once — a bulk action, an import chunk, an import undo — with the work of
the leads service done set-based: however many leads, each kind of row (leads, status
history, assignment history, audit) is one statement and each event is published once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.assignment.service import RulePicker
from leadflow.audit.service import Entry, diff, record_many
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.db.types import WireIds, new_wire_id
from leadflow.exceptions import ValidationFailed
from leadflow.kit import events
from leadflow.kit.clock import utcnow
from leadflow.kit.records import RecordView
from leadflow.leads import repository
from leadflow.leads.effects import derive_record
from leadflow.leads.errors import BulkTooLarge
from leadflow.leads.events import (
    Assignment,
    Change,
    LeadsAssigned,
    LeadsCreated,
    LeadsDeleted,
    LeadsResponded,
    LeadsStatusChanged,
    LeadsUpdated,
    Move,
)
from leadflow.leads.repository import WRITABLE
from leadflow.leads.schemas import BulkIn, BulkOut
from leadflow.models.lead import Lead, reached_with
from leadflow.pipeline import service as pipeline
from leadflow.users import repository as users

_BULK_PERMISSION = {"assign": "leads:assign", "delete": "leads:delete"}


async def apply_action(
    session: AsyncSession, actor: Actor, settings: Settings, data: BulkIn
) -> BulkOut:
    """Apply one action to many leads in scope, set-based: one read, one write per kind of
    row (leads, history, audit) and one event, however many leads."""
    permission = _BULK_PERMISSION.get(data.action, "leads:write")
    actor.require(permission)
    if (data.ids is None) == (data.filter is None):
        raise ValidationFailed("Give either ids or filter", field="ids")
    cap = settings.bulk_max_leads
    if data.ids is not None:
        ids = list(dict.fromkeys(data.ids))
    else:
        assert data.filter is not None
        ids = await repository.select_ids(session, actor, data.filter, cap + 1)
        if len(ids) > cap:
            raise BulkTooLarge(f"The filter matches more than {cap} leads; narrow it down")
    value = await _bulk_value(session, actor, data)
    now, action = utcnow(), data.action
    if action == "delete":
        deleted = await delete_where(
            session,
            actor,
            Lead.id.in_(ids),
            now=now,
            reason="bulk",
            audit_action="lead.bulk_delete",
        )
        return BulkOut(matched=len(deleted), updated=len(deleted))

    def change(row: dict[str, Any]) -> dict[str, Any]:
        if action == "assign":
            return {"assignee_id": value}
        if action == "status":
            return {"status": value}
        tags = list(row["tags"] or [])
        if action == "tag_add":
            return {"tags": tags if value in tags else [*tags, value]}
        return {"tags": [t for t in tags if t != value]}

    result = await update_records(
        session,
        actor,
        [(i, change) for i in ids],
        now=now,
        reason="bulk",
        fill=False,
        audit_action=f"lead.bulk_{action}",
        settings=settings,
        writable=(*WRITABLE, "assignee_id"),
    )
    return BulkOut(matched=result.matched, updated=len(result.updated))


async def _bulk_value(session: AsyncSession, actor: Actor, data: BulkIn) -> Any:
    v = data.value
    if data.action == "assign":
        if v is None:
            return None
        try:
            assignee = uuid.UUID(str(v))
        except ValueError:
            raise ValidationFailed("value must be a user id", field="value") from None
        if not await users.is_active_member(session, actor.organization_id, assignee):
            raise ValidationFailed(
                "value must be an active user of this organisation", field="value"
            )
        return assignee
    if data.action == "status":
        if not isinstance(v, str):
            raise ValidationFailed("value must be a stage key", field="value")
        await pipeline.stage_for(session, actor.organization_id, v)
        return v
    if data.action in ("tag_add", "tag_remove"):
        if not isinstance(v, str) or not v.strip() or len(v) > 60:
            raise ValidationFailed("value must be a tag (1–60 characters)", field="value")
        return v.strip()
    return None


# ---- records: new and existing leads as column dicts (imports) -------------------------------

# Every updated lead writes all of these (unchanged ones with their current value), so a
# whole chunk is one executemany however the rows differ.
_WRITTEN = (
    *WRITABLE,
    "assignee_id",
    "full_name",
    "search_text",
    "stages_reached",
    "version",
    "updated_at",
)
_AUDIT_EXCLUDE = frozenset({"search_text", "stages_reached", "updated_at", "version"})


def _plain(value: Any) -> Any:
    """A JSON-ready copy (datetimes as ISO text, ids as strings), as audit rows store them."""
    return json.loads(
        json.dumps(value, default=lambda v: v.isoformat() if hasattr(v, "isoformat") else str(v))
    )


@dataclass
class NewLeads:
    """New leads made ready to write (`prepare_records`): the rows of every table they touch."""

    now: datetime
    reason: str
    batch_id: uuid.UUID | None = None
    picker: RulePicker | None = None
    records: list[dict[str, Any]] = field(default_factory=list)
    views: list[RecordView] = field(default_factory=list)
    statuses: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    assigned: list[Assignment] = field(default_factory=list)
    by_rule: dict[uuid.UUID, int] = field(default_factory=dict)
    # The leads and status rows as PostgreSQL's COPY sends them, built here so the write
    # itself only streams them.
    lead_rows: list[Sequence[Any]] = field(default_factory=list)
    status_rows: list[Sequence[Any]] = field(default_factory=list)
    wire: WireIds = field(default_factory=WireIds)
    reached: dict[str, str] = field(default_factory=dict)  # stages_reached of a first stage

    def add(self, actor: Actor, records: list[dict[str, Any]]) -> None:
        """Complete these column dicts in place (id, defaults, derived fields, the rules'
        assignee where none is given) and build their history rows."""
        first = len(self.statuses)
        self._complete(actor, records)
        self.lead_rows += repository.lead_copy_rows(records)
        self.status_rows += repository.status_copy_rows(self.statuses[first:])

    def part(self, start: int, stop: int) -> NewLeads:
        """The leads `start:stop` (in order) with their rows of every table: a set the
        database refused is written again in parts."""
        if start == 0 and stop == len(self.records):
            return self
        records = self.records[start:stop]
        ids = {rec["id"] for rec in records}
        history = [row for row in self.history if row["lead_id"] in ids]
        kept = {row["id"] for row in history}
        return replace(
            self,
            records=records,
            views=self.views[start:stop],
            statuses=self.statuses[start:stop],
            history=history,
            assigned=[a for a in self.assigned if a.assignment_id in kept],
            lead_rows=self.lead_rows[start:stop],
            status_rows=self.status_rows[start:stop],
        )

    def _complete(self, actor: Actor, records: list[dict[str, Any]]) -> None:
        now, reason, picker = self.now, self.reason, self.picker
        ids = self.wire
        org = ids[actor.organization_id]
        user = None if actor.user_id is None else ids[actor.user_id]
        batch = None if self.batch_id is None else ids[self.batch_id]
        for rec in records:
            rec.update(
                id=new_wire_id(),
                organization_id=org,
                created_by=user,
                import_batch_id=batch,
                version=1,
                created_at=now,
                updated_at=now,
            )
            rec.setdefault("tags", [])
            rec.setdefault("custom", {})
            rec.setdefault("score", 0)
            derive_record(rec)
            status = rec["status"]
            reached = self.reached.get(status)
            if reached is None:
                reached = self.reached[status] = reached_with(None, status)
            rec["stages_reached"] = reached
            view = RecordView(rec)
            self.records.append(rec)
            self.views.append(view)
            why, rule_id = reason, None
            if rec.get("assignee_id") is None and picker:
                picked = picker.pick(view)
                if picked is not None:
                    rec["assignee_id"], rule_id = picked[0], picked[1]
                    why = f"{reason}: {picked[2]}"
                    self.by_rule[picked[0]] = self.by_rule.get(picked[0], 0) + 1
            self.statuses.append(
                _status_row(org, user, rec["id"], None, rec["status"], reason, now)
            )
            if rec.get("assignee_id") is not None:
                rec["assignee_id"] = ids[rec["assignee_id"]]
                row_id = new_wire_id()
                self.history.append(
                    {
                        "id": row_id,
                        "organization_id": org,
                        "lead_id": rec["id"],
                        "actor_user_id": user,
                        "from_user_id": None,
                        "to_user_id": rec["assignee_id"],
                        "reason": why,
                        "rule_id": rule_id,
                        "created_at": now,
                    }
                )
                self.assigned.append(Assignment(view, row_id, None, rec["assignee_id"], why))
            else:
                rec["assignee_id"] = None


def prepare_records(
    actor: Actor,
    records: list[dict[str, Any]],
    *,
    now: datetime,
    reason: str,
    batch_id: uuid.UUID | None = None,
    picker: RulePicker | None = None,
) -> NewLeads:
    """New leads given as column dicts made ready to write (`NewLeads.add`) — no database
    work, so an import can do it while its previous chunk is being written."""
    new = NewLeads(now, reason, batch_id, picker)
    new.add(actor, records)
    return new


async def write_records(
    session: AsyncSession, actor: Actor, settings: Settings, new: NewLeads
) -> None:
    """Write prepared new leads: the leads, their first status history row, an assignment
    history row for each assigned one, one audit row for the set, `lead.created` and
    `lead.assigned` (SLA clocks start; the assignees are not messaged per lead — the caller
    sends a summary)."""
    if not new.records:
        return
    org, now = actor.organization_id, new.now
    await repository.insert_leads(session, new.records, new.lead_rows)
    await repository.insert_status_changes(session, new.statuses, new.status_rows, new_leads=True)
    await repository.insert_assignments(session, new.history)
    if new.picker:
        await new.picker.save(session)
    await record_many(
        session,
        actor=actor,
        organization_id=org,
        entries=[
            Entry(
                "lead.create_many",
                "import" if new.batch_id else "lead",
                new.batch_id,
                None,
                {"count": len(new.records), "reason": new.reason, "assigned": len(new.assigned)},
            )
        ],
        now=now,
    )
    await events.publish(
        session,
        LeadsCreated(actor=actor, organization_id=org, now=now, leads=new.views, source=new.reason),
    )
    if new.assigned:
        await events.publish(
            session,
            LeadsAssigned(
                actor=actor,
                organization_id=org,
                now=now,
                settings=settings,
                assignments=new.assigned,
                notify=False,
            ),
        )


async def create_records(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    records: list[dict[str, Any]],
    *,
    now: datetime,
    reason: str,
    batch_id: uuid.UUID | None = None,
    picker: RulePicker | None = None,
) -> dict[uuid.UUID, int]:
    """Write new leads given as column dicts (`prepare_records`, then `write_records`).
    Returns how many leads the rules gave each user."""
    new = prepare_records(actor, records, now=now, reason=reason, batch_id=batch_id, picker=picker)
    await write_records(session, actor, settings, new)
    return new.by_rule


def _status_row(
    org: uuid.UUID,
    actor_user_id: uuid.UUID | None,
    lead_id: uuid.UUID,
    from_status: str | None,
    to_status: str,
    reason: str | None,
    now: datetime,
) -> dict[str, Any]:
    return {
        "id": new_wire_id(),
        "organization_id": org,
        "lead_id": lead_id,
        "actor_user_id": actor_user_id,
        "from_status": from_status,
        "to_status": to_status,
        "reason": reason,
        "created_at": now,
    }


@dataclass(frozen=True)
class Updated:
    """An existing lead a set-based update changed: the changed columns before and after."""

    lead_id: uuid.UUID
    before: dict[str, Any]
    after: dict[str, Any]


@dataclass(frozen=True)
class UpdateResult:
    """What `update_records` found (live leads in scope) and changed."""

    matched: int
    updated: list[Updated]


Values = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


async def update_records(
    session: AsyncSession,
    actor: Actor,
    updates: Iterable[tuple[uuid.UUID, Values]],
    *,
    now: datetime,
    reason: str,
    fill: bool,
    audit_action: str = "lead.update",
    settings: Settings | None = None,
    writable: Sequence[str] = WRITABLE,
) -> UpdateResult:
    """Write values to existing leads inside the actor's scope (row-locked and re-checked in
    this transaction: a lead that left the scope or was deleted is not touched). Values are
    a dict or a function of the lead's current row (a bulk "add a tag").

    `fill=True` (an import): only non-empty values are written and `custom` is merged into
    the lead's; `fill=False`: every given value is written as it is. Writes what an API
    update writes — derived fields, version, a status history row when the stage moves, an
    assignment history row when the assignee changes (`settings` needed then), an audit row
    per changed lead — in one statement per kind of row, and publishes `lead.updated`,
    `lead.status_changed`, `lead.responded` (leaving the first stage) and `lead.assigned`,
    each once for the whole set.
    """
    updates = list(updates)
    current = await repository.rows_for_update(session, actor, [i for i, _ in updates])
    state: dict[uuid.UUID, dict[str, Any]] = {}
    for lead_id, given in updates:
        if lead_id not in current:
            continue
        row = state.setdefault(lead_id, dict(current[lead_id]))
        values = given(row) if callable(given) else given
        for key, value in values.items():
            if key not in writable or (fill and value in (None, "", [])):
                continue
            row[key] = {**(row["custom"] or {}), **value} if fill and key == "custom" else value
    org = actor.organization_id
    rows: list[dict[str, Any]] = []
    done: list[Updated] = []
    moves: list[Move] = []
    statuses: list[dict[str, Any]] = []
    assignments: list[Assignment] = []
    history: list[dict[str, Any]] = []
    audits: list[Entry] = []
    for lead_id, row in state.items():
        old = current[lead_id]
        derive_record(row)
        changed = [
            k
            for k in _WRITTEN
            if k not in ("version", "updated_at", "stages_reached") and row[k] != old[k]
        ]
        if not changed:
            continue
        row["version"] = (old["version"] or 1) + 1
        row["updated_at"] = now
        rows.append(row)
        done.append(Updated(lead_id, {k: old[k] for k in changed}, {k: row[k] for k in changed}))
        if row["status"] != old["status"]:
            row["stages_reached"] = reached_with(old["stages_reached"], row["status"])
            moves.append(Move(RecordView(row), old["status"], row["status"], reason))
            statuses.append(
                _status_row(
                    org,
                    actor.user_id if actor else None,
                    lead_id,
                    old["status"],
                    row["status"],
                    reason,
                    now,
                )
            )
        if row["assignee_id"] != old["assignee_id"]:
            row_id = new_wire_id()
            history.append(
                {
                    "id": row_id,
                    "organization_id": org,
                    "lead_id": lead_id,
                    "actor_user_id": actor.user_id,
                    "from_user_id": old["assignee_id"],
                    "to_user_id": row["assignee_id"],
                    "reason": reason,
                    "rule_id": None,
                    "created_at": now,
                }
            )
            assignments.append(
                Assignment(RecordView(row), row_id, old["assignee_id"], row["assignee_id"], reason)
            )
        b, a = diff(
            _plain({k: old[k] for k in changed if k not in _AUDIT_EXCLUDE}),
            _plain({k: row[k] for k in changed if k not in _AUDIT_EXCLUDE}),
        )
        if a:
            audits.append(Entry(audit_action, "lead", lead_id, b, a))
    await repository.update_rows(session, _WRITTEN, rows)
    await repository.insert_status_changes(session, statuses)
    await repository.insert_assignments(session, history)
    await record_many(session, actor=actor, organization_id=org, entries=audits, now=now)
    if audits:
        changes = [
            Change(uuid.UUID(str(e.resource_id)), e.before or {}, e.after or {}) for e in audits
        ]
        await events.publish(
            session,
            LeadsUpdated(actor=actor, organization_id=org, now=now, changes=changes, source=reason),
        )
    if moves:
        await events.publish(
            session, LeadsStatusChanged(actor=actor, organization_id=org, now=now, moves=moves)
        )
        first = (await pipeline.first_stage(session, org)).key
        responded = [m.lead.id for m in moves if m.from_status == first]
        if responded:
            await events.publish(
                session,
                LeadsResponded(actor=actor, organization_id=org, now=now, lead_ids=responded),
            )
    if assignments:
        assert settings is not None, "assignee changes need the settings (SLA, messages)"
        await events.publish(
            session,
            LeadsAssigned(
                actor=actor,
                organization_id=org,
                now=now,
                settings=settings,
                assignments=assignments,
            ),
        )
    return UpdateResult(matched=len(state), updated=done)


async def delete_where(
    session: AsyncSession,
    actor: Actor,
    *conditions: Any,
    now: datetime,
    reason: str,
    audit_action: str | None = None,
    audit_resource: tuple[str, uuid.UUID] | None = None,
) -> list[uuid.UUID]:
    """Soft-delete the live leads in the actor's scope that meet `conditions` (one UPDATE,
    which also counts the edit in their version) and publish `lead.deleted`. Audited with
    one row per lead as `audit_action` (a bounded bulk action), else one row for the set
    (an import undo, any size). Returns their ids."""
    ids = await repository.soft_delete_where(session, actor, now, *conditions)
    if not ids:
        return []
    org = actor.organization_id
    if audit_action:
        entries = [Entry(audit_action, "lead", i, None, {"deleted_at": now}) for i in ids]
    else:
        kind, ref = audit_resource or ("lead", None)
        entries = [
            Entry("lead.delete_many", kind, ref, None, {"count": len(ids), "reason": reason})
        ]
    await record_many(session, actor=actor, organization_id=org, entries=entries, now=now)
    await events.publish(
        session,
        LeadsDeleted(actor=actor, organization_id=org, now=now, lead_ids=ids, reason=reason),
    )
    return ids
