"""Every lead query. Organisation, soft-delete and row scope are applied here, once."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

from pydantic_core import from_json
from sqlalchemy import (
    JSON,
    BindParameter,
    Boolean,
    ColumnElement,
    Integer,
    Select,
    String,
    bindparam,
    func,
    insert,
    literal_column,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.authz.actor import Actor
from leadflow.authz.scopes import LEAD_OWNERS, scope_clause, scope_kind
from leadflow.authz.scopes import lead_scope_conditions as scope_conditions
from leadflow.db.dialect import (
    bulk_insert,
    copy_rows,
    dialect_name,
    is_postgres,
    json_array_contains,
    json_array_elements,
    one_of_param,
    update_by_id,
)
from leadflow.db.explain import Explain
from leadflow.db.fastpath import fetch_all, fetch_one
from leadflow.db.types import UTCDateTime
from leadflow.exceptions import ValidationFailed
from leadflow.kit.bounded import remember
from leadflow.kit.clock import clock
from leadflow.leads.registry import LEAD_CHILD_MODELS
from leadflow.leads.schemas import LeadFilter, LeadRead
from leadflow.models.assignment_rule import SlaPolicy
from leadflow.models.lead import Lead
from leadflow.models.lead_history import Consent, LeadAssignment, LeadStatusChange

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
# Statement shapes kept built (per process); a shape is which filters are present, so a few
# dozen cover real use.
_SHAPES = 256


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@dataclass(frozen=True, slots=True)
class _Where:
    """A lead WHERE clause: its shape (which conditions, hashable) and the values it binds.

    List statements are built once per shape with named bind parameters and then run with
    each request's values: building and cache-keying a SQLAlchemy statement cost more than
    running the indexed query it describes.
    """

    shape: tuple[Any, ...]
    params: dict[str, Any]


def _where(actor: Actor, f: LeadFilter | None, dialect: str) -> _Where:
    """Organisation, not deleted, the actor's row scope, then the list filters of `f`."""
    kind = scope_kind(actor)
    shape: list[Any] = [kind]
    params: dict[str, Any] = {"lf_org": actor.organization_id}
    if kind in ("own", "team"):
        params["lf_user"] = actor.user_id
    if kind == "team":
        params["lf_team"] = actor.team_id
    if f is None:
        return _Where(tuple(shape), params)
    if f.q:
        shape.append("q")
        params["lf_q"] = f"%{_escape_like(f.q.lower())}%"
    if f.status:
        # One array parameter on PostgreSQL: the SQL does not depend on how many statuses
        # were asked for. SQLite expands an IN list instead.
        shape.append(("status", dialect))
        params["lf_status"] = list(f.status)
    for i, tag in enumerate(f.tag):
        shape.append(("tag", dialect, i))
        params[f"lf_tag{i}"] = tag
    if f.source:
        shape.append("source")
        params["lf_source"] = f.source
    if f.assigned_to == "me":
        shape.append("assigned_me")
        params["lf_user"] = actor.user_id
    elif f.assigned_to == "none":
        shape.append("unassigned")
    elif f.assigned_to:
        shape.append("assigned_to")
        params["lf_assignee"] = uuid.UUID(f.assigned_to)
    if f.date_from:
        shape.append("date_from")
        params["lf_date_from"] = f.date_from
    if f.date_to:
        shape.append("date_to")
        params["lf_date_to"] = f.date_to
    if f.needs_action is not None:
        shape.append("needs_action")
        params["lf_needs_action"] = f.needs_action
    if f.import_batch_id:
        shape.append("import_batch")
        params["lf_batch"] = f.import_batch_id
    for i, (key, value) in enumerate(f.custom.items()):
        # The key is bound too: keys come from the query string, and a key in the shape
        # would let any client fill the statement caches.
        shape.append(("cf", i))
        params[f"lf_cfk{i}"] = key
        params[f"lf_cf{i}"] = value
    return _Where(tuple(shape), params)


def _conditions(
    shape: tuple[Any, ...], values: dict[str, Any] | None = None
) -> list[ColumnElement[bool]]:
    """The conditions of `shape` with named bind parameters.

    Without `values` the parameters are left open (for a statement kept per shape); with
    them they are bound here under unique names, for statements built once and combined
    with others.
    """

    def b(name: str, type_: Any = None, *, expanding: bool = False) -> BindParameter[Any]:
        if values is None:
            return bindparam(name, type_=type_, expanding=expanding)
        return bindparam(name, values[name], type_=type_, expanding=expanding, unique=True)

    kind, *filters = shape
    org = b("lf_org", Lead.organization_id.type)
    user = b("lf_user", Lead.assignee_id.type) if kind in ("own", "team") else None
    team = b("lf_team", Lead.assignee_id.type) if kind == "team" else None
    conds = [
        Lead.organization_id == org,
        Lead.deleted_at.is_(None),
        scope_clause(kind, LEAD_OWNERS, user=user, team=team, org=org),
    ]
    for token in filters:
        match token:
            case "q":
                conds.append(Lead.search_text.like(b("lf_q", String()), escape="\\"))
            case ("status", dialect):
                conds.append(
                    one_of_param(
                        Lead.status,
                        dialect,
                        lambda type_, expanding: b("lf_status", type_, expanding=expanding),
                    )
                )
            case ("tag", dialect, i):
                conds.append(json_array_contains(Lead.tags, b(f"lf_tag{i}", String()), dialect))
            case "source":
                conds.append(Lead.source == b("lf_source", String()))
            case "assigned_me":
                conds.append(Lead.assignee_id == b("lf_user", Lead.assignee_id.type))
            case "unassigned":
                conds.append(Lead.assignee_id.is_(None))
            case "assigned_to":
                conds.append(Lead.assignee_id == b("lf_assignee", Lead.assignee_id.type))
            case "date_from":
                conds.append(Lead.created_at >= b("lf_date_from", Lead.created_at.type))
            case "date_to":
                conds.append(Lead.created_at <= b("lf_date_to", Lead.created_at.type))
            case "needs_action":
                conds.append(Lead.needs_action == b("lf_needs_action", Boolean()))
            case "import_batch":
                conds.append(Lead.import_batch_id == b("lf_batch", Lead.import_batch_id.type))
            case ("cf", i):
                key = b(f"lf_cfk{i}", JSON.JSONStrIndexType())
                conds.append(Lead.custom[key].as_string() == b(f"lf_cf{i}", String()))
            case _:
                raise AssertionError(f"unknown filter {token!r}")
    return conds


def filter_conditions(actor: Actor, f: LeadFilter, dialect: str) -> list[ColumnElement[bool]]:
    """WHERE clauses of the list filters, on top of the scope (values bound inline)."""
    w = _where(actor, f, dialect)
    return _conditions(w.shape, w.params)


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


@dataclass(frozen=True, slots=True)
class _Sort:
    """A list order: a key of `_SORT_COLUMNS` and its direction (hashable, part of a shape)."""

    key: str
    desc: bool

    @property
    def col(self) -> Any:
        return _SORT_COLUMNS[self.key][0]

    @property
    def nullable(self) -> bool:
        return _SORT_COLUMNS[self.key][1]

    def order_by(self, col: Any, tiebreak: Any) -> list[Any]:
        """ORDER BY `col` in this direction (nulls last), then `tiebreak` the same way."""
        ordering = col.desc() if self.desc else col.asc()
        if self.nullable:
            ordering = ordering.nulls_last()
        return [ordering, tiebreak.desc() if self.desc else tiebreak.asc()]


def _order(sort: str) -> _Sort:
    key = sort.lstrip("-")
    if key not in _SORT_COLUMNS:
        raise ValidationFailed(
            f"Unknown sort '{sort}'",
            errors=[
                {"loc": ["query", "sort"], "msg": f"one of {', '.join(sorted(_SORT_COLUMNS))}"}
            ],
        )
    return _Sort(key, sort.startswith("-"))


def _encode_cursor(sort: str, value: Any, lead_id: uuid.UUID) -> str:
    raw = value.isoformat() if isinstance(value, datetime) else value
    data = json.dumps({"s": sort, "v": raw, "id": str(lead_id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str, sort: str, col: Any) -> tuple[Any, uuid.UUID]:
    try:
        data = from_json(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
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
        elif isinstance(value, int) and not -(2**31) <= value < 2**31:
            raise ValueError("cursor value is out of range")
        return value, uuid.UUID(data["id"])
    except (ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise ValidationFailed(
            "Invalid cursor", errors=[{"loc": ["query", "cursor"], "msg": str(exc)}]
        ) from None


def _int_param(name: str) -> BindParameter[int]:
    return bindparam(name, type_=Integer())


@lru_cache(maxsize=_SHAPES)
def _page_statement(shape: tuple[Any, ...], sort: _Sort, keyset: bool) -> Select[Any]:
    stmt = select(*LIST_COLUMNS).where(*_conditions(shape))
    if keyset:
        pair = tuple_(sort.col, Lead.id)
        after = tuple_(
            bindparam("lf_after_value", type_=sort.col.type),
            bindparam("lf_after_id", type_=Lead.id.type),
        )
        stmt = stmt.where(pair < after if sort.desc else pair > after)
    return (
        stmt.order_by(*sort.order_by(sort.col, Lead.id))
        .limit(_int_param("lf_limit"))
        .offset(_int_param("lf_offset"))
    )


@lru_cache(maxsize=_SHAPES)
def _count_statement(shape: tuple[Any, ...]) -> Select[Any]:
    # A constant, not the id: the filter's index alone can then answer the count (SQLite
    # reads no table row; PostgreSQL may scan the index only).
    limited = (
        select(literal_column("1").label("one"))
        .where(*_conditions(shape))
        .limit(_int_param("lf_cap"))
        .subquery()
    )
    return select(func.count().label("n")).select_from(limited)


@lru_cache(maxsize=_SHAPES)
def _estimate_statement(shape: tuple[Any, ...]) -> Explain:
    return Explain(select(Lead.id).where(*_conditions(shape)))


@lru_cache(maxsize=_SHAPES)
def _search_statement(shape: tuple[Any, ...], sort: _Sort) -> Select[Any]:
    """Page and match count of a text search from one scan (see `_search_page`)."""
    m = (
        select(Lead.id.label("mid"), sort.col.label("sv"))
        .where(*_conditions(shape))
        .limit(_int_param("lf_cap"))
        .cte("m")
    )
    total = select(func.count()).select_from(m).scalar_subquery().label("match_total")
    page = (
        select(m.c.mid, m.c.sv)
        .order_by(*sort.order_by(m.c.sv, m.c.mid))
        .limit(_int_param("lf_limit"))
        .offset(_int_param("lf_offset"))
        .subquery("p")
    )
    return (
        select(total, *LIST_COLUMNS)
        .select_from(page)
        .join(Lead, Lead.id == page.c.mid)
        .order_by(*sort.order_by(page.c.sv, page.c.mid))
    )


async def _count_capped(
    session: AsyncSession, w: _Where, cap: int, *, selective: bool
) -> tuple[int, bool]:
    """Exact count up to `cap`; beyond it the planner's estimate (PostgreSQL) or `cap`.

    Counting every match of a broad filter at a million rows costs an index scan per page
    view, and without a recent VACUUM every counted row is also a heap visit. On PostgreSQL
    the planner is asked first (a millisecond); only filters it expects to match at most
    `cap` rows are counted exactly, and that count stops at `cap + 1`. Filters known to be
    selective (a text search) skip the planner and are counted directly.
    """
    if is_postgres(session) and not selective:
        estimate = await _planner_estimate(session, w)
        if estimate > cap:
            return estimate, True
    row = await fetch_one(session, _count_statement(w.shape), {**w.params, "lf_cap": cap + 1})
    n = int(row["n"]) if row is not None else 0
    if n <= cap:
        return n, False
    return await _estimate_over_cap(session, w, cap), True


async def _estimate_over_cap(session: AsyncSession, w: _Where, cap: int) -> int:
    """The total to report when more than `cap` rows match (an estimate, at least cap + 1)."""
    if not is_postgres(session):
        return cap
    return max(await _planner_estimate(session, w), cap + 1)


# The planner's estimate of a filter, reused for a few seconds per filter (organisation,
# scope and values included in the key). It only changes when the table is analysed, and a
# broad filter's first page (the lead list as opened) asks for it on every view: reusing it
# saves a round trip and a planning of the statement (~1 ms of a 5 ms page at 1M leads).
ESTIMATE_SECONDS = 10.0
_ESTIMATES_KEPT = 4096
_estimates: dict[tuple[Any, str], tuple[datetime, int]] = {}


async def _planner_estimate(session: AsyncSession, w: _Where) -> int:
    key = (w.shape, repr(sorted(w.params.items())))
    now = clock.now()
    hit = _estimates.get(key)
    if hit is not None and (now - hit[0]).total_seconds() < ESTIMATE_SECONDS:
        return hit[1]
    row = await fetch_one(session, _estimate_statement(w.shape), w.params)
    assert row is not None
    plan = row["QUERY PLAN"]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    n = int(plan[0]["Plan"]["Plan Rows"])
    remember(_estimates, key, (now, n), _ESTIMATES_KEPT)
    return n


@dataclass(frozen=True, slots=True)
class _Paging:
    """Where a page starts and how long it is; `cursor` replaces `offset` when given."""

    limit: int
    offset: int
    cursor: str | None
    count_cap: int


async def _page(
    session: AsyncSession,
    w: _Where,
    f: LeadFilter,
    sort: str,
    order: _Sort,
    paging: _Paging,
    over_cap: bool = False,
) -> tuple[list[dict[str, Any]], int, bool]:
    """The page, then its total (skipped when a short page already tells it).

    `over_cap`: the caller already knows there are more than `count_cap` matches.
    """
    params = {**w.params, "lf_limit": paging.limit, "lf_offset": paging.offset}
    if paging.cursor:
        if order.nullable:
            raise ValidationFailed(
                f"Cursor paging is not available for sort '{sort}'",
                errors=[{"loc": ["query", "cursor"], "msg": "use offset for this sort"}],
            )
        value, last_id = _decode_cursor(paging.cursor, sort, order.col)
        params.update(lf_after_value=value, lf_after_id=last_id, lf_offset=0)
    stmt = _page_statement(w.shape, order, bool(paging.cursor))
    items = await fetch_all(session, stmt, params)
    short_page = len(items) < paging.limit and (len(items) > 0 or paging.offset == 0)
    if short_page and not paging.cursor:
        # A short page (the first, or the last one reached by offset) already tells the
        # exact total: no count query.
        return items, paging.offset + len(items), False
    if over_cap:
        return items, await _estimate_over_cap(session, w, paging.count_cap), True
    total, estimate = await _count_capped(session, w, paging.count_cap, selective=bool(f.q))
    return items, total, estimate


async def _search_page(
    session: AsyncSession, w: _Where, order: _Sort, paging: _Paging
) -> tuple[list[dict[str, Any]] | None, int]:
    """Page and exact total of a text search from one scan of its matches.

    A substring search is answered by the trigram index plus a visit to every matching row;
    counting and paging separately would do that twice. Here the matches (at most
    `count_cap + 1`, id and sort value only) are collected once, counted, and the page is
    cut from them. Returns `(None, n)` with `n > count_cap` when there are more matches
    than the cap (the caller then pages the usual way and reports an estimated total), and
    `(None, 0)` for an offset past the end.
    """
    params = {
        **w.params,
        "lf_cap": paging.count_cap + 1,
        "lf_limit": paging.limit,
        "lf_offset": paging.offset,
    }
    rows = await fetch_all(session, _search_statement(w.shape, order), params)
    if not rows:
        if paging.offset:
            return None, 0  # past the end: the count comes from the usual path
        return [], 0
    n = int(rows[0]["match_total"])
    if n > paging.count_cap:
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
    order = _order(sort)
    w = _where(actor, f, dialect_name(session))
    paging = _Paging(limit, offset, cursor, count_cap)
    items: list[dict[str, Any]] | None = None
    matched = 0
    if f.q and not cursor:
        items, matched = await _search_page(session, w, order, paging)
        total, estimate = matched, False
    if items is None:
        items, total, estimate = await _page(
            session, w, f, sort, order, paging, over_cap=matched > count_cap
        )
    next_cursor = None
    if not order.nullable and len(items) == limit:
        last = items[-1]
        next_cursor = _encode_cursor(sort, last[order.col.key], last["id"])
    return ListResult(items, total, estimate, next_cursor)


async def select_ids(
    session: AsyncSession, actor: Actor, f: LeadFilter, limit: int
) -> list[uuid.UUID]:
    """Ids of leads matching `f` in scope (at most `limit`)."""
    conds = filter_conditions(actor, f, dialect_name(session))
    rows = await session.scalars(select(Lead.id).where(*conds).order_by(Lead.id).limit(limit))
    return list(rows)


def export_query(
    actor: Actor, f: LeadFilter, sort: str, dialect: str, *, columns: Sequence[Any]
) -> Select[Any]:
    """The export statement selecting `columns` (streamed by the caller)."""
    order = _order(sort)
    return (
        select(*columns)
        .where(*filter_conditions(actor, f, dialect))
        .order_by(*order.order_by(order.col, Lead.id))
    )


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
    elements = json_array_elements(Lead.tags, dialect_name(session))
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


async def needing_action(session: AsyncSession, actor: Actor, limit: int) -> list[Lead]:
    """Leads in scope that need action or were never analysed: the flagged ones first, each
    part by next action (overdue first, none last), then longest waiting."""
    # Two ordered reads instead of one `needs_action OR analyzed_at IS NULL`: no index serves
    # the OR, so it sorted every matching lead; each part walks an index in the wanted order
    # and stops at `limit` (the flagged leads come first either way).
    order = (Lead.next_action_at.asc().nulls_last(), Lead.created_at, Lead.id)
    flagged = select(Lead).where(*scope_conditions(actor), Lead.needs_action.is_(True))
    found = list(await session.scalars(flagged.order_by(*order).limit(limit)))
    if len(found) < limit:
        never = select(Lead).where(
            *scope_conditions(actor),
            Lead.needs_action.is_(False),
            Lead.analyzed_at.is_(None),
        )
        found += await session.scalars(never.order_by(*order).limit(limit - len(found)))
    return found


async def move_children(
    session: AsyncSession, from_ids: Sequence[uuid.UUID], to_id: uuid.UUID
) -> None:
    """Re-point every child row (history, consents, tasks, …) of `from_ids` to `to_id`."""
    for model in LEAD_CHILD_MODELS:
        await session.execute(
            update(model)
            .where(model.lead_id.in_(from_ids))
            .values(lead_id=to_id)
            .execution_options(synchronize_session=False)
        )


# ---- set-based writes (the leads service's `bulk` door) ------------------------------------

# Fields a record may set on an existing lead (the derived ones are recomputed).
WRITABLE = (
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
)
# The columns a new lead is written with set-based (COPY on PostgreSQL).
INSERT_COLUMNS = (
    "id",
    "organization_id",
    *WRITABLE,
    "full_name",
    "search_text",
    "stages_reached",
    "assignee_id",
    "created_by",
    "import_batch_id",
    "version",
    "created_at",
    "updated_at",
)


_JSON_COLUMNS = ("tags", "custom")


def lead_copy_rows(rows: list[dict[str, Any]]) -> list[Sequence[Any]]:
    """Lead records as `insert_leads` copies them (built ahead by an import)."""
    return copy_rows(rows, INSERT_COLUMNS, _JSON_COLUMNS)


def layout_key(rec: Mapping[str, Any]) -> str:
    """Where a new lead goes among the leads written with it: by surname (else company,
    else name), so that namesakes share table pages.

    A text search checks every match on its row (no trigram index can answer it alone); a
    name's matches written in the order they arrived sit one to a page, written together
    they share a few. An import writes its leads a chunk at a time in this order, and a
    search for a name reads about a quarter of the pages (docs/performance.md). Only the
    physical order changes: ids, timestamps and events keep the order of the input.
    """
    name = rec.get("last_name") or rec.get("company") or rec.get("full_name") or ""
    return str(name).casefold()


async def insert_leads(
    session: AsyncSession,
    rows: list[dict[str, Any]],
    copied: list[Sequence[Any]] | None = None,
) -> None:
    """Insert lead records (COPY on PostgreSQL), each carrying every `INSERT_COLUMNS` key, in
    `layout_key` order; `copied`: the same rows from `lead_copy_rows`."""
    if len(rows) > 1:
        order = sorted(range(len(rows)), key=lambda i: layout_key(rows[i]))
        rows = [rows[i] for i in order]
        if copied is not None:
            copied = [copied[i] for i in order]
    await bulk_insert(
        session, Lead, rows, columns=INSERT_COLUMNS, json_columns=_JSON_COLUMNS, copied=copied
    )


_STATUS_COLUMNS = (
    "id",
    "organization_id",
    "lead_id",
    "actor_user_id",
    "from_status",
    "to_status",
    "reason",
    "created_at",
)


def status_copy_rows(rows: list[dict[str, Any]]) -> list[Sequence[Any]]:
    """Status history rows as `insert_status_changes` copies them."""
    return copy_rows(rows, _STATUS_COLUMNS)


async def insert_status_changes(
    session: AsyncSession,
    rows: list[dict[str, Any]],
    copied: list[Sequence[Any]] | None = None,
    *,
    new_leads: bool = False,
) -> None:
    """Insert status history rows (COPY on PostgreSQL); `copied`: from `status_copy_rows`;
    `new_leads`: the rows' leads were inserted by this transaction."""
    await bulk_insert(
        session,
        LeadStatusChange,
        rows,
        columns=_STATUS_COLUMNS,
        copied=copied,
        written_here=("lead_id",) if new_leads else (),
    )


async def insert_assignments(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Insert assignment history rows (one executemany)."""
    if rows:
        await session.execute(insert(LeadAssignment), rows)


async def rows_for_update(
    session: AsyncSession, actor: Actor, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """Live leads among `ids` inside the actor's scope, as column dicts, row-locked."""
    if not ids:
        return {}
    rows = await session.execute(
        select(Lead.__table__).where(Lead.id.in_(ids), *scope_conditions(actor)).with_for_update()
    )
    return {r["id"]: dict(r) for r in rows.mappings().all()}


async def update_rows(
    session: AsyncSession, columns: Sequence[str], rows: list[dict[str, Any]]
) -> None:
    """Write `columns` of many leads by id in one executemany (every row carries them all)."""
    await update_by_id(session, Lead, columns, rows)


async def soft_delete_where(
    session: AsyncSession, actor: Actor, now: datetime, *conditions: ColumnElement[bool]
) -> list[uuid.UUID]:
    """Soft-delete the live leads in the actor's scope that meet `conditions`; their ids."""
    rows = await session.execute(
        update(Lead)
        .where(*scope_conditions(actor), *conditions)
        .values(deleted_at=now, updated_at=now, version=Lead.version + 1)
        .returning(Lead.id)
        .execution_options(synchronize_session=False)
    )
    return list(rows.scalars())


async def sla_policy_name(
    session: AsyncSession, org_id: uuid.UUID, policy_id: uuid.UUID
) -> str | None:
    """The name of an SLA policy of the organisation (None once it is deleted)."""
    return await session.scalar(
        select(SlaPolicy.name).where(SlaPolicy.id == policy_id, SlaPolicy.organization_id == org_id)
    )
