"""Every lead query. Organisation, soft-delete and row scope are applied here, once."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    Select,
    String,
    any_,
    func,
    literal,
    or_,
    select,
    true,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.authz.actor import Actor
from leadflow.authz.scopes import row_scope_clause
from leadflow.db.explain import Explain
from leadflow.db.fastpath import fetch_all, fetch_one
from leadflow.db.types import UTCDateTime
from leadflow.exceptions import ValidationFailed
from leadflow.kit.jsonarray import json_array_contains, json_array_elements
from leadflow.leads.schemas import LeadFilter, LeadRead
from leadflow.models.lead import Lead
from leadflow.models.lead_history import Consent

# sort key -> (column, nullable). Keyset cursors need non-null sort columns.
_SORT_COLUMNS: dict[str, tuple[Any, bool]] = {
    "created_at": (Lead.created_at, False),
    "updated_at": (Lead.updated_at, False),
    "name": (Lead.full_name, False),
    "score": (Lead.score, False),
    "status": (Lead.status, False),
    "last_contacted_at": (Lead.last_contacted_at, True),
    "next_action_at": (Lead.next_action_at, True),
}


def dialect_of(session: AsyncSession) -> str:
    """`sqlite` or `postgresql`."""
    return session.get_bind().dialect.name


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def scope_conditions(actor: Actor) -> list[ColumnElement[bool]]:
    """Organisation, not deleted, and the actor's row scope (assignee or creator)."""
    return [
        Lead.organization_id == actor.organization_id,
        Lead.deleted_at.is_(None),
        row_scope_clause(actor, [Lead.assignee_id, Lead.created_by]),
    ]


def filter_conditions(actor: Actor, f: LeadFilter, dialect: str) -> list[ColumnElement[bool]]:
    """WHERE clauses of the list filters, on top of the scope."""
    conds = scope_conditions(actor)
    if f.q:
        conds.append(Lead.search_text.like(f"%{_escape_like(f.q.lower())}%", escape="\\"))
    if f.status:
        # One array parameter on PostgreSQL: the statement's SQL then does not depend on how
        # many statuses were asked for, so it is compiled once.
        conds.append(
            Lead.status == any_(literal(f.status, ARRAY(String)))
            if dialect == "postgresql"
            else Lead.status.in_(f.status)
        )
    for tag in f.tag:
        conds.append(json_array_contains(Lead.tags, tag, dialect))
    if f.source:
        conds.append(Lead.source == f.source)
    if f.assigned_to == "me":
        conds.append(Lead.assignee_id == actor.user_id)
    elif f.assigned_to == "none":
        conds.append(Lead.assignee_id.is_(None))
    elif f.assigned_to:
        conds.append(Lead.assignee_id == uuid.UUID(f.assigned_to))
    if f.date_from:
        conds.append(Lead.created_at >= f.date_from)
    if f.date_to:
        conds.append(Lead.created_at <= f.date_to)
    if f.needs_action is not None:
        conds.append(Lead.needs_action.is_(f.needs_action))
    if f.import_batch_id:
        conds.append(Lead.import_batch_id == f.import_batch_id)
    for key, value in f.custom.items():
        conds.append(Lead.custom[key].as_string() == value)
    return conds


async def get(
    session: AsyncSession, actor: Actor, lead_id: uuid.UUID, *, for_update: bool = False
) -> Lead | None:
    """A live lead inside the actor's scope."""
    stmt = select(Lead).where(Lead.id == lead_id, *scope_conditions(actor))
    if for_update:
        stmt = stmt.with_for_update()
    return await session.scalar(stmt)


async def get_many(session: AsyncSession, actor: Actor, ids: Sequence[uuid.UUID]) -> list[Lead]:
    """Live leads among `ids` inside the actor's scope."""
    if not ids:
        return []
    rows = await session.scalars(select(Lead).where(Lead.id.in_(ids), *scope_conditions(actor)))
    return list(rows)


# The columns a list page shows (LeadRead). Selected as plain rows: building 50 ORM objects
# and reading them back attribute by attribute cost more than the query itself.
LIST_COLUMNS = tuple(Lead.__table__.c[name] for name in LeadRead.model_fields)


@dataclass(frozen=True, slots=True)
class ListResult:
    """A page of leads (as row mappings) with its total and the next keyset cursor."""

    items: list[dict[str, Any]]
    total: int
    total_is_estimate: bool
    next_cursor: str | None


def _order(sort: str) -> tuple[str, Any, bool, bool]:
    desc = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in _SORT_COLUMNS:
        raise ValidationFailed(
            f"Unknown sort '{sort}'",
            errors=[
                {"loc": ["query", "sort"], "msg": f"one of {', '.join(sorted(_SORT_COLUMNS))}"}
            ],
        )
    col, nullable = _SORT_COLUMNS[key]
    return key, col, desc, nullable


def _encode_cursor(sort: str, value: Any, lead_id: uuid.UUID) -> str:
    raw = value.isoformat() if isinstance(value, datetime) else value
    data = json.dumps({"s": sort, "v": raw, "id": str(lead_id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str, col: Any) -> tuple[Any, uuid.UUID]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if data["s"] != sort:
            raise ValueError("cursor belongs to another sort")
        value = data["v"]
        if isinstance(col.type, UTCDateTime):
            value = datetime.fromisoformat(value)
            if value.tzinfo is None:
                raise ValueError("cursor time has no timezone")
        elif not isinstance(value, col.type.python_type) or isinstance(value, bool):
            # A hand-made cursor must not reach the database with a value of another type.
            raise ValueError("cursor value has the wrong type")
        return value, uuid.UUID(data["id"])
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValidationFailed(
            "Invalid cursor", errors=[{"loc": ["query", "cursor"], "msg": str(exc)}]
        ) from None


async def count_capped(
    session: AsyncSession, conds: Sequence[ColumnElement[bool]], cap: int, *, selective: bool
) -> tuple[int, bool]:
    """Exact count up to `cap`; beyond it the planner's estimate (PostgreSQL) or `cap`.

    Counting every match of a broad filter at a million rows costs an index scan per page
    view, and without a recent VACUUM every counted row is also a heap visit. On PostgreSQL
    the planner is asked first (a millisecond); only filters it expects to match at most
    `cap` rows are counted exactly, and that count stops at `cap + 1`. Filters known to be
    selective (a text search) skip the planner and are counted directly.
    """
    is_pg = dialect_of(session) == "postgresql"
    if is_pg and not selective:
        estimate = await _planner_estimate(session, select(Lead.id).where(*conds))
        if estimate > cap:
            return estimate, True
    limited = select(Lead.id).where(*conds).limit(cap + 1).subquery()
    n = int(await session.scalar(select(func.count()).select_from(limited)) or 0)
    if n <= cap:
        return n, False
    return await _estimate_over_cap(session, conds, cap), True


async def _estimate_over_cap(
    session: AsyncSession, conds: Sequence[ColumnElement[bool]], cap: int
) -> int:
    """The total to report when more than `cap` rows match (an estimate, at least cap + 1)."""
    if dialect_of(session) != "postgresql":
        return cap
    return max(await _planner_estimate(session, select(Lead.id).where(*conds)), cap + 1)


async def _planner_estimate(session: AsyncSession, stmt: Select[Any]) -> int:
    row = await fetch_one(session, Explain(stmt))
    assert row is not None
    plan = row["QUERY PLAN"]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    return int(plan[0]["Plan"]["Plan Rows"])


def _ordering(col: Any, desc: bool, nullable: bool, tiebreak: Any) -> list[Any]:
    ordering = col.desc() if desc else col.asc()
    if nullable:
        ordering = ordering.nulls_last()
    return [ordering, tiebreak.desc() if desc else tiebreak.asc()]


async def _page(
    session: AsyncSession,
    conds: list[ColumnElement[bool]],
    f: LeadFilter,
    sort: str,
    col: Any,
    desc: bool,
    nullable: bool,
    limit: int,
    offset: int,
    cursor: str | None,
    count_cap: int,
    over_cap: bool = False,
) -> tuple[list[dict[str, Any]], int, bool]:
    """The page, then its total (skipped when a short page already tells it).

    `over_cap`: the caller already knows there are more than `count_cap` matches.
    """
    stmt = select(*LIST_COLUMNS).where(*conds)
    paged_from = offset
    if cursor:
        if nullable:
            raise ValidationFailed(
                f"Cursor paging is not available for sort '{sort}'",
                errors=[{"loc": ["query", "cursor"], "msg": "use offset for this sort"}],
            )
        value, last_id = _decode_cursor(cursor, sort, col)
        pair = tuple_(col, Lead.id)
        # Typed literals: the values must be bound exactly as the columns store them.
        bound = tuple_(literal(value, col.type), literal(last_id, Lead.id.type))
        stmt = stmt.where(pair < bound if desc else pair > bound)
        offset = 0
    stmt = stmt.order_by(*_ordering(col, desc, nullable, Lead.id))
    items = [dict(r) for r in await fetch_all(session, stmt.limit(limit).offset(offset))]
    short_page = len(items) < limit and (len(items) > 0 or paged_from == 0)
    if short_page and not cursor:
        # A short page (the first, or the last one reached by offset) already tells the
        # exact total: no count query.
        return items, paged_from + len(items), False
    if over_cap:
        return items, await _estimate_over_cap(session, conds, count_cap), True
    total, estimate = await count_capped(session, conds, count_cap, selective=bool(f.q))
    return items, total, estimate


async def _search_page(
    session: AsyncSession,
    conds: list[ColumnElement[bool]],
    col: Any,
    desc: bool,
    nullable: bool,
    limit: int,
    offset: int,
    count_cap: int,
) -> tuple[list[dict[str, Any]] | None, int]:
    """Page and exact total of a text search from one scan of its matches.

    A substring search is answered by the trigram index plus a visit to every matching row;
    counting and paging separately would do that twice. Here the matches (at most
    `count_cap + 1`, id and sort value only) are collected once, counted, and the page is
    cut from them. Returns `(None, 0)` when there are more matches than the cap: the
    caller then pages the usual way and reports an estimated total. Returns `(None, n)` with
    `n > count_cap` in that case, `(None, 0)` for an offset past the end.
    """
    m = select(Lead.id.label("mid"), col.label("sv")).where(*conds).limit(count_cap + 1).cte("m")
    total = select(func.count()).select_from(m).scalar_subquery().label("match_total")
    page = (
        select(m.c.mid, m.c.sv)
        .order_by(*_ordering(m.c.sv, desc, nullable, m.c.mid))
        .limit(limit)
        .offset(offset)
        .subquery("p")
    )
    stmt = (
        select(total, *LIST_COLUMNS)
        .select_from(page)
        .join(Lead, Lead.id == page.c.mid)
        .order_by(*_ordering(page.c.sv, desc, nullable, page.c.mid))
    )
    rows = [dict(r) for r in await fetch_all(session, stmt)]
    if not rows:
        if offset:
            return None, 0  # past the end: the count comes from the usual path
        return [], 0
    n = int(rows[0]["match_total"])
    if n > count_cap:
        return None, n
    for row in rows:
        del row["match_total"]
    return rows, n


async def list_leads(
    session: AsyncSession,
    actor: Actor,
    f: LeadFilter,
    *,
    sort: str,
    limit: int,
    offset: int,
    cursor: str | None,
    count_cap: int,
) -> ListResult:
    """One page of leads in scope, filtered and sorted."""
    _key, col, desc, nullable = _order(sort)
    conds = filter_conditions(actor, f, dialect_of(session))
    items: list[dict[str, Any]] | None = None
    matched = 0
    if f.q and not cursor:
        items, matched = await _search_page(
            session, conds, col, desc, nullable, limit, offset, count_cap
        )
        total, estimate = matched, False
    if items is None:
        items, total, estimate = await _page(
            session,
            conds,
            f,
            sort,
            col,
            desc,
            nullable,
            limit,
            offset,
            cursor,
            count_cap,
            over_cap=matched > count_cap,
        )
    next_cursor = None
    if not nullable and len(items) == limit:
        last = items[-1]
        next_cursor = _encode_cursor(sort, last[col.key], last["id"])
    return ListResult(items, total, estimate, next_cursor)


async def select_ids(
    session: AsyncSession, actor: Actor, f: LeadFilter, limit: int
) -> list[uuid.UUID]:
    """Ids of leads matching `f` in scope (at most `limit`)."""
    conds = filter_conditions(actor, f, dialect_of(session))
    rows = await session.scalars(select(Lead.id).where(*conds).order_by(Lead.id).limit(limit))
    return list(rows)


def export_query(actor: Actor, f: LeadFilter, sort: str, dialect: str) -> Select[Lead]:
    """The export statement (streamed by the caller)."""
    _, col, desc, nullable = _order(sort)
    ordering = col.desc() if desc else col.asc()
    if nullable:
        ordering = ordering.nulls_last()
    return select(Lead).where(*filter_conditions(actor, f, dialect)).order_by(ordering, Lead.id)


async def find_exact_duplicate(
    session: AsyncSession,
    org_id: uuid.UUID,
    *,
    email: str | None,
    phone: str | None,
    exclude_id: uuid.UUID | None = None,
) -> Lead | None:
    """A live lead of the organisation with the same email or phone."""
    matches = []
    if email:
        matches.append(Lead.email == email)
    if phone:
        matches.append(Lead.phone == phone)
    if not matches:
        return None
    stmt = select(Lead).where(
        Lead.organization_id == org_id, Lead.deleted_at.is_(None), or_(*matches)
    )
    if exclude_id is not None:
        stmt = stmt.where(Lead.id != exclude_id)
    return await session.scalar(stmt.order_by(Lead.created_at).limit(1))


async def duplicate_candidates(session: AsyncSession, actor: Actor, lead: Lead) -> list[Lead]:
    """Leads in scope sharing email, phone, last name or company with `lead` (max 500)."""
    shared = []
    if lead.email:
        shared.append(Lead.email == lead.email)
    if lead.phone:
        shared.append(Lead.phone == lead.phone)
    if lead.last_name:
        shared.append(Lead.last_name == lead.last_name)
    if lead.company:
        shared.append(Lead.company == lead.company)
    if not shared:
        return []
    rows = await session.scalars(
        select(Lead).where(*scope_conditions(actor), Lead.id != lead.id, or_(*shared)).limit(500)
    )
    return list(rows)


async def latest_consents(session: AsyncSession, lead_id: uuid.UUID) -> dict[str, Consent]:
    """The newest consent entry per channel."""
    rows = await session.scalars(
        select(Consent)
        .where(Consent.lead_id == lead_id)
        .order_by(Consent.created_at.desc(), Consent.id.desc())
    )
    latest: dict[str, Consent] = {}
    for row in rows:
        latest.setdefault(row.channel, row)
    return latest


async def consent_history(session: AsyncSession, lead_id: uuid.UUID) -> list[Consent]:
    """Every consent entry of a lead, newest first."""
    rows = await session.scalars(
        select(Consent)
        .where(Consent.lead_id == lead_id)
        .order_by(Consent.created_at.desc(), Consent.id.desc())
    )
    return list(rows)


async def tag_counts(session: AsyncSession, actor: Actor) -> list[tuple[str, int]]:
    """Tags used by leads in scope with their counts, most used first."""
    elements = json_array_elements(Lead.tags, dialect_of(session))
    value = elements.c.value
    stmt = (
        select(value, func.count())
        .select_from(Lead)
        .join(elements, true())  # implicitly lateral: one row per tag of each lead
        .where(*scope_conditions(actor))
        .group_by(value)
        .order_by(func.count().desc(), value)
    )
    return [(str(t), int(c)) for t, c in (await session.execute(stmt)).all()]


async def count_by_status(session: AsyncSession, actor: Actor) -> dict[str, int]:
    """Number of live leads in scope per status."""
    rows = await session.execute(
        select(Lead.status, func.count()).where(*scope_conditions(actor)).group_by(Lead.status)
    )
    return {s: int(c) for s, c in rows.all()}


async def count_with_status(session: AsyncSession, org_id: uuid.UUID, status: str) -> int:
    """Live leads of the organisation in `status` (any scope)."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(Lead)
            .where(Lead.organization_id == org_id, Lead.status == status, Lead.deleted_at.is_(None))
        )
        or 0
    )


async def needing_action(session: AsyncSession, actor: Actor, limit: int) -> list[Lead]:
    """Leads in scope that need action or were never analysed; overdue first, then soonest."""
    stmt = (
        select(Lead)
        .where(
            *scope_conditions(actor), or_(Lead.needs_action.is_(True), Lead.analyzed_at.is_(None))
        )
        .order_by(
            Lead.needs_action.desc(),
            Lead.next_action_at.asc().nulls_last(),
            Lead.created_at.desc(),
            Lead.id,
        )
        .limit(limit)
    )
    return list(await session.scalars(stmt))
