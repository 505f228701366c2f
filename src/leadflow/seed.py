"""Creating admins and the demo organisation (used by the CLI)."""

from __future__ import annotations

from sqlalchemy import select

from leadflow.auth.passwords import MIN_PASSWORD_LENGTH, hash_password
from leadflow.db.engine import Database, session_scope
from leadflow.models.organization import Organization
from leadflow.models.team import Team
from leadflow.models.user import User
from leadflow.organizations import service as orgs
from leadflow.users import repository as users

DEMO_ORG = "Demo Vertrieb GmbH"
DEMO_PASSWORD = "leadflow-demo-2026"
DEMO_USERS = (
    ("admin", "admin@demo.example.com", "Anna Admin"),
    ("manager", "manager@demo.example.com", "Markus Manager"),
    ("counselor", "lena@demo.example.com", "Lena Berater"),
    ("counselor", "tom@demo.example.com", "Tom Consultant"),
)


async def _org(db: Database, name: str) -> Organization:
    async with session_scope(db) as session:
        org = await session.scalar(select(Organization).where(Organization.name == name))
        if org is None:
            org = await orgs.create_organization(session, name=name)
        return org


async def create_admin(
    db: Database, *, email: str, password: str, org: str, full_name: str
) -> None:
    """An admin in organisation `org` (created if missing)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValueError(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    organization = await _org(db, org)
    async with session_scope(db) as session:
        if await users.get_by_email(session, email):
            raise ValueError(f"a user with email {email} already exists")
        role = await orgs.repository.get_role_by_name(session, organization.id, "admin")
        assert role is not None
        session.add(
            User(
                organization_id=organization.id,
                email=email.lower(),
                full_name=full_name,
                password_hash=hash_password(password),
                role_id=role.id,
                status="active",
            )
        )


async def create_demo(db: Database) -> list[tuple[str, str, str]]:
    """The demo organisation with an admin, a manager and two counselors in one team."""
    organization = await _org(db, DEMO_ORG)
    async with session_scope(db) as session:
        team = await orgs.repository.get_team_by_name(session, organization.id, "Vertrieb Nord")
        if team is None:
            team = Team(organization_id=organization.id, name="Vertrieb Nord")
            session.add(team)
            await session.flush()
        pw_hash = hash_password(DEMO_PASSWORD)
        for role_name, email, name in DEMO_USERS:
            if await users.get_by_email(session, email):
                continue
            role = await orgs.repository.get_role_by_name(session, organization.id, role_name)
            assert role is not None
            session.add(
                User(
                    organization_id=organization.id,
                    email=email,
                    full_name=name,
                    password_hash=pw_hash,
                    role_id=role.id,
                    status="active",
                    team_id=None if role_name == "admin" else team.id,
                )
            )
    return [(r, e, DEMO_PASSWORD) for r, e, _ in DEMO_USERS]
