"""Analytics queries. Every figure is one aggregate statement (grouped where a list is asked
for) over the leads in the actor's row scope and their history; nothing is computed per lead
in Python. `key` arguments group a figure, e.g. by `Lead.assignee_id`; without one the answer
is keyed by None."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    distinct,
    false,
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.analytics.periods import Period
from leadflow.analytics.schemas import LeadFilters
from leadflow.authz.actor import Actor
from leadflow.authz.scopes import (
    LEAD_OWNERS,
    lead_scope_conditions,
    row_scope_clause,
    scope_clause,
    scope_kind,
)
from leadflow.db.dialect import (
    dialect_name,
    is_postgres,
    json_number,
    local_date,
    minutes_between,
)
from leadflow.models.activity import Interaction
from leadflow.models.lead import Lead
from leadflow.models.lead_history import LeadStatusChange
from leadflow.models.outbox import OutboxMessage
from leadflow.models.user import User
from leadflow.sla.repository import state_conditions

# The numeric custom field that holds a lead's deal value.
VALUE_FIELD = "value"

Key = Any  # a grouping column, or None for one overall figure
BY_SOURCE = Lead.source
BY_ASSIGNEE = Lead.assignee_id


def lead_conditions(actor: Actor, filters: LeadFilters) -> list[ColumnElement[bool]]:
    """Live leads in the actor's scope matching the filters (on their current values)."""
    conds = lead_scope_conditions(actor)
    if filters.source is not None:
        conds.append(Lead.source == filters.source)
    if filters.status is not None:
        conds.append(Lead.status == filters.status)
    if filters.unassigned:
        conds.append(Lead.assignee_id.is_(None))
    elif filters.assignee_id is not None:
        conds.append(Lead.assignee_id == filters.assignee_id)
    return conds


def created_in(period: Period) -> list[ColumnElement[bool]]:
    """Leads created in the period."""
    return [Lead.created_at >= period.start, Lead.created_at < period.end]


def reached(keys: Sequence[str]) -> ColumnElement[bool]:
    """The lead is, or once was, in one of the stages `keys` (read off the lead: its current
    status and `stages_reached`, which the leads service keeps with the status history)."""
    if not keys:
        return false()  # no such stage: nothing reached it
    return or_(
        Lead.status.in_(keys),
        *(Lead.stages_reached.contains(f",{k},", autoescape=True) for k in keys),
    )


def _keyed(key: Key, *columns: Any) -> Select[Any]:
    """SELECT the grouping key (NULL without one) and `columns`."""
    return select(key if key is not None else null(), *columns)


async def _collect(session: AsyncSession, stmt: Select[Any], key: Key) -> dict[Any, Any]:
    """Run `stmt` grouped by `key`: {key: the other columns}."""
    if key is not None:
        stmt = stmt.group_by(key)
    return {row[0]: tuple(row[1:]) for row in (await session.execute(stmt)).all()}


async def cohort(
    session: AsyncSession,
    conds: Sequence[ColumnElement[bool]],
    period: Period,
    won_keys: Sequence[str],
    key: Key = None,
) -> dict[Any, tuple[int, int]]:
    """Leads created in the period, and how many of them have reached a won stage (by now)."""
    won = func.coalesce(func.sum(case((reached(won_keys), 1), else_=0)), 0)
    stmt = _keyed(key, func.count(), won).select_from(Lead).where(*conds, *created_in(period))
    rows = await _collect(session, stmt, key)
    return {k: (int(n), int(w)) for k, (n, w) in rows.items()}


async def count_leads(session: AsyncSession, conds: Sequence[ColumnElement[bool]]) -> int:
    """Leads matching `conds`."""
    total = await session.scalar(select(func.count()).select_from(Lead).where(*conds))
    return int(total or 0)


async def enrollments(
    session: AsyncSession,
    conds: Sequence[ColumnElement[bool]],
    period: Period,
    won_keys: Sequence[str],
    key: Key = None,
    whole_org: uuid.UUID | None = None,
) -> dict[Any, int]:
    """Distinct leads that moved into a won stage during the period (status history).
    `whole_org`: every live lead of that organisation counts (`conds` are not needed), so
    the moves are read from their index alone, less those of deleted leads."""
    if not won_keys:
        return {}
    h = LeadStatusChange
    if whole_org is not None and key is None:
        deleted = select(Lead.id).where(
            Lead.organization_id == whole_org, Lead.deleted_at.is_not(None)
        )
        n = await session.scalar(
            select(func.count(distinct(h.lead_id))).where(
                h.organization_id == whole_org,
                h.to_status.in_(won_keys),
                h.created_at >= period.start,
                h.created_at < period.end,
                h.lead_id.not_in(deleted),
            )
        )
        return {None: int(n or 0)}
    stmt = (
        _keyed(key, func.count(distinct(h.lead_id)))
        .select_from(h)
        .join(Lead, Lead.id == h.lead_id)
        .where(
            *conds,
            h.organization_id == Lead.organization_id,
            h.to_status.in_(won_keys),
            h.created_at >= period.start,
            h.created_at < period.end,
        )
    )
    rows = await _collect(session, stmt, key)
    return {k: int(v[0]) for k, v in rows.items()}


async def totals(
    session: AsyncSession,
    conds: Sequence[ColumnElement[bool]],
    end: datetime,
    open_probabilities: Mapping[str, int],
) -> tuple[int, tuple[int, float, float, float]]:
    """Leads that existed at `end`, and the open leads now: (count, Σ probability, Σ value,
    Σ value × probability); probabilities are fractions, values the numeric custom field
    `value` (0 when missing)."""
    # Both figures read every lead in scope, so one scan serves both, grouped by stage: the
    # probability is the stage's, so Σ value × probability = Σ over stages of (probability ×
    # the stage's Σ value), exactly. `value` is read out of the JSON of open leads only.
    is_open = Lead.status.in_(list(open_probabilities)) if open_probabilities else false()
    value = json_number(Lead.custom, VALUE_FIELD, dialect_name(session))
    rows = await session.execute(
        select(
            Lead.status,
            func.count(),
            func.coalesce(func.sum(case((Lead.created_at < end, 1), else_=0)), 0),
            func.sum(case((is_open, value), else_=None)),
        )
        .where(*conds)
        .group_by(Lead.status)
    )
    existed = count = probs = 0
    total: Any = 0
    weighted: Any = 0
    for status, n, before_end, values in rows.all():
        existed += before_end
        prob = open_probabilities.get(status)
        if prob is None:
            continue
        count += n
        probs += n * prob
        total += values or 0
        weighted += (values or 0) * prob
    pipeline = (int(count), float(probs) / 100, float(total), float(weighted) / 100)
    return int(existed), pipeline


async def median_response(
    session: AsyncSession,
    conds: Sequence[ColumnElement[bool]],
    period: Period,
    key: Key = None,
) -> dict[Any, tuple[float, int]]:
    """(median minutes, responses) of the clocks met during the period: from the start of
    the clock (the assignment that started it) to the first response. The median of an even
    count is the mean of the two middle values on both engines. A met clock without a start
    (data from before starts were recorded) drops out."""
    dialect = dialect_name(session)
    minutes = minutes_between(Lead.sla_met_at, Lead.sla_started_at, dialect)
    where = [
        *conds,
        Lead.sla_met_at >= period.start,
        Lead.sla_met_at < period.end,
        Lead.sla_started_at.is_not(None),
    ]
    group = key if key is not None else null()
    if is_postgres(dialect):
        # One ordered-set aggregate per group; the clock times come from the covering index.
        median = func.percentile_cont(0.5).within_group(minutes)
        stmt = select(group, median, func.count()).where(*where)
        if key is not None:
            stmt = stmt.group_by(key)
        rows = await session.execute(stmt)
        return {k: (float(m), int(n)) for k, m, n in rows.all() if n}
    partition = key if key is not None else None
    ranked = (
        select(
            group.label("k"),
            minutes.label("m"),
            func.row_number().over(partition_by=partition, order_by=minutes).label("rn"),
            func.count().over(partition_by=partition).label("n"),
        )
        .where(*where)
        .subquery()
    )
    result = await session.execute(
        select(ranked.c.k, func.avg(ranked.c.m), func.max(ranked.c.n))
        .where(ranked.c.rn.in_([(ranked.c.n + 1) // 2, (ranked.c.n + 2) // 2]))
        .group_by(ranked.c.k)
    )
    return {k: (float(m), int(n)) for k, m, n in result.all()}


def _met_in_time() -> ColumnElement[bool]:
    return and_(Lead.sla_met_at.is_not(None), Lead.sla_met_at <= Lead.sla_deadline)


async def sla_outcomes(
    session: AsyncSession,
    conds: Sequence[ColumnElement[bool]],
    period: Period,
    now: datetime,
    key: Key = None,
) -> dict[Any, tuple[int, int]]:
    """(clocks ended, of them met in time) for SLA clocks decided during the period.

    A clock is decided when it is met in time (at the response) or when its deadline passes
    without one (at the deadline, even if the response came later or the periodic check has
    not marked the breach yet). Only each lead's current clock is stored.
    """
    in_time = _met_in_time()
    group = key if key is not None else null()
    # Decided in [start, end): met in time during it, or else its deadline fell in it. The
    # two are disjoint; each is a range over its own index (which carries the other times and
    # the owners on PostgreSQL, so neither visits the table).
    met_then = select(group.label("k"), literal(1).label("ok")).where(
        *conds, in_time, Lead.sla_met_at >= period.start, Lead.sla_met_at < period.end
    )
    missed_then = select(group.label("k"), literal(0).label("ok")).where(
        *conds,
        Lead.sla_deadline >= period.start,
        Lead.sla_deadline < period.end,
        Lead.sla_deadline <= now,
        or_(Lead.sla_met_at.is_(None), Lead.sla_met_at > Lead.sla_deadline),
    )
    both = union_all(met_then, missed_then).subquery()
    rows = await session.execute(
        select(both.c.k, func.count(), func.coalesce(func.sum(both.c.ok), 0)).group_by(both.c.k)
    )
    return {k: (int(n), int(ok)) for k, n, ok in rows.all() if n}


async def created_per_day(
    session: AsyncSession, conds: Sequence[ColumnElement[bool]], period: Period
) -> list[tuple[date, int]]:
    """Leads created per local day of the period (days without leads are absent)."""
    day = local_date(
        Lead.created_at, period.timezone, period.start, period.end, dialect_name(session)
    )
    days = select(day.label("day")).where(*conds, *created_in(period)).subquery()
    rows = await session.execute(select(days.c.day, func.count()).group_by(days.c.day))
    return [(d if isinstance(d, date) else date.fromisoformat(d), int(n)) for d, n in rows.all()]


async def stages_reached(
    session: AsyncSession, conds: Sequence[ColumnElement[bool]], period: Period
) -> dict[tuple[str, str], int]:
    """Leads created in the period, counted by (stages they have been in, current stage)."""
    rows = await session.execute(
        select(Lead.stages_reached, Lead.status, func.count())
        .where(*conds, *created_in(period))
        .group_by(Lead.stages_reached, Lead.status)
    )
    return {(reached, status): int(n) for reached, status, n in rows.all()}


def scope_lead_ids(actor: Actor) -> list[Select[Any]]:
    """The ids of the live leads in the actor's scope, unfiltered: one select per owner
    column, each answered by its own index. A lead is in scope when it is in any of them;
    asking each with its own hashed IN spares the de-duplication a UNION would cost."""
    kind = scope_kind(actor)
    org = actor.organization_id
    return [
        select(Lead.id).where(
            Lead.organization_id == org,
            Lead.deleted_at.is_(None),
            scope_clause(kind, [column], user=actor.user_id, team=actor.team_id, org=org),
        )
        for column in LEAD_OWNERS
    ]


async def interactions_by_actor(
    session: AsyncSession,
    org_id: uuid.UUID,
    leads: ColumnElement[bool] | list[Select[Any]] | None,
    period: Period,
) -> dict[uuid.UUID, int]:
    """Interactions that occurred during the period on leads in scope, by who logged them.
    `leads`: the conditions on the leads in scope, or selects of their ids (a lead in any of
    them counts); None: every live lead of the organisation."""
    i = Interaction
    where = [
        i.organization_id == org_id,
        i.actor_user_id.is_not(None),
        i.occurred_at >= period.start,
        i.occurred_at < period.end,
    ]
    if leads is None:
        # The whole organisation: only the (few) deleted leads are out, so exclude those
        # instead of looking up every interaction's lead. A scope of people: the ids of
        # their leads, one index range per owner column (an OR of the two would visit
        # every lead's row).
        deleted = select(Lead.id).where(
            Lead.organization_id == org_id, Lead.deleted_at.is_not(None)
        )
        where.append(i.lead_id.not_in(deleted))
    elif isinstance(leads, list):
        where.append(or_(*(i.lead_id.in_(ids) for ids in leads)))
    else:
        where.append(i.lead_id.in_(select(Lead.id).where(leads)))
    rows = await session.execute(
        select(i.actor_user_id, func.count()).where(*where).group_by(i.actor_user_id)
    )
    return {uid: int(n) for uid, n in rows.all() if uid is not None}


async def people(
    session: AsyncSession, actor: Actor, also: set[uuid.UUID]
) -> list[tuple[uuid.UUID, str, int | None]]:
    """(id, name, capacity) of the active users in the actor's scope (themselves, their
    team's members, or the organisation's) and of the users `also` names, by name."""
    in_scope = and_(User.status == "active", row_scope_clause(actor, [User.id]))
    wanted = or_(in_scope, User.id.in_(also)) if also else in_scope
    rows = await session.execute(
        select(User.id, User.full_name, User.capacity)
        .where(User.organization_id == actor.organization_id, wanted)
        .order_by(func.lower(User.full_name), User.id)
    )
    return [(uid, name, cap) for uid, name, cap in rows.all()]


# ---- alerts ----------------------------------------------------------------------------------


async def sla_alert_leads(
    session: AsyncSession, actor: Actor, state: str, now: datetime, limit: int
) -> list[tuple[uuid.UUID, str, datetime, datetime | None]]:
    """(id, name, deadline, reminder time) of leads in scope whose clock is `breached` or
    `at_risk` now, latest first by the time the alert arose (deadline / reminder)."""
    arose = Lead.sla_reminder_at if state == "at_risk" else Lead.sla_deadline
    rows = await session.execute(
        select(Lead.id, Lead.full_name, Lead.sla_deadline, Lead.sla_reminder_at)
        .where(*lead_scope_conditions(actor), *state_conditions(state, now))
        .order_by(arose.desc(), Lead.id)
        .limit(limit)
    )
    return [(i, n, d, r) for i, n, d, r in rows.all() if d is not None]


async def untouched_leads(
    session: AsyncSession, actor: Actor, open_keys: Sequence[str], cutoff: datetime, limit: int
) -> list[tuple[uuid.UUID, str, datetime]]:
    """(id, name, last touch) of open leads in scope last touched at or before `cutoff`,
    most recently touched first."""
    if not open_keys:
        return []
    # The last touch is the last contact, or the creation for a lead never contacted: two
    # ordered reads (one index each, stopping at `limit`) merged here, instead of sorting
    # every open lead by an expression no index holds.
    where = [*lead_scope_conditions(actor), Lead.status.in_(open_keys)]
    contacted = await session.execute(
        select(Lead.id, Lead.full_name, Lead.last_contacted_at)
        .where(*where, Lead.last_contacted_at <= cutoff)
        .order_by(Lead.last_contacted_at.desc(), Lead.id)
        .limit(limit)
    )
    never = await session.execute(
        select(Lead.id, Lead.full_name, Lead.created_at)
        .where(*where, Lead.last_contacted_at.is_(None), Lead.created_at <= cutoff)
        .order_by(Lead.created_at.desc(), Lead.id)
        .limit(limit)
    )
    rows = [(i, n, t) for i, n, t in [*contacted.all(), *never.all()] if t is not None]
    rows.sort(key=lambda r: (-r[2].timestamp(), str(r[0])))
    return rows[:limit]


async def failed_deliveries(
    session: AsyncSession, org_id: uuid.UUID, limit: int
) -> list[OutboxMessage]:
    """The organisation's failed outbox rows (jobs and emails), latest attempt first."""
    rows = await session.scalars(
        select(OutboxMessage)
        .where(OutboxMessage.organization_id == org_id, OutboxMessage.status == "failed")
        .order_by(OutboxMessage.next_attempt_at.desc(), OutboxMessage.id)
        .limit(limit)
    )
    return list(rows)


# ---- dashboard -------------------------------------------------------------------------------


async def stage_values(session: AsyncSession, actor: Actor) -> dict[str, tuple[int, float]]:
    """(leads, Σ value) per status of the live leads in scope (`value` as in the pipeline)."""
    value = json_number(Lead.custom, VALUE_FIELD, dialect_name(session))
    rows = await session.execute(
        select(Lead.status, func.count(), func.sum(value))
        .where(*lead_scope_conditions(actor))
        .group_by(Lead.status)
    )
    return {s: (int(n), float(v or 0)) for s, n, v in rows.all()}


async def status_counts(session: AsyncSession, actor: Actor) -> list[tuple[str, bool, int]]:
    """(status, assigned?, leads) of the live leads in scope."""
    assigned = Lead.assignee_id.is_not(None)
    rows = await session.execute(
        select(Lead.status, assigned.label("assigned"), func.count())
        .where(*lead_scope_conditions(actor))
        .group_by(Lead.status, assigned)
    )
    return [(s, bool(a), int(n)) for s, a, n in rows.all()]


async def created_since(
    session: AsyncSession, actor: Actor, day_start: datetime, week_start: datetime
) -> tuple[int, int]:
    """Leads in scope created since `day_start` and since `week_start`."""
    first = min(day_start, week_start)
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(case((Lead.created_at >= day_start, 1), else_=0)), 0),
                func.coalesce(func.sum(case((Lead.created_at >= week_start, 1), else_=0)), 0),
            ).where(*lead_scope_conditions(actor), Lead.created_at >= first)
        )
    ).one()
    return int(row[0]), int(row[1])


async def sla_counts(session: AsyncSession, actor: Actor, now: datetime) -> tuple[int, int]:
    """Leads in scope whose SLA clock is at risk, and breached, now."""
    at_risk = and_(*state_conditions("at_risk", now))
    breached = and_(*state_conditions("breached", now))
    row = (
        await session.execute(
            select(
                func.coalesce(func.sum(case((at_risk, 1), else_=0)), 0),
                func.coalesce(func.sum(case((breached, 1), else_=0)), 0),
            ).where(
                *lead_scope_conditions(actor),
                Lead.sla_deadline.is_not(None),
                Lead.sla_met_at.is_(None),
            )
        )
    ).one()
    return int(row[0]), int(row[1])


async def assignee_loads(
    session: AsyncSession,
    actor: Actor,
    open_keys: Sequence[str],
    won_keys: Sequence[str],
    now: datetime,
) -> dict[uuid.UUID, tuple[int, int, int]]:
    """(open, won, SLA breached now) leads in scope per assignee."""

    def count_if(cond: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((cond, 1), else_=0)), 0)

    in_open = Lead.status.in_(open_keys) if open_keys else false()
    in_won = Lead.status.in_(won_keys) if won_keys else false()
    rows = await session.execute(
        select(
            Lead.assignee_id,
            count_if(in_open),
            count_if(in_won),
            count_if(and_(*state_conditions("breached", now))),
        )
        .where(*lead_scope_conditions(actor), Lead.assignee_id.is_not(None))
        .group_by(Lead.assignee_id)
    )
    return {uid: (int(o), int(w), int(b)) for uid, o, w, b in rows.all()}


async def breached_by_assignee(
    session: AsyncSession, actor: Actor, now: datetime
) -> dict[uuid.UUID, int]:
    """Leads in scope whose SLA clock is breached now, per assignee (the clocks only)."""
    rows = await session.execute(
        select(Lead.assignee_id, func.count())
        .where(
            *lead_scope_conditions(actor),
            Lead.assignee_id.is_not(None),
            *state_conditions("breached", now),
        )
        .group_by(Lead.assignee_id)
    )
    return {uid: int(n) for uid, n in rows.all() if uid is not None}
