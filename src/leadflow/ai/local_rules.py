"""Rules of the local provider: normalising, language detection, note keywords, lead analysis.

The rules themselves are documented in `leadflow.ai.local`. Everything here is pure and
deterministic; regular expressions are compiled at import and note scans are cached, because
`analyze_batch` is meant to handle a million leads in one call.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Literal, NamedTuple

from leadflow.ai.types import Analysis, LeadContext

Language = Literal["de", "en"]

STAGES = ("new", "contacted", "qualified", "proposal", "won", "lost")
OPEN_STAGES = frozenset(("new", "contacted", "qualified", "proposal"))
# Same weights as the default pipeline (organizations.service.DEFAULT_STAGES).
STAGE_PROBABILITY = {"new": 10, "contacted": 20, "qualified": 40, "proposal": 60, "won": 100}
STAGE_NAMES: dict[str, dict[str, str]] = {
    "de": {
        "new": "Neu",
        "contacted": "Kontaktiert",
        "qualified": "Qualifiziert",
        "proposal": "Angebot",
        "won": "Gewonnen",
        "lost": "Verloren",
    },
    "en": {
        "new": "new",
        "contacted": "contacted",
        "qualified": "qualified",
        "proposal": "proposal",
        "won": "won",
        "lost": "lost",
    },
}

STALE_AFTER = timedelta(days=14)  # an open lead without contact for longer needs a follow-up
FOLLOW_UP_BUSINESS_DAYS = 3  # planned follow-up after a recent contact
_ONE_DAY = timedelta(days=1)
_DAY_SECONDS = 86400

# --------------------------------------------------------------------------- text helpers

# Control, format (bidi overrides, zero-width), surrogate and private-use characters: they can
# hide or reorder text in a draft, so they never reach the output.
_UNSAFE_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co"))
_SPACES = re.compile(r"\s+")


def clean_text(value: str | None, max_len: int = 200) -> str:
    """One line of printable text: unsafe characters removed, whitespace collapsed, truncated."""
    if not value:
        return ""
    text = "".join(
        " " if c in "\t\n\r" else c
        for c in value
        if c in "\t\n\r" or unicodedata.category(c) not in _UNSAFE_CATEGORIES
    )
    text = _SPACES.sub(" ", text).strip()
    if len(text) > max_len:
        text = text[: max_len - 1].rstrip() + "…"
    return text


def fold(text: str) -> str:
    """Lower-case without accents ("Rückruf" → "ruckruf"; "ß" → "ss") for keyword matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def as_utc(value: datetime) -> datetime:
    """Aware UTC; naive values are taken to be UTC already (the database stores UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def add_business_days(start: datetime, days: int) -> datetime:
    """`start` moved by `days` Monday–Friday days (public holidays are not considered)."""
    current = start
    while days > 0:
        current += _ONE_DAY
        if current.weekday() < 5:
            days -= 1
    return current


def format_date(value: datetime, language: str, *, now: datetime | None = None) -> str:
    """ "20.11." / "20 Nov", with the year when it differs from `now`'s (or when `now` is None)."""
    value = as_utc(value)
    with_year = now is None or as_utc(now).year != value.year
    if language == "en":
        text = f"{value.day} {value.strftime('%b')}"
        return f"{text} {value.year}" if with_year else text
    text = f"{value.day:02d}.{value.month:02d}."
    return f"{text}{value.year}" if with_year else text


# --------------------------------------------------------------------------- normalising

_STATUS_WORDS: dict[str, tuple[str, ...]] = {
    "new": ("new", "neu", "offen", "open", "lead", "eingang", "unbearbeitet", "not contacted"),
    "contacted": (
        "contacted",
        "kontaktiert",
        "in kontakt",
        "angeschrieben",
        "angerufen",
        "in bearbeitung",
        "in progress",
        "follow up",
        "nachfassen",
    ),
    "qualified": (
        "qualified",
        "qualifiziert",
        "interessiert",
        "interested",
        "interesse",
        "demo",
        "termin",
        "termin vereinbart",
        "meeting",
    ),
    "proposal": (
        "proposal",
        "angebot",
        "angebot gesendet",
        "angebot verschickt",
        "angebot erstellt",
        "offer",
        "offer sent",
        "quote",
        "quote sent",
        "proposal sent",
        "verhandlung",
        "negotiation",
    ),
    "won": (
        "won",
        "closed won",
        "gewonnen",
        "kunde",
        "customer",
        "abschluss",
        "auftrag",
        "auftrag erteilt",
        "vertrag unterschrieben",
        "signed",
    ),
    "lost": (
        "lost",
        "closed lost",
        "verloren",
        "kein interesse",
        "not interested",
        "no interest",
        "abgesagt",
        "abgelehnt",
        "declined",
        "disqualified",
        "disqualifiziert",
    ),
}
_STATUS_LOOKUP = {word: stage for stage, words in _STATUS_WORDS.items() for word in words}
_STATUS_SEPARATORS = re.compile(r"[\s_\-./]+")


@lru_cache(maxsize=1024)
def normalize_status(raw: str | None) -> str | None:
    """The stage key (new … lost) for an English or German status word; None when unknown."""
    if raw is None:
        return None
    # "Closed-Won", "closed_won" and " Angebot  gesendet " all become one spaced key.
    key = _STATUS_SEPARATORS.sub(" ", fold(raw)).strip()
    return _STATUS_LOOKUP.get(key)


_CHANNEL_WORDS: dict[str, tuple[str, ...]] = {
    "whatsapp": ("whatsapp", "wa", "whats app", "whatsapp business"),
    "sms": ("sms", "text", "text message", "textnachricht", "kurznachricht"),
    "phone": ("phone", "telefon", "tel", "call", "anruf", "mobile", "mobil", "handy"),
    "email": ("email", "e mail", "mail", "emails", "newsletter"),
}
_CHANNEL_LOOKUP = {word: channel for channel, words in _CHANNEL_WORDS.items() for word in words}


def normalize_channel(raw: str | None) -> str:
    """whatsapp, email, sms or phone; "email" when unknown or empty.

    Email is the default because it is the most widely usable written channel and an email
    draft (with subject and sign-off) reads acceptably even if the lead prefers another one.
    """
    if not raw:
        return "email"
    key = _STATUS_SEPARATORS.sub(" ", fold(raw)).strip()
    return _CHANNEL_LOOKUP.get(key, "email")


@lru_cache(maxsize=64)
def normalize_disg(raw: str | None) -> str | None:
    """D, I, S or G (C is the English name of G); None when missing or unknown."""
    if not raw:
        return None
    letter = raw.strip().upper()[:1]
    if letter == "C":
        return "G"
    return letter if letter in ("D", "I", "S", "G") else None


def disg_letter(disg: str, language: str) -> str:
    """The letter to show: G is "Gewissenhaft" in German, C ("Conscientious") in English."""
    return "C" if disg == "G" and language == "en" else disg


@lru_cache(maxsize=256)
def normalize_language(raw: str | None) -> Language | None:
    """ "de"/"en" from codes like "de-DE", "en_US", "Deutsch", "English"; None otherwise."""
    if not raw:
        return None
    value = fold(raw).strip()
    if value.startswith(("de", "german", "ger")):
        return "de"
    if value.startswith(("en", "eng")):
        return "en"
    return None


# --------------------------------------------------------------------------- language


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Only words that are (almost) never used in the other language: "in", "an", "was", "will",
# "war", "hey", "am", "so" and "also" exist in both and would only add noise.
_DE_WORDS = _words(
    """
    der die das den dem des ein eine einen einem einer und oder aber nicht kein keine keinen
    ist sind hat haben hatte wird werden ich du er sie wir ihr mich mir dich dir uns euch
    ihnen ihm mit auf für fur von zu zum zur bei nach noch schon auch wie wer wo warum wann
    bitte danke im ins vom dass wenn weil mehr sehr nur gern gerne soll sollte kann könnte
    möchte mochte wartet warten gesehen angebot rückruf zurückrufen interesse nächste
    nächster nächsten schritt woche monat ende heute morgen gestern schreib schreibe
    schreiben nachricht entwurf zusammenfassung kunde kundin termin gespräch hallo ja nein
    fuer moechte
    """
)
_EN_WORDS = _words(
    """
    the a and or but not no is are were has have had would should could can i you he she we
    they it me him her us them my your his our their this that these those with for of on at
    from to by about please thanks thank waiting wants asked interested call back next week
    month today tomorrow yesterday write draft message summary summarize offer quote what
    how why when who which do does did step recommend hello hi yes there just
    """
)
_WORD = re.compile(r"[^\W\d_]+")
_UMLAUTS = re.compile(r"[äöüß]")


def detect_language(*texts: str | None) -> Language | None:
    """German or English by stopword counts (umlauts count as German); None if undecided."""
    de = en = 0
    for text in texts:
        if not text:
            continue
        lowered = text.lower()
        for word in _WORD.findall(lowered):
            if word in _DE_WORDS:
                de += 1
            elif word in _EN_WORDS:
                en += 1
        de += 2 * len(_UMLAUTS.findall(lowered))
    if de > en:
        return "de"
    if en > de:
        return "en"
    return None


# --------------------------------------------------------------------------- note keywords

# Signals found in notes. One alternation with named groups, scanned left to right: where two
# alternatives start at the same place the earlier one wins, so negated phrases ("not
# interested", "noch nicht unterschrieben") are listed before the positive words they contain.
LOST = "lost"
WON = "won"
OFFER_SENT = "offer_sent"
OFFER_WAIT = "offer_wait"
CALLBACK = "callback"
BUDGET = "budget"
DEMO = "demo"
URGENT = "urgent"
INTERESTED = "interested"
ENGAGED = "engaged"

_SIGNAL_PATTERNS: tuple[tuple[str, str], ...] = (
    ("negated", r"nicht (?:mehr )?(?:unterschrieben|unterzeichnet)|not (?:yet )?signed|unsigned"),
    (
        LOST,
        r"kein(?:e|en)? (?:interesse|bedarf)|nicht (?:mehr )?interessiert"
        r"|(?:no longer|not) interested|no interest|abgesagt|abgelehnt|declined|verloren"
        r"|deal lost|closed lost",
    ),
    (
        WON,
        r"unterschrieben|unterzeichnet|\bsigned\b|auftrag (?:erteilt|erhalten|bestatigt)"
        r"|closed won|deal closed|hat gekauft|purchased",
    ),
    (
        OFFER_SENT,
        r"angebot (?:ist |wurde )?(?:gesendet|verschickt|geschickt|versendet|raus|ubermittelt)"
        r"|(?:offer|quote|proposal) (?:was |has been )?sent"
        r"|sent (?:the |an |a |our )?(?:offer|quote|proposal)",
    ),
    (
        OFFER_WAIT,
        r"warte[nt]? (?:noch )?auf (?:das |ein |unser |sein |ihr |dein )?angebot"
        r"|(?:mochte|will|braucht|wunscht|benotigt|bittet um|fragt nach) (?:noch )?"
        r"(?:ein |das |einem )?angebot"
        r"|angebot (?:angefragt|angefordert|gewunscht|erbeten)|angebotsanfrage"
        r"|waiting (?:for|on) (?:a |an |the |our |his |her |their )?(?:quote|offer|proposal)"
        r"|(?:wants|needs|requested|asked for|asks for|would like) (?:a |an |the |our )?"
        r"(?:quote|offer|proposal)|(?:quote|offer|proposal) requested",
    ),
    (
        CALLBACK,
        r"r(?:u|ue)ckruf|zur(?:u|ue)ckrufen|ruft? (?:\w+ )?zur(?:u|ue)ck|bitte anrufen"
        r"|call (?:me |him |her |them |us )?back|call-back|callback"
        r"|ring (?:me |him |her |them )?back|please call",
    ),
    (
        BUDGET,
        r"budget (?:ist |is )?(?:bestatigt|freigegeben|vorhanden|genehmigt|steht|confirmed"
        r"|approved|available)",
    ),
    (DEMO, r"\bdemo|vorfuhrung|prasentation|presentation|webinar"),
    (URGENT, r"dringend|eilig|\basap\b|urgent|so schnell wie moglich|as soon as possible"),
    (INTERESTED, r"interessiert|interesse|interested|interest in|sehr interessant"),
    (
        ENGAGED,
        r"case stud|fallstudie|referenz|pricing|preisliste|\bpreise|price list|testzugang"
        r"|\btrial\b|entscheidung|decision",
    ),
)
_SIGNALS = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _SIGNAL_PATTERNS))


_SIGNAL_POINTS = {
    OFFER_WAIT: 15,
    OFFER_SENT: 10,
    DEMO: 10,
    INTERESTED: 10,
    BUDGET: 10,
    CALLBACK: 5,
    URGENT: 5,
    ENGAGED: 5,
}


class NoteScan(NamedTuple):
    """Keyword signals of one notes text."""

    signals: frozenset[str]
    terminal: str | None  # the last-mentioned of "won"/"lost": notes are usually chronological
    language: Language | None
    points: int  # score contribution of the signals (capped)


_EMPTY_SCAN = NoteScan(frozenset(), None, None, 0)


@lru_cache(maxsize=16384)
def scan_notes(notes: str | None) -> NoteScan:
    """Signals in `notes` (cached: imported leads often share the same few notes)."""
    if not notes:
        return _EMPTY_SCAN
    found: set[str] = set()
    terminal: str | None = None
    for match in _SIGNALS.finditer(fold(notes)):
        name = match.lastgroup
        if name is None or name == "negated":
            continue
        found.add(name)
        if name in (WON, LOST):
            terminal = name
    points = min(30, sum(_SIGNAL_POINTS.get(s, 0) for s in found))
    return NoteScan(frozenset(found), terminal, detect_language(notes), points)


def infer_stage(scan: NoteScan, contacted: bool) -> str:
    """The stage implied by note keywords, else contacted/new from whether contact happened."""
    if scan.terminal is not None:
        return scan.terminal
    signals = scan.signals
    if OFFER_WAIT in signals or OFFER_SENT in signals:
        return "proposal"
    if DEMO in signals or INTERESTED in signals or BUDGET in signals:
        return "qualified"
    return "contacted" if contacted else "new"


def lead_language(lead: LeadContext) -> Language:
    """lead.language, else detected from the notes, else German."""
    return normalize_language(lead.language) or scan_notes(lead.notes).language or "de"


# --------------------------------------------------------------------------- analysis

# Short labels of note signals, used in reasons ("Notiz: …") and summaries.
NOTE_LABELS: dict[str, dict[str, str]] = {
    "de": {
        LOST: "kein Interesse",
        WON: "Abschluss/Vertrag unterschrieben",
        OFFER_SENT: "Angebot gesendet",
        OFFER_WAIT: "wartet auf Angebot",
        CALLBACK: "Rückruf gewünscht",
        BUDGET: "Budget bestätigt",
        DEMO: "Demo erwähnt",
        URGENT: "dringend",
        INTERESTED: "Interesse bekundet",
        ENGAGED: "konkrete Nachfrage",
    },
    "en": {
        LOST: "not interested",
        WON: "deal closed/contract signed",
        OFFER_SENT: "offer sent",
        OFFER_WAIT: "waiting for an offer",
        CALLBACK: "callback requested",
        BUDGET: "budget confirmed",
        DEMO: "demo mentioned",
        URGENT: "urgent",
        INTERESTED: "interest shown",
        ENGAGED: "specific enquiry",
    },
}
SIGNAL_ORDER = (OFFER_WAIT, OFFER_SENT, DEMO, CALLBACK, BUDGET, INTERESTED, URGENT, ENGAGED)


def note_labels(scan: NoteScan, language: str) -> list[str]:
    """Labels of the signals in `scan`: the deciding won/lost first, then by importance."""
    labels = NOTE_LABELS["en" if language == "en" else "de"]
    found = [labels[scan.terminal]] if scan.terminal is not None else []
    found.extend(labels[s] for s in SIGNAL_ORDER if s in scan.signals)
    return found


_TEXT: dict[str, dict[str, str]] = {
    "de": {
        "stage": "Status: {stage}",
        "stage_notes": "Status aus Notiz: {stage}",
        "stage_contact": "Status (abgeleitet): {stage}",
        "note": "Notiz: {label}",
        "no_contact": "Noch kein Kontakt",
        "contact_today": "Letzter Kontakt heute",
        "contact_one": "Letzter Kontakt vor 1 Tag",
        "contact_days": "Letzter Kontakt vor {days} Tagen",
        "overdue": "{n} überfällige Aufgabe(n)",
        "open_tasks": "{n} offene Aufgabe(n)",
        "disg": "DISG-Typ: {disg}",
        "closed": "Abgeschlossen – keine Aktion nötig",
        "do_check_won": "Status prüfen: laut Notiz gewonnen",
        "do_check_lost": "Status prüfen: laut Notiz kein Interesse",
        "do_overdue": "Überfällige Aufgaben erledigen",
        "do_callback": "Zurückrufen",
        "do_offer": "Angebot senden",
        "do_first": "Erstkontakt aufnehmen",
        "do_urgent": "Dringend melden",
        "do_follow": "Nachfassen",
        "do_follow_offer": "Zum Angebot nachfassen",
    },
    "en": {
        "stage": "Stage: {stage}",
        "stage_notes": "Stage from notes: {stage}",
        "stage_contact": "Stage (inferred): {stage}",
        "note": "Notes: {label}",
        "no_contact": "Not contacted yet",
        "contact_today": "Last contact today",
        "contact_one": "Last contact 1 day ago",
        "contact_days": "Last contact {days} days ago",
        "overdue": "{n} overdue task(s)",
        "open_tasks": "{n} open task(s)",
        "disg": "DISG type: {disg}",
        "closed": "Closed – no action needed",
        "do_check_won": "Check the stage: notes say won",
        "do_check_lost": "Check the stage: notes say not interested",
        "do_overdue": "Complete overdue tasks",
        "do_callback": "Call back",
        "do_offer": "Send the offer",
        "do_first": "Make first contact",
        "do_urgent": "Respond urgently",
        "do_follow": "Follow up",
        "do_follow_offer": "Follow up on the offer",
    },
}


# Stage reasons are pre-built: formatting them per lead would dominate a large batch.
_STAGE_REASONS = {
    (lang, key, stage): _TEXT[lang][key].format(stage=STAGE_NAMES[lang][stage])
    for lang in ("de", "en")
    for key in ("stage", "stage_notes", "stage_contact")
    for stage in STAGES
}


@lru_cache(maxsize=16384)
def _note_reasons(notes: str | None, language: str) -> tuple[str, ...]:
    template = _TEXT[language]["note"]
    return tuple(template.format(label=label) for label in note_labels(scan_notes(notes), language))


def _recency_points(days: int | None) -> int:
    if days is None:
        return 0
    if days <= 3:
        return 20
    if days <= 7:
        return 15
    if days <= 14:
        return 10
    if days <= 30:
        return 5
    return 0


def analyze(lead: LeadContext, *, now: datetime) -> Analysis:
    """The analysis of one lead (see `leadflow.ai.local` for the rules)."""
    return _analyze(lead, as_utc(now))


def analyze_batch(leads: Sequence[LeadContext], *, now: datetime) -> list[Analysis]:
    """Analyses of many leads in one pass, in input order; no I/O."""
    utc_now = as_utc(now)
    return [_analyze(lead, utc_now) for lead in leads]


def _analyze(lead: LeadContext, now: datetime) -> Analysis:
    scan = scan_notes(lead.notes)
    lang = normalize_language(lead.language) or scan.language or "de"
    t = _TEXT[lang]
    signals = scan.signals
    last = as_utc(lead.last_contacted_at) if lead.last_contacted_at is not None else None

    explicit = normalize_status(lead.status)
    if explicit:
        stage, stage_key = explicit, "stage"
    else:
        stage = infer_stage(scan, last is not None)
        stage_key = "stage_contact" if stage in ("new", "contacted") else "stage_notes"
    reasons = [_STAGE_REASONS[(lang, stage_key, stage)]]
    reasons.extend(_note_reasons(lead.notes, lang))

    days: int | None = None
    if last is None:
        reasons.append(t["no_contact"])
    else:
        # Contact "in the future" is bad data (clock skew); treat it as today.
        days = max(0, int((now - last).total_seconds()) // _DAY_SECONDS)
        if days == 0:
            reasons.append(t["contact_today"])
        elif days == 1:
            reasons.append(t["contact_one"])
        else:
            reasons.append(t["contact_days"].format(days=days))
    overdue = max(0, int(lead.overdue_tasks or 0))
    open_tasks = max(0, int(lead.open_tasks or 0))
    if overdue:
        reasons.append(t["overdue"].format(n=overdue))
    elif open_tasks:
        reasons.append(t["open_tasks"].format(n=open_tasks))
    disg = normalize_disg(lead.disg_type)
    if disg:
        reasons.append(t["disg"].format(disg=disg_letter(disg, lang)))

    if stage == "won" or stage == "lost":
        reasons.append(t["closed"])
        return Analysis(stage, False, None, None, 100 if stage == "won" else 0, reasons)

    # Open stage: the first matching rule decides the next action.
    needs_action = True
    next_at: datetime | None = now
    if scan.terminal is not None:
        # The explicit stage is open but the notes say the deal is decided: someone should
        # move the lead, otherwise it keeps showing up in follow-up lists.
        action = t["do_check_won"] if scan.terminal == WON else t["do_check_lost"]
    elif overdue:
        action = t["do_overdue"]
    elif CALLBACK in signals:
        action = t["do_callback"]
    elif OFFER_WAIT in signals:
        action = t["do_offer"]
    elif last is None:
        action = t["do_first"]
    elif URGENT in signals:
        action = t["do_urgent"]
    else:
        offer_out = stage == "proposal" or OFFER_SENT in signals
        action = t["do_follow_offer"] if offer_out else t["do_follow"]
        if now - last <= STALE_AFTER:
            # Recently contacted: plan the follow-up, nothing to do right now. If the planned
            # day has slipped by, the 14-day mark (still ahead) is the latest sensible date.
            needs_action = False
            next_at = add_business_days(last, FOLLOW_UP_BUSINESS_DAYS)
            if next_at <= now:
                next_at = last + STALE_AFTER

    score = STAGE_PROBABILITY[stage] // 2 + _recency_points(days)
    score += scan.points
    if disg:
        score += 5  # a known personality type means someone has actually talked to the lead
    if open_tasks:
        score += 5
    if overdue:
        score -= 10
    if scan.terminal == LOST:
        score -= 30
    elif scan.terminal == WON:
        score += 30
    # Open leads stay below 100, which is reserved for won deals.
    score = min(99, max(0, score))
    return Analysis(stage, needs_action, next_at, action, score, reasons)
