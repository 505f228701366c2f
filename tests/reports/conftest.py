"""A small dataset every reports test reads: one organisation (Europe/Berlin), a team, four
people and five live leads with known values, plus a deleted lead and another organisation's
lead that no report may show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.models.activity import Interaction
from leadflow.models.import_batch import ImportBatch
from leadflow.models.lead import Lead
from leadflow.models.lead_history import LeadStatusChange
from leadflow.models.organization import Organization
from leadflow.organizations import repository as org_repo
from tests.fixtures.factories import Factory, Member


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """An aware UTC time."""
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@dataclass
class Data:
    """The dataset's organisation, people and leads."""

    org: Organization
    admin: Member
    manager: Member
    rep: Member  # counselor in the manager's team
    other_rep: Member  # counselor without a team
    anna: Lead
    ben: Lead
    cara: Lead
    formula: Lead
    dora: Lead
    batch: ImportBatch


async def grant_reports(session: AsyncSession, org: Organization, role: str) -> None:
    """Let a role use reports and export them (counselors cannot by default)."""
    row = await org_repo.get_role_by_name(session, org.id, role)
    assert row is not None
    row.permissions = [*row.permissions, "reports:read", "leads:export"]
    await session.commit()


@pytest.fixture
async def data(factory: Factory, session: AsyncSession) -> Data:
    """The dataset (see the module docstring)."""
    org = await factory.org("Reports GmbH")
    await grant_reports(session, org, "counselor")
    team = await factory.team(org)
    admin = await factory.member(org)
    manager = await factory.member(org, "manager", team=team)
    rep = await factory.member(org, "counselor", team=team)
    other_rep = await factory.member(org, "counselor")
    rep.user.full_name, other_rep.user.full_name = "Rita Rep", "Otto Other"
    batch = ImportBatch(
        organization_id=org.id,
        created_by=admin.user.id,
        status="done",
        filename="messe.csv",
        created_at=at(2026, 2, 9, 23, 30),  # 2026-02-10 in Berlin
    )
    session.add(batch)
    await session.commit()

    anna = await factory.lead(
        org,
        first_name="Anna",
        last_name="Alt",
        source="web",
        status="new",
        assignee_id=rep.user.id,
        score=10,
        created_at=at(2026, 1, 15, 10, 0),
        sla_deadline=at(2026, 1, 15, 12, 0),
    )
    # 23:30 UTC on Jan 31 is Feb 1 in Berlin: February in the organisation's time zone.
    ben = await factory.lead(
        org,
        first_name="Ben",
        last_name="Bau",
        source="web",
        status="won",
        assignee_id=rep.user.id,
        score=30,
        created_at=at(2026, 1, 31, 23, 30),
    )
    cara = await factory.lead(
        org,
        first_name="Cara",
        last_name="Chen",
        source="fair",
        status="qualified",
        assignee_id=other_rep.user.id,
        score=50,
        created_at=at(2026, 2, 10, 9, 0),
        import_batch_id=batch.id,
    )
    formula = await factory.lead(
        org,
        first_name='=HYPERLINK("http://evil.example","x")',
        last_name="+1",
        source="web",
        status="lost",
        created_by=admin.user.id,
        score=0,
        created_at=at(2026, 3, 1, 8, 0),
    )
    dora = await factory.lead(
        org,
        first_name="Dora",
        last_name="Dahl",
        source="fair",
        status="won",
        assignee_id=other_rep.user.id,
        score=70,
        created_at=at(2026, 2, 20, 9, 0),
        import_batch_id=batch.id,
    )
    await factory.lead(org, first_name="Gone", source="web", deleted_at=at(2026, 2, 1, 0, 0))
    elsewhere = await factory.org()
    await factory.lead(elsewhere, first_name="Foreign", source="web")
    session.add_all(
        [
            LeadStatusChange(
                organization_id=org.id, lead_id=ben.id, to_status="new", created_at=ben.created_at
            ),
            LeadStatusChange(
                organization_id=org.id,
                lead_id=ben.id,
                from_status="new",
                to_status="won",
                created_at=at(2026, 2, 5, 12, 0),
            ),
            LeadStatusChange(
                organization_id=org.id,
                lead_id=dora.id,
                from_status="qualified",
                to_status="won",
                created_at=at(2026, 3, 2, 9, 0),
            ),
            *(
                Interaction(
                    organization_id=org.id,
                    lead_id=lead.id,
                    type="call",
                    direction="outbound",
                    occurred_at=at(2026, 2, day, 9, 0),
                )
                for lead, day in ((anna, 1), (anna, 2), (ben, 3), (cara, 4))
            ),
        ]
    )
    await session.commit()
    return Data(org, admin, manager, rep, other_rep, anna, ben, cara, formula, dora, batch)
