"""Lead counts per organisation — by local creation day, and by current stage — kept by the
database itself (PostgreSQL triggers on `leads`) so analytics read thousands of rows instead
of a million leads. SQLite has no time zones in SQL and no statement triggers: there the
tables stay empty and analytics count the leads directly (see analytics/rollups.py).

Writers append signed deltas (`lead_rollup_deltas`, insert-only: no row is contended); a
periodic job folds them into `lead_rollup_days` and `lead_rollup_stages`. A reader sums
rollup and deltas. `NO_USER` and `NO_SOURCE`
stand for NULL so the dimensions can form a primary key.
"""

from __future__ import annotations

import uuid
from datetime import date
from decimal import Decimal

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, Numeric, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from leadflow.db.base import Base

NO_USER = uuid.UUID(int=0)
NO_SOURCE = ""


def _org_id(*, primary_key: bool = False) -> Mapped[uuid.UUID]:
    return mapped_column(
        Uuid,
        ForeignKey("organizations.id", ondelete="CASCADE"),
        primary_key=primary_key,
        nullable=False,
    )


class LeadRollupDay(Base):
    """Live leads per local creation day, assignee and creator (lead volume, leads that
    existed at a date, the size of a period's cohort)."""

    __tablename__ = "lead_rollup_days"

    organization_id: Mapped[uuid.UUID] = _org_id(primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    assignee_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    leads: Mapped[int] = mapped_column(Integer, nullable=False)


class LeadRollupStage(Base):
    """Live leads per assignee, creator, source and stage, with the sum of their numeric
    custom field `value` (NULL: none had one) — the active pipeline."""

    __tablename__ = "lead_rollup_stages"

    organization_id: Mapped[uuid.UUID] = _org_id(primary_key=True)
    assignee_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    source: Mapped[str] = mapped_column(String(120), primary_key=True)
    status: Mapped[str] = mapped_column(String(40), primary_key=True)
    leads: Mapped[int] = mapped_column(Integer, nullable=False)
    value: Mapped[Decimal | None] = mapped_column(Numeric)


class LeadRollupDelta(Base):
    """A change not yet folded into the two rollups, in all their dimensions (+n when leads
    enter a combination, -n when they leave it)."""

    __tablename__ = "lead_rollup_deltas"
    __table_args__ = (Index("ix_lead_rollup_deltas_org", "organization_id"),)

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    organization_id: Mapped[uuid.UUID] = _org_id()
    # The lead's creation date in the organisation's time zone (lead_rollup_zones).
    day: Mapped[date] = mapped_column(Date, nullable=False)
    assignee_id: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    created_by: Mapped[uuid.UUID] = mapped_column(Uuid, nullable=False)
    source: Mapped[str] = mapped_column(String(120), nullable=False)
    status: Mapped[str] = mapped_column(String(40), nullable=False)
    leads: Mapped[int] = mapped_column(Integer, nullable=False)
    value: Mapped[Decimal | None] = mapped_column(Numeric)


class LeadRollupZone(Base):
    """The time zone an organisation's rollup counts days in. No row: no rollup (analytics
    count the leads); a zone other than the calendar's: being rebuilt, likewise."""

    __tablename__ = "lead_rollup_zones"

    organization_id: Mapped[uuid.UUID] = _org_id(primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64), nullable=False)
