"""Lead rules: validation, duplicates, status moves, assignment, consents, merge, bulk."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.assignment import service as assignment
from leadflow.audit.service import diff, record, record_update, snapshot
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.customfields import service as customfields
from leadflow.exceptions import Conflict, NotFound, PayloadTooLarge, ValidationFailed
from leadflow.kit.clock import utcnow
from leadflow.kit.normalize import normalize_email, normalize_phone
from leadflow.leads import repository
from leadflow.leads.schemas import (
    BulkIn,
    BulkOut,
    ConsentIn,
    ConsentRead,
    DuplicateRead,
    LeadCreate,
    LeadDetail,
    LeadFilter,
    LeadRead,
    LeadUpdate,
    StageRef,
)
from leadflow.models.lead import Lead
from leadflow.models.lead_history import Consent, LeadAssignment, LeadNoteEdit, LeadStatusChange
from leadflow.pipeline import service as pipeline
from leadflow.sla import service as sla
from leadflow.users import repository as users

_AUDIT_EXCLUDE = frozenset({"search_text", "updated_at", "version"})


def touch(lead: Lead) -> None:
    """Count a user-visible edit (the optimistic-concurrency version)."""
    lead.version = (lead.version or 1) + 1


def derive(lead: Lead) -> None:
    """Recompute the derived columns (full name, search text) from the record."""
    lead.full_name = " ".join(p for p in (lead.first_name, lead.last_name) if p)
    parts = (lead.full_name, lead.email, lead.phone, lead.company)
    lead.search_text = " ".join(p for p in parts if p).lower()


def split_name(name: str) -> tuple[str | None, str | None]:
    """ "Lea Kramer" → ("Lea", "Kramer"); "Kramer, Lea" → ("Lea", "Kramer")."""
    name = " ".join(name.split())
    if not name:
        return None, None
    if "," in name:
        last, _, first = name.partition(",")
        return first.strip() or None, last.strip() or None
    first, _, last = name.rpartition(" ")
    return (first, last) if first else (last, None)


def _audit_view(lead: Lead) -> dict[str, Any]:
    return snapshot(lead, exclude=_AUDIT_EXCLUDE)


async def _validated(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    fields: dict[str, Any],
    *,
    creating: bool,
) -> dict[str, Any]:
    """Normalise and check field values; raise 422 naming every bad field."""
    errors: list[dict[str, Any]] = []
    out = dict(fields)
    if "email" in out:
        try:
            out["email"] = normalize_email(out["email"])
        except ValueError as exc:
            errors.append({"loc": ["body", "email"], "msg": str(exc)})
    if "phone" in out:
        try:
            out["phone"] = normalize_phone(out["phone"], settings.default_phone_region)
        except ValueError as exc:
            errors.append({"loc": ["body", "phone"], "msg": str(exc)})
    if (
        out.get("status")
        and await pipeline.repository.get_stage_by_key(
            session, actor.organization_id, out["status"]
        )
        is None
    ):
        errors.append({"loc": ["body", "status"], "msg": f"unknown stage '{out['status']}'"})
    if out.get("assignee_id") is not None and not await users.is_active_member(
        session, actor.organization_id, out["assignee_id"]
    ):
        errors.append(
            {"loc": ["body", "assignee_id"], "msg": "not an active user of this organisation"}
        )
    if "custom" in out or creating:
        defs = await customfields.list_fields(session, actor.organization_id)
        try:
            out["custom"] = customfields.validate_values(
                defs, out.get("custom") or {}, require_all=creating
            )
        except ValidationFailed as exc:
            errors.extend(exc.extra.get("errors", []))
    if errors:
        names = ", ".join(str(e["loc"][-1]) for e in errors)
        raise ValidationFailed(f"Invalid lead fields: {names}", errors=errors)
    return out


async def get_lead(
    session: AsyncSession, actor: Actor, lead_id: uuid.UUID, *, for_update: bool = False
) -> Lead:
    """A lead in the actor's scope, or 404."""
    lead = await repository.get(session, actor, lead_id, for_update=for_update)
    if lead is None:
        raise NotFound("Lead not found")
    return lead


async def lead_detail(session: AsyncSession, actor: Actor, lead_id: uuid.UUID) -> LeadDetail:
    """A lead with its notes, stage and latest consent per channel."""
    lead = await get_lead(session, actor, lead_id)
    return await detail_of(session, lead)


async def detail_of(session: AsyncSession, lead: Lead) -> LeadDetail:
    """Detail view of a loaded lead."""
    stage = await pipeline.repository.get_stage_by_key(session, lead.organization_id, lead.status)
    consents = await repository.latest_consents(session, lead.id)
    return LeadDetail(
        **LeadRead.model_validate(lead).model_dump(),
        notes=lead.notes,
        stage=StageRef(
            key=stage.key, name=stage.name, category=stage.category, probability=stage.probability
        )
        if stage
        else None,
        consents={ch: ConsentRead.model_validate(c) for ch, c in consents.items()},
        sla=await sla.clock_of(session, lead, utcnow()),
    )


async def create_lead(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    data: LeadCreate,
    *,
    allow_duplicate: bool = False,
) -> Lead:
    """Create a lead; the same email or phone in the organisation is a 409 unless allowed."""
    fields = data.model_dump(exclude_unset=True)
    name = fields.pop("name", None)
    if name and not (fields.get("first_name") or fields.get("last_name")):
        fields["first_name"], fields["last_name"] = split_name(name)
    if (
        "assignee_id" in fields
        and fields["assignee_id"] is not None
        and fields["assignee_id"] != actor.user_id
    ):
        actor.require("leads:assign")
    fields = await _validated(session, actor, settings, fields, creating=True)
    if not any(fields.get(k) for k in ("first_name", "last_name", "email", "phone", "company")):
        raise ValidationFailed(
            "A lead needs a name, email, phone or company",
            errors=[{"loc": ["body"], "msg": "name, email, phone or company required"}],
        )
    if not allow_duplicate:
        dup = await repository.find_exact_duplicate(
            session, actor.organization_id, email=fields.get("email"), phone=fields.get("phone")
        )
        if dup is not None:
            raise await _duplicate_conflict(
                session, actor, dup, "A lead with this email or phone exists"
            )
    if not fields.get("status"):
        fields["status"] = (await pipeline.first_stage(session, actor.organization_id)).key
    fields.setdefault("tags", [])
    lead = Lead(
        organization_id=actor.organization_id,
        created_by=actor.user_id,
        **{k: v for k, v in fields.items() if v is not None or k == "assignee_id"},
    )
    derive(lead)
    session.add(lead)
    await session.flush()
    session.add(
        LeadStatusChange(
            organization_id=lead.organization_id,
            lead_id=lead.id,
            actor_user_id=actor.user_id,
            from_status=None,
            to_status=lead.status,
            reason="created",
        )
    )
    if lead.assignee_id is not None:
        await _record_assignment(session, settings, actor, lead, None, "created")
    else:
        await apply_rules(session, settings, actor, lead)
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="lead.create",
        resource_type="lead",
        resource_id=lead.id,
        after=_audit_view(lead),
    )
    return lead


async def _duplicate_conflict(
    session: AsyncSession, actor: Actor, dup: Lead, detail: str
) -> Conflict:
    """The 409 for a duplicate email/phone: it names the existing lead only when the caller may
    see it, so the conflict cannot be used to probe leads outside the caller's scope."""
    visible = await repository.get(session, actor, dup.id) is not None
    if visible:
        return Conflict(detail, code="duplicate_lead", existing_id=str(dup.id))
    return Conflict(detail, code="duplicate_lead")


def parse_if_match(header: str | None) -> int | None:
    """Version from an `If-Match` header (`"3"`, `W/"3"` or `3`)."""
    if not header:
        return None
    value = header.strip().removeprefix("W/").strip('"')
    try:
        return int(value)
    except ValueError:
        raise ValidationFailed(
            'If-Match must be the lead\'s version, e.g. "3"',
            errors=[{"loc": ["header", "If-Match"], "msg": "not a version"}],
        ) from None


def _check_version(lead: Lead, expected: int | None) -> None:
    if expected is not None and expected != lead.version:
        raise Conflict(
            "The lead was changed by someone else; reload it and try again",
            code="version_conflict",
            current_version=lead.version,
        )


async def update_lead(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    lead_id: uuid.UUID,
    data: LeadUpdate,
    *,
    if_match: int | None = None,
) -> Lead:
    """Partial update; stale versions are rejected with 409."""
    lead = await get_lead(session, actor, lead_id, for_update=True)
    fields = data.model_dump(exclude_unset=True)
    expected = fields.pop("version", None) or if_match
    _check_version(lead, expected)
    if not fields:
        return lead
    if "assignee_id" in fields and fields["assignee_id"] != lead.assignee_id:
        actor.require("leads:assign")
    fields = await _validated(session, actor, settings, fields, creating=False)
    for key in ("email", "phone"):
        if fields.get(key) and fields[key] != getattr(lead, key):
            dup = await repository.find_exact_duplicate(
                session,
                actor.organization_id,
                exclude_id=lead.id,
                **{"email": None, "phone": None, key: fields[key]},
            )
            if dup is not None:
                raise await _duplicate_conflict(session, actor, dup, f"Another lead has this {key}")
    before = _audit_view(lead)
    status = fields.pop("status", None)
    assignee_present = "assignee_id" in fields
    assignee = fields.pop("assignee_id", None)
    if "notes" in fields and fields["notes"] != lead.notes:
        session.add(
            LeadNoteEdit(
                organization_id=lead.organization_id,
                lead_id=lead.id,
                actor_user_id=actor.user_id,
                before=lead.notes,
                after=fields["notes"],
            )
        )
    for key, value in fields.items():
        if key == "tags" and value is None:
            value = []
        if key == "custom":
            value = value or {}
        setattr(lead, key, value)
    if status and status != lead.status:
        await _move(session, actor, lead, status, None)
    if assignee_present and assignee != lead.assignee_id:
        await _assign(session, settings, actor, lead, assignee, None)
    derive(lead)
    touch(lead)
    await session.flush()
    await record_update(session, actor, lead, before, "lead.update", "lead", view=_audit_view)
    return lead


async def update_notes(
    session: AsyncSession,
    actor: Actor,
    lead_id: uuid.UUID,
    notes: str | None,
    *,
    expected_version: int | None = None,
) -> Lead:
    """Replace the notes text (kept as a notes edit in the lead's history)."""
    lead = await get_lead(session, actor, lead_id, for_update=True)
    _check_version(lead, expected_version)
    if notes == lead.notes:
        return lead
    session.add(
        LeadNoteEdit(
            organization_id=lead.organization_id,
            lead_id=lead.id,
            actor_user_id=actor.user_id,
            before=lead.notes,
            after=notes,
        )
    )
    before = lead.notes
    lead.notes = notes
    touch(lead)
    await session.flush()
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="lead.notes",
        resource_type="lead",
        resource_id=lead.id,
        before={"notes": before},
        after={"notes": notes},
    )
    return lead


async def _move(
    session: AsyncSession, actor: Actor, lead: Lead, status: str, reason: str | None
) -> None:
    session.add(
        LeadStatusChange(
            organization_id=lead.organization_id,
            lead_id=lead.id,
            actor_user_id=actor.user_id,
            from_status=lead.status,
            to_status=status,
            reason=reason,
        )
    )
    first = await pipeline.first_stage(session, lead.organization_id)
    if lead.status == first.key and status != first.key:
        sla.mark_met(lead, utcnow())  # leaving the first stage counts as the response
    lead.status = status


async def _assign(
    session: AsyncSession,
    settings: Settings,
    actor: Actor | None,
    lead: Lead,
    assignee: uuid.UUID | None,
    reason: str | None,
    rule_id: uuid.UUID | None = None,
) -> None:
    previous = lead.assignee_id
    lead.assignee_id = assignee
    await _record_assignment(session, settings, actor, lead, previous, reason, rule_id)


async def _record_assignment(
    session: AsyncSession,
    settings: Settings,
    actor: Actor | None,
    lead: Lead,
    previous: uuid.UUID | None,
    reason: str | None,
    rule_id: uuid.UUID | None = None,
) -> None:
    row = LeadAssignment(
        organization_id=lead.organization_id,
        lead_id=lead.id,
        actor_user_id=actor.user_id if actor else None,
        from_user_id=previous,
        to_user_id=lead.assignee_id,
        reason=reason,
        rule_id=rule_id,
    )
    session.add(row)
    await session.flush()
    await assignment.on_assigned(session, settings, actor, lead, row)


async def apply_rules(
    session: AsyncSession, settings: Settings, actor: Actor | None, lead: Lead
) -> bool:
    """Give an unassigned lead to whoever the first matching assignment rule picks."""
    if lead.assignee_id is not None:
        return False
    picked = await assignment.auto_assign(session, lead)
    if picked is None:
        return False
    user_id, rule_id, reason = picked
    await _assign(session, settings, actor, lead, user_id, reason, rule_id)
    return True


async def change_status(
    session: AsyncSession, actor: Actor, lead_id: uuid.UUID, status: str, reason: str | None
) -> Lead:
    """Move a lead to another stage, with history."""
    lead = await get_lead(session, actor, lead_id, for_update=True)
    await pipeline.stage_for(session, actor.organization_id, status)
    if status == lead.status:
        return lead
    before = lead.status
    await _move(session, actor, lead, status, reason)
    touch(lead)
    await session.flush()
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="lead.status",
        resource_type="lead",
        resource_id=lead.id,
        before={"status": before},
        after={"status": status, "reason": reason},
    )
    return lead


async def assign(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    lead_id: uuid.UUID,
    assignee_id: uuid.UUID | None,
    reason: str | None,
) -> Lead:
    """Assign a lead to an active member (or unassign), with history."""
    lead = await get_lead(session, actor, lead_id, for_update=True)
    if assignee_id is not None and not await users.is_active_member(
        session, actor.organization_id, assignee_id
    ):
        raise ValidationFailed(
            "The assignee must be an active user of this organisation", field="assignee_id"
        )
    if assignee_id == lead.assignee_id:
        return lead
    before = lead.assignee_id
    await _assign(session, settings, actor, lead, assignee_id, reason)
    touch(lead)
    await session.flush()
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="lead.assign",
        resource_type="lead",
        resource_id=lead.id,
        before={"assignee_id": before},
        after={"assignee_id": assignee_id, "reason": reason},
    )
    return lead


async def delete_lead(session: AsyncSession, actor: Actor, lead_id: uuid.UUID) -> None:
    """Soft-delete: gone from lists and exports, kept for audit."""
    lead = await get_lead(session, actor, lead_id, for_update=True)
    lead.deleted_at = utcnow()
    touch(lead)
    await session.flush()
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="lead.delete",
        resource_type="lead",
        resource_id=lead.id,
        before=_audit_view(lead),
    )


async def add_consent(
    session: AsyncSession, actor: Actor | None, lead: Lead, data: ConsentIn
) -> Consent:
    """Append to the consent ledger of a lead."""
    row = Consent(
        organization_id=lead.organization_id,
        lead_id=lead.id,
        actor_user_id=actor.user_id if actor else None,
        channel=data.channel.value,
        granted=data.granted,
        source=data.source,
        text=data.text,
    )
    session.add(row)
    await session.flush()
    await record(
        session,
        actor=actor,
        organization_id=lead.organization_id,
        action="lead.consent",
        resource_type="lead",
        resource_id=lead.id,
        after={"channel": row.channel, "granted": row.granted, "source": row.source},
    )
    return row


async def record_consent(
    session: AsyncSession, actor: Actor, lead_id: uuid.UUID, data: ConsentIn
) -> Consent:
    """Consent for a lead in the actor's scope."""
    lead = await get_lead(session, actor, lead_id)
    return await add_consent(session, actor, lead, data)


async def consents(session: AsyncSession, actor: Actor, lead_id: uuid.UUID) -> list[Consent]:
    """The consent history of a lead, newest first."""
    lead = await get_lead(session, actor, lead_id)
    return await repository.consent_history(session, lead.id)


async def duplicates(
    session: AsyncSession, actor: Actor, lead_id: uuid.UUID, *, threshold: int = 85
) -> list[DuplicateRead]:
    """Likely duplicates: same email or phone, or similar name + company (rapidfuzz)."""
    lead = await get_lead(session, actor, lead_id)
    me = f"{lead.full_name} {lead.company or ''}".strip().lower()
    found: list[DuplicateRead] = []
    for other in await repository.duplicate_candidates(session, actor, lead):
        reasons: list[str] = []
        score = 0
        if lead.email and other.email == lead.email:
            reasons.append("same email")
            score = 100
        if lead.phone and other.phone == lead.phone:
            reasons.append("same phone")
            score = 100
        them = f"{other.full_name} {other.company or ''}".strip().lower()
        similarity = round(fuzz.token_sort_ratio(me, them)) if me and them else 0
        if similarity >= threshold:
            reasons.append(f"similar name and company ({similarity})")
            score = max(score, similarity)
        if reasons:
            found.append(
                DuplicateRead(lead=LeadRead.model_validate(other), score=score, reasons=reasons)
            )
    return sorted(found, key=lambda d: (-d.score, str(d.lead.id)))


_MERGE_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "company",
    "channel",
    "source",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "assignee_id",
    "disg_type",
    "next_action_at",
    "next_action_description",
    "last_contacted_at",
)


async def merge(
    session: AsyncSession, actor: Actor, lead_id: uuid.UUID, other_ids: Sequence[uuid.UUID]
) -> Lead:
    """Merge other leads into this one: first non-empty value wins, tags united, notes joined,
    history moved; the others are soft-deleted and point at the survivor."""
    lead = await get_lead(session, actor, lead_id, for_update=True)
    ids = [i for i in dict.fromkeys(other_ids) if i != lead.id]
    others = await repository.get_many(session, actor, ids)
    if len(others) != len(ids) or not ids:
        raise NotFound("One or more leads to merge were not found")
    # Merging soft-deletes the others, so it needs the delete right (checked after the scope
    # lookups: a lead outside scope stays a 404).
    actor.require("leads:delete")
    order = {i: n for n, i in enumerate(ids)}
    others.sort(key=lambda o: order[o.id])
    before = _audit_view(lead)
    for field in _MERGE_FIELDS:
        if getattr(lead, field) in (None, ""):
            for other in others:
                if getattr(other, field) not in (None, ""):
                    setattr(lead, field, getattr(other, field))
                    break
    lead.tags = list(dict.fromkeys([*lead.tags, *(t for o in others for t in o.tags)]))
    notes = [n for n in [lead.notes, *(o.notes for o in others)] if n]
    lead.notes = "\n\n---\n\n".join(notes) if notes else None
    lead.custom = {**{k: v for o in reversed(others) for k, v in o.custom.items()}, **lead.custom}
    lead.score = max([lead.score, *(o.score for o in others)])
    lead.needs_action = lead.needs_action or any(o.needs_action for o in others)
    now = utcnow()
    for other in others:
        other.deleted_at = now
        other.merged_into_id = lead.id
    await session.flush()  # the others leave the duplicate checks before their values move
    await repository.move_children(session, ids, lead.id)
    derive(lead)
    touch(lead)
    await session.flush()
    b, a = diff(before, _audit_view(lead))
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="lead.merge",
        resource_type="lead",
        resource_id=lead.id,
        before=b,
        after={**a, "merged_ids": [str(i) for i in ids]},
    )
    for other in others:
        await record(
            session,
            actor=actor,
            organization_id=actor.organization_id,
            action="lead.merged_into",
            resource_type="lead",
            resource_id=other.id,
            after={"merged_into_id": str(lead.id)},
        )
    return lead


_BULK_PERMISSION = {"assign": "leads:assign", "delete": "leads:delete"}


async def bulk(session: AsyncSession, actor: Actor, settings: Settings, data: BulkIn) -> BulkOut:
    """Apply one action to many leads in scope; every change is audited."""
    permission = _BULK_PERMISSION.get(data.action, "leads:write")
    actor.require(permission)
    if (data.ids is None) == (data.filter is None):
        raise ValidationFailed("Give either ids or filter", field="ids")
    cap = settings.bulk_max_leads
    if data.ids is not None:
        leads = await repository.get_many(session, actor, list(dict.fromkeys(data.ids)))
    else:
        assert data.filter is not None
        ids = await repository.select_ids(session, actor, data.filter, cap + 1)
        if len(ids) > cap:
            raise PayloadTooLarge(
                f"The filter matches more than {cap} leads; narrow it down", code="bulk_too_large"
            )
        leads = await repository.get_many(session, actor, ids)
    value = await _bulk_value(session, actor, data)
    updated = 0
    for lead in leads:
        if await _bulk_apply(session, settings, actor, lead, data.action, value):
            updated += 1
    await session.flush()
    return BulkOut(matched=len(leads), updated=updated)


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


async def _bulk_apply(
    session: AsyncSession, settings: Settings, actor: Actor, lead: Lead, action: str, value: Any
) -> bool:
    before = _audit_view(lead)
    if action == "assign":
        if lead.assignee_id == value:
            return False
        await _assign(session, settings, actor, lead, value, "bulk")
    elif action == "status":
        if lead.status == value:
            return False
        await _move(session, actor, lead, value, "bulk")
    elif action == "tag_add":
        if value in lead.tags:
            return False
        lead.tags = [*lead.tags, value]
    elif action == "tag_remove":
        if value not in lead.tags:
            return False
        lead.tags = [t for t in lead.tags if t != value]
    elif action == "delete":
        lead.deleted_at = utcnow()
    touch(lead)
    b, a = diff(before, _audit_view(lead))
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action=f"lead.bulk_{action}",
        resource_type="lead",
        resource_id=lead.id,
        before=b,
        after=a,
    )
    return True


async def list_leads(
    session: AsyncSession,
    actor: Actor,
    settings: Settings,
    f: LeadFilter,
    *,
    sort: str,
    limit: int,
    offset: int,
    cursor: str | None,
) -> repository.ListResult:
    """A page of leads in the actor's scope."""
    return await repository.list_leads(
        session,
        actor,
        f,
        sort=sort,
        limit=limit,
        offset=offset,
        cursor=cursor,
        count_cap=settings.list_count_cap,
    )


async def tags(session: AsyncSession, actor: Actor) -> list[tuple[str, int]]:
    """Tags with counts in the actor's scope."""
    return await repository.tag_counts(session, actor)


async def resend_assignment_email(
    session: AsyncSession, actor: Actor, settings: Settings, lead_id: uuid.UUID
) -> str:
    """Queue the "lead assigned" email to the current assignee again; returns the delivery key."""
    lead = await get_lead(session, actor, lead_id)
    if lead.assignee_id is None:
        raise Conflict("The lead has no assignee to notify", code="not_assigned")
    assignee = await users.get(session, actor, lead.assignee_id)
    if assignee is None or assignee.status != "active":
        raise Conflict("The assignee is not an active user", code="assignee_inactive")
    key = f"lead-assigned-resend:{lead.id}:{uuid.uuid4().hex}"
    await assignment.queue_assignment_email(
        session, settings, lead, assignee, by=actor.label, reason="resent", delivery_key=key
    )
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="lead.resend_email",
        resource_type="lead",
        resource_id=lead.id,
        after={"to": assignee.email, "delivery_key": key},
    )
    return key


async def needing_action(session: AsyncSession, actor: Actor, limit: int) -> list[Lead]:
    """The needs-action sidebar of the actor."""
    return await repository.needing_action(session, actor, limit)
