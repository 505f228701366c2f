"""Plain data passed to and returned by the AI providers (no ORM, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class LeadContext:
    """What a provider may know about a lead; every text field is untrusted data."""

    first_name: str | None = None
    last_name: str | None = None
    company: str | None = None
    email: str | None = None
    phone: str | None = None
    channel: str | None = None  # free text: "WhatsApp", "E-Mail", "phone", …
    status: str | None = None  # stage key or an imported free-form (German) status
    notes: str | None = None
    disg_type: str | None = None  # D, I, S, G or C (G and C are the same type)
    last_contacted_at: datetime | None = None  # aware
    created_at: datetime | None = None
    open_tasks: int = 0
    overdue_tasks: int = 0
    language: str | None = None  # "de" / "en"


@dataclass(frozen=True, slots=True)
class Analysis:
    """Stage, urgency, next step and score of one lead."""

    status: str  # new, contacted, qualified, proposal, won or lost
    needs_action: bool
    next_action_at: datetime | None  # aware UTC
    next_action_description: str | None
    score: int  # 0..100
    reasons: list[str]  # short, in the lead's language


@dataclass(frozen=True, slots=True)
class Draft:
    """A message proposal for a human to review and send."""

    channel: str  # whatsapp, email, sms or phone (a call script)
    language: str  # de or en
    subject: str | None  # email only
    body: str
