"""Creating admins and the demo organisation (used by the CLI)."""

from __future__ import annotations

import random
from datetime import timedelta

from sqlalchemy import func, select

from leadflow.db.engine import Database, session_scope
from leadflow.kit.clock import utcnow
from leadflow.kit.passwords import MIN_PASSWORD_LENGTH, hash_password_async
from leadflow.leads.effects import derive
from leadflow.models.lead import Lead, reached_with
from leadflow.models.lead_history import Consent, LeadStatusChange
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
    password_hash = await hash_password_async(password)
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
                password_hash=password_hash,
                role_id=role.id,
                status="active",
            )
        )


async def create_demo(db: Database) -> list[tuple[str, str, str]]:
    """The demo organisation with an admin, a manager and two counselors in one team."""
    organization = await _org(db, DEMO_ORG)
    pw_hash = await hash_password_async(DEMO_PASSWORD)
    async with session_scope(db) as session:
        team = await orgs.repository.get_team_by_name(session, organization.id, "Vertrieb Nord")
        if team is None:
            team = Team(organization_id=organization.id, name="Vertrieb Nord")
            session.add(team)
            await session.flush()
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
    await _demo_leads(db, organization)
    return [(r, e, DEMO_PASSWORD) for r, e, _ in DEMO_USERS]


FIRST = (
    "Lea",
    "Jonas",
    "Mia",
    "Felix",
    "Hannah",
    "Lukas",
    "Emma",
    "Paul",
    "Sophie",
    "Leon",
    "Anna",
    "Max",
    "Laura",
    "Tim",
    "Julia",
    "Olivia",
    "James",
    "Emily",
    "Oliver",
    "Grace",
)
LAST = (
    "Kramer",
    "Müller",
    "Schmidt",
    "Schneider",
    "Fischer",
    "Weber",
    "Meyer",
    "Wagner",
    "Becker",
    "Hoffmann",
    "Schäfer",
    "Koch",
    "Smith",
    "Brown",
    "Taylor",
    "Wilson",
    "Evans",
)
COMPANIES = (
    "Kramer Consulting",
    "Nordlicht GmbH",
    "Bergmann & Söhne",
    "Alpen Solar AG",
    "Hafenblick KG",
    "Brightside Ltd",
    "Greenfield Partners",
    None,
    None,
    None,
)
SOURCES = ("website", "messe", "empfehlung", "linkedin", "google_ads", "newsletter")
CHANNELS = ("WhatsApp", "email", "phone", "sms")
TAGS = ("vip", "b2b", "b2c", "messe-2026", "newsletter", "rückruf", "hot", "cold")
NOTES = (
    "Hat Demo gesehen, wartet auf Angebot",
    "Bitte im Januar zurückrufen",
    "Interested in the premium plan, call back next week",
    "Kein Interesse mehr",
    "Budget bestätigt, Entscheidung Ende des Monats",
    "Asked for a case study",
    None,
    None,
)
STAGES = ("new", "new", "contacted", "contacted", "qualified", "proposal", "won", "lost")


async def _demo_leads(db: Database, organization: Organization, count: int = 500) -> None:
    """About 500 varied leads across the demo users (only once)."""
    async with session_scope(db) as session:
        existing = await session.scalar(
            select(func.count()).select_from(Lead).where(Lead.organization_id == organization.id)
        )
        if existing:
            return
        members = list(
            await session.scalars(select(User).where(User.organization_id == organization.id))
        )
        owners = [u for u in members if not u.email.startswith("admin@")]
        rng = random.Random(2026)  # same demo on every machine
        now = utcnow()
        for i in range(count):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            created = now - timedelta(days=rng.randint(0, 180), minutes=rng.randint(0, 1440))
            owner = rng.choice(owners)
            status = rng.choice(STAGES)
            contacted = created + timedelta(days=rng.randint(0, 20)) if rng.random() < 0.8 else None
            lead = Lead(
                organization_id=organization.id,
                first_name=first,
                last_name=last,
                email=f"{first}.{last}.{i}@example.com".lower()
                .replace("ü", "ue")
                .replace("ä", "ae")
                .replace("ö", "oe"),
                phone=f"+49151{rng.randint(1000000, 9999999)}" if rng.random() < 0.7 else None,
                company=rng.choice(COMPANIES),
                channel=rng.choice(CHANNELS),
                source=rng.choice(SOURCES),
                utm_source=rng.choice(("google", "linkedin", None)),
                status=status,
                tags=sorted(set(rng.sample(TAGS, rng.randint(0, 3)))),
                assignee_id=owner.id if rng.random() < 0.85 else None,
                created_by=owner.id,
                disg_type=rng.choice(("D", "I", "S", "G", None)),
                notes=rng.choice(NOTES),
                custom={},
                score=rng.randint(0, 100),
                needs_action=status not in ("won", "lost") and rng.random() < 0.4,
                next_action_at=now + timedelta(days=rng.randint(-3, 14))
                if status not in ("won", "lost")
                else None,
                last_contacted_at=contacted if contacted and contacted < now else None,
                created_at=created,
                updated_at=created,
            )
            derive(lead)
            lead.stages_reached = reached_with(None, status)
            session.add(lead)
            await session.flush()
            session.add(
                LeadStatusChange(
                    organization_id=organization.id,
                    lead_id=lead.id,
                    actor_user_id=owner.id,
                    from_status=None,
                    to_status=status,
                    reason="demo",
                    created_at=created,
                )
            )
            if rng.random() < 0.5:
                session.add(
                    Consent(
                        organization_id=organization.id,
                        lead_id=lead.id,
                        actor_user_id=owner.id,
                        channel=rng.choice(("email", "whatsapp", "sms", "phone")),
                        granted=rng.random() < 0.85,
                        source="demo import",
                        created_at=created,
                    )
                )
