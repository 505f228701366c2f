"""Assignment rules (CRUD and evaluation) and what happens when a lead gets an assignee."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.assignment import repository
from leadflow.assignment.schemas import RuleCreate, RuleUpdate, Strategy
from leadflow.audit.service import (
    delete_recorded,
    record_create,
    record_update,
    snapshot,
)
from leadflow.authz.actor import Actor
from leadflow.exceptions import NotFound, ValidationFailed
from leadflow.kit.clock import utcnow
from leadflow.kit.conditions import lead_matches
from leadflow.models.assignment_rule import AssignmentRule
from leadflow.models.lead import Lead
from leadflow.models.user import User
from leadflow.organizations import service as orgs


async def list_rules(session: AsyncSession, org_id: uuid.UUID) -> list[AssignmentRule]:
    """Rules in evaluation order."""
    return await repository.list_rules(session, org_id)


async def get_rule(session: AsyncSession, actor: Actor, rule_id: uuid.UUID) -> AssignmentRule:
    """A rule of the actor's organisation, or 404."""
    row = await repository.get_rule(session, actor.organization_id, rule_id)
    if row is None:
        raise NotFound("Assignment rule not found")
    return row


async def _check_targets(
    session: AsyncSession,
    actor: Actor,
    user_ids: list[uuid.UUID],
    team_id: uuid.UUID | None,
    fixed: uuid.UUID | None,
) -> None:
    ids = [*user_ids, *([fixed] if fixed else [])]
    if ids:
        found = await repository.user_ids_in_org(session, actor.organization_id, ids)
        missing = [str(i) for i in ids if i not in found]
        if missing:
            raise ValidationFailed(f"Unknown users: {', '.join(missing)}", field="user_ids")
    if team_id is not None:
        await orgs.get_team(session, actor, team_id)


async def create_rule(session: AsyncSession, actor: Actor, data: RuleCreate) -> AssignmentRule:
    """Add a rule (at the end unless `position` is given)."""
    await _check_targets(session, actor, data.user_ids, data.team_id, data.fixed_user_id)
    rules = await list_rules(session, actor.organization_id)
    row = AssignmentRule(
        organization_id=actor.organization_id,
        name=data.name,
        is_active=data.is_active,
        conditions=data.conditions,
        strategy=data.strategy.value,
        user_ids=[str(u) for u in data.user_ids],
        team_id=data.team_id,
        fixed_user_id=data.fixed_user_id,
        position=len(rules) if data.position is None else data.position,
        rr_counter=0,
    )
    session.add(row)
    await session.flush()
    await record_create(session, actor, row, "assignment_rule.create", "assignment_rule")
    return row


async def update_rule(
    session: AsyncSession, actor: Actor, rule_id: uuid.UUID, data: RuleUpdate
) -> AssignmentRule:
    """Change a rule."""
    row = await get_rule(session, actor, rule_id)
    before = snapshot(row)
    fields: dict[str, Any] = data.model_dump(exclude_unset=True)
    await _check_targets(
        session,
        actor,
        fields.get("user_ids") or [],
        fields.get("team_id"),
        fields.get("fixed_user_id"),
    )
    for key, value in fields.items():
        if key == "user_ids":
            value = [str(u) for u in value or []]
        if value is not None or key in ("team_id", "fixed_user_id"):
            setattr(row, key, value)
    await session.flush()
    await record_update(session, actor, row, before, "assignment_rule.update", "assignment_rule")
    return row


async def delete_rule(session: AsyncSession, actor: Actor, rule_id: uuid.UUID) -> None:
    """Remove a rule."""
    row = await get_rule(session, actor, rule_id)
    await delete_recorded(session, actor, row, "assignment_rule.delete", "assignment_rule")


async def _members(session: AsyncSession, rule: AssignmentRule) -> list[User]:
    now = utcnow()
    users = [
        u
        for u in await repository.active_targets(session, rule)
        if u.out_of_office_until is None or u.out_of_office_until <= now
    ]
    return users


async def auto_assign(session: AsyncSession, lead: Lead) -> tuple[uuid.UUID, uuid.UUID, str] | None:
    """(user id, rule id, reason) the first matching active rule gives `lead`, if any.

    The rules are read under row locks, so concurrent creations take distinct round-robin
    slots; the advanced counter is written in the caller's transaction.
    """
    picker = await RulePicker.load(session, lead.organization_id)
    if not picker:
        return None
    picked = picker.pick(lead)
    await picker.save(session)
    return picked


@dataclass
class _Rule:
    """What evaluating a rule needs, as plain values: an import matches a chunk while the one
    before is written, and a savepoint rolled back there expires the session's ORM objects."""

    id: uuid.UUID
    name: str
    strategy: str
    conditions: Any
    counter: int
    loaded_counter: int
    members: list[tuple[uuid.UUID, int | None]]  # (user id, capacity)
    loads: dict[uuid.UUID, int]


class RulePicker:
    """Evaluates the rules for many leads in memory (imports): one load, then `save` with
    each write.

    Round-robin counters and least-loaded counts advance in memory and the counters are written
    back under the same row locks, so a concurrent import or creation never reuses a slot.
    """

    def __init__(self, rules: list[_Rule]):
        self.rules = rules

    @classmethod
    async def load(cls, session: AsyncSession, org_id: uuid.UUID) -> RulePicker:
        """Lock and load the organisation's active rules with their members and loads."""
        rows = await repository.lock_active_rules(session, org_id)
        loaded = []
        for rule in rows:
            members = await _members(session, rule)
            loads = (
                await repository.open_loads(session, org_id, [m.id for m in members])
                if members
                else {}
            )
            loaded.append(
                _Rule(
                    id=rule.id,
                    name=rule.name,
                    strategy=rule.strategy,
                    conditions=rule.conditions,
                    counter=rule.rr_counter,
                    loaded_counter=rule.rr_counter,
                    members=[(m.id, m.capacity) for m in members],
                    loads=loads,
                )
            )
        return cls(loaded)

    def __bool__(self) -> bool:
        return bool(self.rules)

    async def save(self, session: AsyncSession) -> None:
        """Write the advanced round-robin counters in the caller's transaction (again at each
        call: a savepoint rolled back since may have undone the last write)."""
        for rule in self.rules:
            if rule.counter != rule.loaded_counter:
                await repository.set_rr_counter(session, rule.id, rule.counter)

    def pick(self, lead: Any) -> tuple[uuid.UUID, uuid.UUID, str] | None:
        """(user id, rule id, reason) for a lead-like object, or None."""
        for rule in self.rules:
            if not rule.members or not lead_matches(rule.conditions, lead):
                continue
            loads = rule.loads
            available = [m for m in rule.members if m[1] is None or loads.get(m[0], 0) < m[1]]
            if not available:
                continue
            if rule.strategy == Strategy.LEAST_LOADED:
                chosen = min(available, key=lambda m: (loads.get(m[0], 0), str(m[0])))[0]
                why = "least loaded"
            elif rule.strategy == Strategy.FIXED_USER:
                chosen, why = available[0][0], "fixed user"
            else:
                chosen = available[rule.counter % len(available)][0]
                why = f"round robin slot {rule.counter}"
                rule.counter += 1
            loads[chosen] = loads.get(chosen, 0) + 1
            return chosen, rule.id, f"rule '{rule.name}': {why}"
        return None
