"""Message templates of the local provider: DISG style × channel × language.

German uses "du" on WhatsApp and SMS and "Sie" in email and call scripts (an instruction can
switch). Each DISG type has its own greeting, opener, call to action and sign-off; the middle
of the message comes from topic sentences chosen from the lead's notes and stage. Templates are
filled with `str.format` in a single call, so lead data inside a value is never re-expanded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Register = Literal["du", "sie", "en"]

# Topics, in the order they are told in a message (demo happened before the offer is due).
DEMO = "demo"
OFFER_WAIT = "offer_wait"
OFFER_SENT = "offer_sent"
CALLBACK = "callback"
INTERESTED = "interested"
INTRO = "intro"
CHECKIN = "checkin"
LOST = "lost"
WON = "won"
CLOSING_TOPICS = frozenset((LOST, WON))  # no call to action after these

TOPIC_SENTENCES: dict[Register, dict[str, str]] = {
    "du": {
        DEMO: "Schön, dass du dir die Demo angesehen hast.",
        OFFER_WAIT: "Dein Angebot bekommst du in Kürze von mir.",
        OFFER_SENT: "Hattest du schon Gelegenheit, dir das Angebot anzusehen?",
        CALLBACK: "Du hattest um einen Rückruf gebeten – ich melde mich gern telefonisch.",
        INTERESTED: "Du hattest Interesse gezeigt – ich habe ein paar Infos für dich.",
        INTRO: "Ich wollte mich einmal persönlich bei dir melden.",
        CHECKIN: "Ich wollte kurz hören, wie es bei dir aussieht.",
        LOST: "Ich respektiere, dass es gerade nicht passt – wenn sich etwas ändert, melde dich.",
        WON: "Danke für dein Vertrauen – ich freue mich auf die Zusammenarbeit.",
    },
    "sie": {
        DEMO: "Schön, dass Sie sich die Demo angesehen haben.",
        OFFER_WAIT: "Ihr Angebot erhalten Sie in Kürze von mir.",
        OFFER_SENT: "Hatten Sie schon Gelegenheit, sich das Angebot anzusehen?",
        CALLBACK: "Sie hatten um einen Rückruf gebeten – ich melde mich gern telefonisch.",
        INTERESTED: "Sie hatten Interesse gezeigt – ich habe einige Informationen für Sie.",
        INTRO: "Ich möchte mich einmal persönlich bei Ihnen vorstellen.",
        CHECKIN: "Ich wollte kurz nachfragen, wie es bei Ihnen aussieht.",
        LOST: "Ich respektiere, dass es gerade nicht passt – melden Sie sich gern, wenn sich "
        "etwas ändert.",
        WON: "Vielen Dank für Ihr Vertrauen – ich freue mich auf die Zusammenarbeit.",
    },
    "en": {
        DEMO: "Great that you took the time to see the demo.",
        OFFER_WAIT: "I'll send your offer over shortly.",
        OFFER_SENT: "Have you had a chance to look at the offer?",
        CALLBACK: "You asked me to call you back – happy to give you a ring.",
        INTERESTED: "You mentioned you were interested – I've got some information for you.",
        INTRO: "I wanted to reach out and introduce myself personally.",
        CHECKIN: "I wanted to check in and see how things are going.",
        LOST: "I understand the timing isn't right – if anything changes, just let me know.",
        WON: "Thank you for your trust – I'm looking forward to working with you.",
    },
}

# Email subjects by the most important topic (offer first: it is what the lead waits for).
SUBJECT_PRIORITY = (OFFER_WAIT, OFFER_SENT, CALLBACK, DEMO, INTERESTED, WON, LOST, INTRO, CHECKIN)
SUBJECTS: dict[Register, dict[str, str]] = {
    "du": {
        OFFER_WAIT: "Dein Angebot",
        OFFER_SENT: "Kurze Rückfrage zu deinem Angebot",
        CALLBACK: "Dein Rückrufwunsch",
        DEMO: "Nach der Demo: nächste Schritte",
        INTERESTED: "Infos für dich",
        WON: "Willkommen an Bord",
        LOST: "Kurze Rückmeldung",
        INTRO: "Kurze Vorstellung",
        CHECKIN: "Kurze Rückfrage",
    },
    "sie": {
        OFFER_WAIT: "Ihr Angebot",
        OFFER_SENT: "Kurze Rückfrage zu Ihrem Angebot",
        CALLBACK: "Ihr Rückrufwunsch",
        DEMO: "Nach der Demo: nächste Schritte",
        INTERESTED: "Informationen für Sie",
        WON: "Willkommen an Bord",
        LOST: "Kurze Rückmeldung",
        INTRO: "Kurze Vorstellung",
        CHECKIN: "Kurze Rückfrage",
    },
    "en": {
        OFFER_WAIT: "Your offer",
        OFFER_SENT: "A quick question about your offer",
        CALLBACK: "Your callback request",
        DEMO: "After the demo: next steps",
        INTERESTED: "Information for you",
        WON: "Welcome aboard",
        LOST: "A quick note",
        INTRO: "A quick introduction",
        CHECKIN: "Checking in",
    },
}

# Reference to the last contact; "recent" means within a week.
CONTEXT: dict[Register, dict[str, str]] = {
    "du": {
        "recent": "Danke noch mal für unser Gespräch am {date}.",
        "stale": "Seit unserem Gespräch am {date} ist etwas Zeit vergangen.",
    },
    "sie": {
        "recent": "Vielen Dank noch einmal für unser Gespräch am {date}.",
        "stale": "Seit unserem Gespräch am {date} ist etwas Zeit vergangen.",
    },
    "en": {
        "recent": "Thanks again for our conversation on {date}.",
        "stale": "It's been a little while since we spoke on {date}.",
    },
}

# Structured facts for the G/C style ("Zur Übersicht"/"For your overview").
DETAIL_LABELS: dict[str, dict[str, str]] = {
    "de": {
        "company": "Unternehmen",
        "last": "Letzter Kontakt",
        "none": "noch keiner",
        "state": "Stand",
        "next": "Nächster Schritt",
    },
    "en": {
        "company": "Company",
        "last": "Last contact",
        "none": "none yet",
        "state": "Status",
        "next": "Next step",
    },
}
DETAIL_STATE: dict[str, dict[str, str]] = {
    "de": {
        OFFER_WAIT: "Angebot in Vorbereitung",
        OFFER_SENT: "Angebot versendet",
        DEMO: "Demo gesehen",
        CALLBACK: "Rückruf gewünscht",
        INTERESTED: "Interesse gezeigt",
        WON: "Auftrag erteilt",
        LOST: "derzeit kein Bedarf",
        INTRO: "erster Kontakt",
        CHECKIN: "in Abstimmung",
    },
    "en": {
        OFFER_WAIT: "offer in preparation",
        OFFER_SENT: "offer sent",
        DEMO: "demo completed",
        CALLBACK: "callback requested",
        INTERESTED: "interest shown",
        WON: "order placed",
        LOST: "no current need",
        INTRO: "first contact",
        CHECKIN: "in discussion",
    },
}
DETAIL_NEXT: dict[str, dict[str, str]] = {
    "de": {
        OFFER_WAIT: "Zusendung des Angebots",
        OFFER_SENT: "Rückmeldung zum Angebot",
        DEMO: "offene Fragen klären",
        CALLBACK: "Telefonat",
        INTERESTED: "Informationen zusenden",
        WON: "Start der Zusammenarbeit",
        LOST: "keiner geplant",
        INTRO: "kurzes Kennenlerngespräch",
        CHECKIN: "kurzes Gespräch",
    },
    "en": {
        OFFER_WAIT: "sending the offer",
        OFFER_SENT: "feedback on the offer",
        DEMO: "clarifying open questions",
        CALLBACK: "a phone call",
        INTERESTED: "sending information",
        WON: "getting started",
        LOST: "none planned",
        INTRO: "a short introductory call",
        CHECKIN: "a short call",
    },
}


@dataclass(frozen=True, slots=True)
class Style:
    """One DISG type's phrases in one register. `{name}`/`{full}` are the lead's names."""

    chat_greeting: str  # WhatsApp/SMS
    mail_greeting: str
    opener: str  # placed before the context sentence; may be empty
    cta: str
    sms_cta: str
    sign_off: str  # email
    tone: str  # hint for the call script
    chat_emoji: str = ""  # appended on WhatsApp only (never SMS or email)


_DE_TONES = {
    "D": "direkt zum Punkt kommen, Ergebnis und nächsten Schritt klären, kein Small Talk",
    "I": "locker und herzlich einsteigen, Begeisterung zeigen, Raum für Ideen lassen",
    "S": "ruhig und freundlich, Sicherheit geben, keinen Druck aufbauen",
    "G": "sachlich und präzise, Fakten und Details bereithalten, Fragen gründlich beantworten",
    None: "freundlich und klar, zuhören und den nächsten Schritt vereinbaren",
}

STYLES: dict[tuple[str | None, Register], Style] = {
    # D: direct and brief, one clear call to action.
    ("D", "du"): Style(
        "Hallo {name},",
        "Hallo {name},",
        "Kurz und knapp:",
        "Passt dir morgen ein 10-Minuten-Call? Dann klären wir den nächsten Schritt.",
        "Kurzer Call morgen?",
        "Beste Grüße",
        _DE_TONES["D"],
    ),
    ("D", "sie"): Style(
        "Hallo {name},",
        "Guten Tag {full},",
        "Kurz und knapp:",
        "Passt Ihnen morgen ein 10-Minuten-Telefonat? Dann klären wir den nächsten Schritt.",
        "Kurzes Telefonat morgen?",
        "Beste Grüße",
        _DE_TONES["D"],
    ),
    ("D", "en"): Style(
        "Hi {name},",
        "Hi {name},",
        "Straight to the point:",
        "Does a 10-minute call tomorrow work? Then we'll settle the next step.",
        "Quick call tomorrow?",
        "Best",
        "get to the point, focus on results and the next step, no small talk",
    ),
    # I: warm and enthusiastic; exclamation marks, emoji on WhatsApp.
    ("I", "du"): Style(
        "Hey {name}! 👋",
        "Hallo {name}!",
        "",
        "Lass uns gern kurz telefonieren – ich freue mich riesig auf deine Ideen!",
        "Ich freue mich riesig auf deine Antwort!",
        "Herzliche Grüße",
        _DE_TONES["I"],
        " 😊",
    ),
    ("I", "sie"): Style(
        "Hallo {name}!",
        "Hallo {full}!",
        "",
        "Ich freue mich riesig auf Ihre Rückmeldung und den Austausch mit Ihnen!",
        "Ich freue mich riesig auf Ihre Antwort!",
        "Herzliche Grüße",
        _DE_TONES["I"],
        " 😊",
    ),
    ("I", "en"): Style(
        "Hey {name}! 👋",
        "Hi {name}!",
        "",
        "Let's have a quick chat – I'm so excited to hear your ideas!",
        "So excited to hear from you!",
        "Warm regards",
        "start warm and friendly, show enthusiasm, leave room for ideas",
        " 😊",
    ),
    # S: calm and reassuring, no pressure.
    ("S", "du"): Style(
        "Hallo {name},",
        "Hallo {name},",
        "",
        "Nimm dir ganz in Ruhe Zeit – ohne Zeitdruck. Wenn du Fragen hast, bin ich für dich da.",
        "Ganz in Ruhe – melde dich, wann es dir passt.",
        "Viele Grüße",
        _DE_TONES["S"],
    ),
    ("S", "sie"): Style(
        "Hallo {name},",
        "Hallo {full},",
        "",
        "Nehmen Sie sich ganz in Ruhe Zeit – ohne Zeitdruck. Bei Fragen bin ich gern für Sie da.",
        "Ganz in Ruhe – melden Sie sich, wann es Ihnen passt.",
        "Viele Grüße",
        _DE_TONES["S"],
    ),
    ("S", "en"): Style(
        "Hi {name},",
        "Dear {name},",
        "",
        "Take your time – there's no pressure at all. If you have any questions, I'm here to help.",
        "No pressure – reply whenever it suits you.",
        "Kind regards",
        "calm and friendly, reassure, no pressure",
    ),
    # G/C: precise and factual; a structured overview follows the opener.
    ("G", "du"): Style(
        "Hallo {name},",
        "Hallo {name},",
        "",
        "Sag mir gern, welche Details du noch brauchst – ich schicke dir die Unterlagen.",
        "Welche Details brauchst du noch?",
        "Mit freundlichen Grüßen",
        _DE_TONES["G"],
    ),
    ("G", "sie"): Style(
        "Hallo {name},",
        "Guten Tag {full},",
        "",
        "Teilen Sie mir gern mit, welche Details Sie noch benötigen – ich sende Ihnen die "
        "Unterlagen zu.",
        "Welche Details benötigen Sie noch?",
        "Mit freundlichen Grüßen",
        _DE_TONES["G"],
    ),
    ("G", "en"): Style(
        "Hello {name},",
        "Dear {name},",
        "",
        "Let me know which details you need and I'll send you the documents.",
        "Which details do you need?",
        "Best regards",
        "factual and precise, have facts and details ready, answer questions thoroughly",
    ),
    # Unknown type: neutral and friendly.
    (None, "du"): Style(
        "Hallo {name},",
        "Hallo {name},",
        "",
        "Sag mir gern Bescheid, wenn du Fragen hast.",
        "Melde dich gern.",
        "Viele Grüße",
        _DE_TONES[None],
    ),
    (None, "sie"): Style(
        "Hallo {name},",
        "Guten Tag {full},",
        "",
        "Melden Sie sich gern, wenn Sie Fragen haben.",
        "Melden Sie sich gern.",
        "Viele Grüße",
        _DE_TONES[None],
    ),
    (None, "en"): Style(
        "Hi {name},",
        "Hi {name},",
        "",
        "Let me know if you have any questions.",
        "Just let me know.",
        "Best regards",
        "friendly and clear, listen and agree on the next step",
    ),
}

OVERVIEW = {"de": "Zur Übersicht:", "en": "For your overview:"}
SCRIPT = {
    "de": {
        "title": "Gesprächsleitfaden: {full}",
        "greeting": "Begrüßung",
        "reason": "Anlass",
        "goal": "Ziel",
        "tone": "Ton",
        "intro": "Kurz vorstellen.",
    },
    "en": {
        "title": "Call script: {full}",
        "greeting": "Opening",
        "reason": "Reason",
        "goal": "Goal",
        "tone": "Tone",
        "intro": "Introduce yourself briefly.",
    },
}
