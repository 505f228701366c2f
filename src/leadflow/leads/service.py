"""The leads service: the one door every lead change passes.

Validation, duplicates, status moves, assignment, consents, merge and bulk actions, each
with the same side effects written here and nowhere else: derived fields, version, status
history, assignment history, audit, and a domain event (`leads.events`) to which SLA clocks
and notifications subscribe. Many leads at once (an import chunk, a bulk action) go through
`leads.bulk`, which does the same work set-based.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from rapidfuzz import fuzz
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.assignment import service as assignment
from leadflow.audit.service import Entry, diff, record, record_many
from leadflow.authz.actor import Actor
from leadflow.config import Settings
from leadflow.customfields import service as customfields
from leadflow.db.base import new_id
from leadflow.exceptions import NotFound, ValidationFailed
from leadflow.kit import events
from leadflow.kit.clock import utcnow
from leadflow.kit.normalize import normalize_email, normalize_phone
from leadflow.leads import effects, repository
from leadflow.leads.errors import DuplicateLead, VersionConflict
from leadflow.leads.events import (
    Change,
    LeadsCreated,
    LeadsDeleted,
    LeadsMerged,
    LeadsResponded,
    LeadsUpdated,
)
from leadflow.leads.schemas import (
    ConsentIn,
    ConsentRead,
    DuplicateRead,
    LeadCreate,
    LeadDetail,
    LeadFilter,
    LeadRead,
    LeadUpdate,
    SlaClock,
    SlaClockState,
    SlaPolicyRef,
    StageRef,
)
from leadflow.models.lead import Lead, reached_keys, reached_with
from leadflow.models.lead_history import Consent, LeadNoteEdit, LeadStatusChange
from leadflow.pipeline import service as pipeline
from leadflow.users import repository as users

_AUDIT_EXCLUDE = frozenset({"search_text", "updated_at", "version"})


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
    """A lead with its notes, stage, latest consent per channel and SLA clock."""
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
        sla=await sla_clock(session, lead, utcnow()),
    )


def sla_state(lead: Any, now: datetime) -> SlaClockState:
    """`met`, `breached`, `at_risk` (past the reminder time), `running`, or `none` (no clock)."""
    if lead.sla_deadline is None:  # as /sla/status, which lists only leads with a deadline
        return "none"
    if lead.sla_met_at is not None:
        return "met"
    if lead.sla_breached_at is not None or lead.sla_deadline <= now:
        return "breached"
    if lead.sla_reminder_at is not None and lead.sla_reminder_at <= now:
        return "at_risk"
    return "running"


async def sla_clock(session: AsyncSession, lead: Lead, now: datetime) -> SlaClock:
    """A lead's SLA clock as its detail shows it (state as `/sla/status` computes it)."""
    policy: SlaPolicyRef | None = None
    if lead.sla_policy_id is not None:
        name = await repository.sla_policy_name(session, lead.organization_id, lead.sla_policy_id)
        policy = SlaPolicyRef(id=lead.sla_policy_id, name=name)
    return SlaClock(
        state=sla_state(lead, now),
        policy=policy,
        deadline=lead.sla_deadline,
        reminder_at=lead.sla_reminder_at,
        reminded_at=lead.sla_reminded_at,
        met_at=lead.sla_met_at,
        breached_at=lead.sla_breached_at,
    )


# ---- single-lead writes ----------------------------------------------------------------------


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
    assignee = fields.pop("assignee_id", None)
    lead = Lead(
        id=new_id(),
        organization_id=actor.organization_id,
        created_by=actor.user_id,
        **{k: v for k, v in fields.items() if v is not None},
    )
    effects.derive(lead)
    lead.stages_reached = reached_with(None, lead.status)
    now = utcnow()
    session.add(lead)
    session.add(
        LeadStatusChange(
            id=new_id(),
            organization_id=lead.organization_id,
            lead_id=lead.id,
            actor_user_id=actor.user_id,
            from_status=None,
            to_status=lead.status,
            reason="created",
            created_at=now,
        )
    )
    await session.flush()
    await events.publish(
        session,
        LeadsCreated(actor=actor, organization_id=lead.organization_id, now=now, leads=[lead]),
    )
    if assignee is not None:
        await effects.assign_many(
            session, settings, actor, lead.organization_id, [(lead, assignee, "created", None)], now
        )
    else:
        await apply_rules(session, settings, actor, lead)
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="lead.create",
        resource_type="lead",
        resource_id=lead.id,
        after=effects.audit_view(lead),
    )
    return lead


async def _duplicate_conflict(
    session: AsyncSession, actor: Actor, dup: Lead, detail: str
) -> DuplicateLead:
    """The 409 for a duplicate email/phone: it names the existing lead only when the caller may
    see it, so the conflict cannot be used to probe leads outside the caller's scope."""
    visible = await repository.get(session, actor, dup.id) is not None
    if visible:
        return DuplicateLead(detail, existing_id=str(dup.id))
    return DuplicateLead(detail)


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
        raise VersionConflict(
            "The lead was changed by someone else; reload it and try again",
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
    before = effects.audit_view(lead)
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
    now = utcnow()
    if status:
        await effects.move_many(session, actor, lead.organization_id, [(lead, status)], None, now)
    if assignee_present and assignee != lead.assignee_id:
        await effects.assign_many(
            session, settings, actor, lead.organization_id, [(lead, assignee, None, None)], now
        )
    effects.derive(lead)
    effects.touch(lead)
    await session.flush()
    await effects.announce_update(session, actor, lead, before, "lead.update")
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
    before = effects.audit_view(lead)
    lead.notes = notes
    effects.touch(lead)
    await session.flush()
    await effects.announce_update(session, actor, lead, before, "lead.notes")
    return lead


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
    await effects.assign_many(
        session, settings, actor, lead.organization_id, [(lead, user_id, reason, rule_id)], utcnow()
    )
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
    await effects.move_many(
        session, actor, lead.organization_id, [(lead, status)], reason, utcnow()
    )
    effects.touch(lead)
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
    await effects.assign_many(
        session,
        settings,
        actor,
        lead.organization_id,
        [(lead, assignee_id, reason, None)],
        utcnow(),
    )
    effects.touch(lead)
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
    now = utcnow()
    lead.deleted_at = now
    effects.touch(lead)
    await session.flush()
    await record(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        action="lead.delete",
        resource_type="lead",
        resource_id=lead.id,
        before=effects.audit_view(lead),
    )
    await events.publish(
        session,
        LeadsDeleted(
            actor=actor, organization_id=lead.organization_id, now=now, lead_ids=[lead.id]
        ),
    )


async def apply_fields(
    session: AsyncSession,
    actor: Actor,
    lead: Lead,
    values: dict[str, Any],
    *,
    action: str,
    extra: dict[str, Any] | None = None,
    since: dict[str, Any] | None = None,
    count_edit: bool = True,
) -> None:
    """Write field values another domain computed (an AI analysis) to a row-locked lead:
    audited as `action` with `extra` — the change since `since` (the lead's audit view taken
    before related changes, e.g. a stage move) — and announced as `lead.updated`."""
    before = since if since is not None else effects.audit_view(lead)
    changed = any(getattr(lead, k) != v for k, v in values.items())
    for key, value in values.items():
        setattr(lead, key, value)
    effects.derive(lead)
    if changed and count_edit:
        effects.touch(lead)
    await session.flush()
    await effects.announce_update(session, actor, lead, before, action, extra=extra or {})


async def record_contact(
    session: AsyncSession,
    actor: Actor,
    lead: Lead,
    occurred: datetime,
    *,
    outbound: bool,
    clear_needs_action: bool,
) -> dict[str, Any]:
    """A contact with the lead happened (an interaction was logged): move its last contact,
    clear needs-action if the organisation wants it, and count an outbound contact as the
    response to the lead. Returns the changed fields (the caller audits the interaction)."""
    changes: dict[str, Any] = {}
    if lead.last_contacted_at is None or occurred > lead.last_contacted_at:
        changes["last_contacted_at"] = occurred
    if clear_needs_action and lead.needs_action:
        changes["needs_action"] = False
    before = {k: getattr(lead, k) for k in changes}
    for key, value in changes.items():
        setattr(lead, key, value)
    await session.flush()
    now = utcnow()
    if changes:
        await events.publish(
            session,
            LeadsUpdated(
                actor=actor,
                organization_id=lead.organization_id,
                now=now,
                changes=[Change(lead.id, before, changes)],
                source="interaction",
            ),
        )
    if outbound:
        await events.publish(
            session,
            LeadsResponded(
                actor=actor, organization_id=lead.organization_id, now=now, lead_ids=[lead.id]
            ),
        )
    return changes


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
    before = effects.audit_view(lead)
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
    # Their status history moves to this lead, and with it the stages they have been in.
    lead.stages_reached = reached_with(
        lead.stages_reached,
        *(k for o in others for k in reached_keys(o.stages_reached) | {o.status}),
    )
    now = utcnow()
    for other in others:
        other.deleted_at = now
        other.merged_into_id = lead.id
    await session.flush()  # the others leave the duplicate checks before their values move
    await repository.move_children(session, ids, lead.id)
    effects.derive(lead)
    effects.touch(lead)
    await session.flush()
    b, a = diff(before, effects.audit_view(lead))
    await record_many(
        session,
        actor=actor,
        organization_id=actor.organization_id,
        entries=[
            Entry("lead.merge", "lead", lead.id, b, {**a, "merged_ids": [str(i) for i in ids]}),
            *(
                Entry("lead.merged_into", "lead", o.id, None, {"merged_into_id": str(lead.id)})
                for o in others
            ),
        ],
        now=now,
    )
    org = lead.organization_id
    await events.publish(
        session,
        LeadsMerged(actor=actor, organization_id=org, now=now, survivor_id=lead.id, merged_ids=ids),
    )
    await events.publish(
        session,
        LeadsDeleted(actor=actor, organization_id=org, now=now, lead_ids=ids, reason="merged"),
    )
    if a:
        await events.publish(
            session,
            LeadsUpdated(
                actor=actor, organization_id=org, now=now, changes=[Change(lead.id, b, a)]
            ),
        )
    return lead


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


async def needing_action(session: AsyncSession, actor: Actor, limit: int) -> list[Lead]:
    """The needs-action sidebar of the actor."""
    return await repository.needing_action(session, actor, limit)
