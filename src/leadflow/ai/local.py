"""The local AI provider: offline, deterministic and rule-based.

This is not a language model. It matches keywords (German and English) and fills templates, so
the same input always gives the same output, nothing leaves the process, and it is fast enough
to analyse a million leads in one call. Lead fields are treated as data only: notes are
keyword-matched, never followed; control and formatting characters are stripped from anything
that is echoed.

Analysis rules (`analyze_batch`, `analyze`)
-------------------------------------------
Language of reasons and descriptions: `lead.language`, else detected from the notes, else German.

Note keywords (case- and accent-insensitive; negations such as "not interested" or "noch nicht
unterschrieben" are recognised as such):

- waiting for an offer ("wartet auf Angebot", "möchte ein Angebot", "waiting for a quote|offer",
  "asked for a proposal") → stage proposal, action "Angebot senden" / "Send the offer" now
- offer sent ("Angebot verschickt", "offer sent") → stage proposal
- demo ("Demo", "Vorführung", "presentation") → stage qualified
- interest / budget ("interessiert", "interested", "Budget bestätigt") → stage qualified
- callback ("Rückruf", "zurückrufen", "call back") → action "Zurückrufen" / "Call back" now
- not interested ("kein Interesse", "not interested", "abgesagt") → stage lost
- signed ("Vertrag unterschrieben", "signed", "Auftrag erteilt") → stage won
- urgent ("dringend", "asap", "urgent") → needs action
- if both won and lost words occur, the one mentioned last wins (notes are chronological)

Stage: the explicit status (normalised with `normalize_status`) wins; only when it is missing
or unknown is the stage inferred — from won/lost words, then the furthest open stage the
keywords imply, else "contacted" if there was contact, else "new".

Won or lost: `needs_action` False, no next action; score 100 or 0.

Open stages — the first matching rule sets the next action, due `now` (never earlier):

1. notes say won/lost while the explicit stage is open → "Status prüfen" / "Check the stage"
2. overdue tasks → "Überfällige Aufgaben erledigen" / "Complete overdue tasks"
3. callback requested → "Zurückrufen" / "Call back"
4. waiting for an offer → "Angebot senden" / "Send the offer"
5. never contacted → "Erstkontakt aufnehmen" / "Make first contact"
6. urgent → "Dringend melden" / "Respond urgently"
7. last contact more than 14 days ago → "Nachfassen" / "Follow up" ("Zum Angebot nachfassen" /
   "Follow up on the offer" in the proposal stage)
8. otherwise (contact within 14 days) → no action needed now; the follow-up is planned 3
   business days (Mon–Fri) after the last contact, or at the 14-day mark if that day has passed.

Score (0..100): half the stage probability (new 10, contacted 20, qualified 40, proposal 60),
+20/15/10/5 for contact within 3/7/14/30 days, + keyword points (offer wanted 15; offer sent,
demo, interest, budget 10; callback, urgent, enquiry 5; capped at 30), +5 for a known DISG type,
+5 for open tasks, −10 for overdue tasks, −30/+30 when the notes say lost/won; open leads are
capped at 99.

Messages (`generate_message`)
-----------------------------
Channel: the argument, else the lead's channel (`normalize_channel`, email when unknown).
Language: the argument, else `lead.language`, else detected from the instruction, then the
notes, else German. German uses "du" on WhatsApp/SMS and "Sie" in email and call scripts; an
instruction saying "formell"/"siezen" or "locker"/"duzen" switches, "kurz"/"short" drops the
context. Templates per DISG type (D direct, I enthusiastic, S calm, G/C structured) and
channel (WhatsApp ≤ 400 characters without subject, email with subject and sign-off, SMS ≤ 160
characters without emoji, phone as a call script). Topics come from the notes and stage.

Summaries and chat
------------------
`summarize` states stage, last contact, the latest event and what the notes say (≤ 4
sentences). `chat_reply` picks an intent from keywords of the last user message — draft a
message, next step/score, summary, help — and answers in that message's language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from leadflow.ai import local_templates as tpl
from leadflow.ai.local_rules import (
    BUDGET,
    CALLBACK,
    DEMO,
    INTERESTED,
    LOST,
    OFFER_SENT,
    OFFER_WAIT,
    STAGE_NAMES,
    WON,
    Language,
    analyze,
    analyze_batch,
    as_utc,
    clean_text,
    detect_language,
    disg_letter,
    fold,
    format_date,
    infer_stage,
    lead_language,
    normalize_channel,
    normalize_disg,
    normalize_language,
    normalize_status,
    note_labels,
    scan_notes,
)
from leadflow.ai.types import Analysis, Draft, LeadContext

__all__ = [
    "Analysis",
    "Draft",
    "LeadContext",
    "analyze",
    "analyze_batch",
    "chat_reply",
    "detect_language",
    "generate_message",
    "normalize_channel",
    "normalize_status",
    "summarize",
]

WHATSAPP_MAX = 400
SMS_MAX = 160
_RECENT_DAYS = 7  # "thanks again for our conversation" vs "it's been a while"

_EMOJI = re.compile("[\U0001f000-\U0001faff\u2600-\u27bf\ufe0f\u200d]")
_BRIEF = re.compile(r"\b(?:kurz|knapp|short|brief|concise)")
_INFORMAL = re.compile(r"informell|informal|duzen|per du|locker|casual")
_FORMAL = re.compile(r"\bformal|\bformell|\bforml|siezen|per sie")
_WANTS_EN = re.compile(r"\b(?:auf englisch|in english|englisch|english)\b")
_WANTS_DE = re.compile(r"\b(?:auf deutsch|in german|deutsch|german)\b")


# --------------------------------------------------------------------------- messages


def _fill(template: str, **values: str) -> str:
    """`template` with values; an empty value takes its leading space with it ("Hallo,")."""
    for key, value in values.items():
        if not value:
            template = template.replace(" {" + key + "}", "").replace("{" + key + "}", "")
    # One format call: braces inside lead data are inserted literally, never expanded.
    return template.format(**values)


def _join(*parts: str) -> str:
    return " ".join(p for p in parts if p)


# Sie-form pronouns keep their capital letter wherever they stand.
_CAPITALISED = frozenset(("Sie", "Ihr", "Ihre", "Ihnen", "Ihren", "Ihrem", "Ihrer"))


def _continue(greeting: str, text: str, language: Language) -> str:
    """German letters go on in lower case after "Hallo Lea," ("vielen Dank …")."""
    if language != "de" or not greeting.endswith(",") or not text:
        return text
    if text.split(" ", 1)[0] in _CAPITALISED:
        return text
    return text[0].lower() + text[1:]


def _topics(lead: LeadContext, stage: str, contacted: bool) -> list[str]:
    """What the message is about, from the notes and the stage, in narrative order."""
    scan = scan_notes(lead.notes)
    if stage == "won" or (scan.terminal == WON and stage != "lost"):
        return [tpl.WON]
    if stage == "lost" or scan.terminal == LOST:
        return [tpl.LOST]
    signals = scan.signals
    topics: list[str] = []
    if DEMO in signals:
        topics.append(tpl.DEMO)
    if OFFER_WAIT in signals:
        topics.append(tpl.OFFER_WAIT)
    elif OFFER_SENT in signals or stage == "proposal":
        topics.append(tpl.OFFER_SENT)
    if CALLBACK in signals:
        topics.append(tpl.CALLBACK)
    if not topics and (INTERESTED in signals or BUDGET in signals):
        topics.append(tpl.INTERESTED)
    if not topics:
        topics.append(tpl.CHECKIN if contacted else tpl.INTRO)
    return topics


def _primary(topics: list[str]) -> str:
    return next(t for t in tpl.SUBJECT_PRIORITY if t in topics)


def _register(language: Language, channel: str, instruction: str) -> tpl.Register:
    if language == "en":
        return "en"
    if _INFORMAL.search(instruction):
        return "du"
    if _FORMAL.search(instruction):
        return "sie"
    return "du" if channel in ("whatsapp", "sms") else "sie"


def _overview(
    language: Language, topics: list[str], *, last: str, company: str, full: bool
) -> list[str]:
    """Bullet lines for the G/C style; `full` adds company and last contact (email)."""
    labels = tpl.DETAIL_LABELS[language]
    lines = [tpl.OVERVIEW[language]]
    if full:
        if company:
            lines.append(f"• {labels['company']}: {company}")
        lines.append(f"• {labels['last']}: {last or labels['none']}")
    states = ", ".join(tpl.DETAIL_STATE[language][t] for t in topics)
    lines.append(f"• {labels['state']}: {states}")
    lines.append(f"• {labels['next']}: {tpl.DETAIL_NEXT[language][_primary(topics)]}")
    return lines


def generate_message(
    lead: LeadContext,
    *,
    channel: str | None = None,
    language: str | None = None,
    instruction: str | None = None,
    now: datetime,
) -> Draft:
    """A draft for the lead in its DISG style, channel and language (rules in module doc)."""
    now = as_utc(now)
    chan = normalize_channel(channel or lead.channel)
    instr = fold(clean_text(instruction, 1000))
    lang: Language = (
        normalize_language(language)
        or normalize_language(lead.language)
        or detect_language(instruction)
        or scan_notes(lead.notes).language
        or "de"
    )
    register = _register(lang, chan, instr)
    brief = bool(_BRIEF.search(instr))
    disg = normalize_disg(lead.disg_type)
    style = tpl.STYLES[(disg, register)]

    first = clean_text(lead.first_name, 40)
    full = _join(first, clean_text(lead.last_name, 40))
    company = clean_text(lead.company, 60)

    last_at = as_utc(lead.last_contacted_at) if lead.last_contacted_at else None
    stage = normalize_status(lead.status) or infer_stage(scan_notes(lead.notes), bool(last_at))
    topics = _topics(lead, stage, last_at is not None)
    closing = topics[0] in tpl.CLOSING_TOPICS
    context = ""
    last_long = ""
    if last_at is not None:
        recent = (now - last_at).days <= _RECENT_DAYS
        context = _fill(
            tpl.CONTEXT[register]["recent" if recent else "stale"],
            date=format_date(last_at, lang, now=now),
        ).replace("..", ".")  # "am 20.11.." when the date itself ends with a dot
        last_long = format_date(last_at, lang)
    sentences = tpl.TOPIC_SENTENCES[register]
    cta = "" if closing else style.cta

    if chan == "sms":
        # One line: the greeting ends with "!" so the next sentence may start with a capital.
        greeting = _EMOJI.sub("", _fill(style.chat_greeting, name=first)).strip().rstrip(",!")
        topic = sentences[_primary(topics)]
        body = _join(greeting + "!", topic, "" if closing else style.sms_cta)
        if len(body) > SMS_MAX:  # long names: the call to action is dropped first
            body = _join(greeting + "!", topic)
        return Draft("sms", lang, None, _EMOJI.sub("", body))

    if chan == "phone":
        labels = tpl.SCRIPT[lang]
        greeting = _fill(style.mail_greeting, name=first, full=full).rstrip(",!")
        tone_label = labels["tone"] + (f" (DISG {disg_letter(disg, lang)})" if disg else "")
        lines = [
            _fill(labels["title"], full=full or first) + (f" ({company})" if company else ""),
            f"• {labels['greeting']}: {greeting}. {context or labels['intro']}",
            f"• {labels['reason']}: {_join(*(sentences[t] for t in topics))}",
            f"• {labels['goal']}: {tpl.DETAIL_NEXT[lang][_primary(topics)]}",
            f"• {tone_label}: {style.tone}",
        ]
        return Draft("phone", lang, None, "\n".join(lines))

    if chan == "whatsapp":
        topics = topics[:2]
        # Drop optional parts until the message fits a chat bubble.
        for with_context, with_overview in ((True, True), (False, True), (False, False)):
            use_context = with_context and not brief
            structured = disg == "G" and with_overview and not brief and not closing
            greeting = _fill(style.chat_greeting, name=first)
            lines = [greeting]
            text = _join(
                style.opener, context if use_context else "", *(sentences[t] for t in topics)
            )
            text = _continue(greeting, text, lang)
            if structured:
                lines.append(text)
                lines.extend(_overview(lang, topics, last="", company="", full=False))
                lines.append(cta)
            else:
                lines.append(_join(text, cta) + ("" if closing else style.chat_emoji))
            body = "\n".join(line for line in lines if line)
            if len(body) <= WHATSAPP_MAX:
                break
        return Draft("whatsapp", lang, None, body[:WHATSAPP_MAX])

    # Email: greeting, text, (overview), call to action, sign-off; blank lines between.
    topics = topics[:3]
    subject = tpl.SUBJECTS[register][_primary(topics)]
    if company:
        subject = f"{subject} – {company}"
    greeting = _fill(style.mail_greeting, name=first, full=full)
    text = _join(style.opener, "" if brief else context, *(sentences[t] for t in topics))
    paragraphs = [greeting, _continue(greeting, text, lang)]
    if disg == "G" and not brief and not closing:
        overview = _overview(lang, topics, last=last_long, company=company, full=True)
        paragraphs.append("\n".join(overview))
    paragraphs += [cta, style.sign_off]
    return Draft("email", lang, subject, "\n\n".join(p for p in paragraphs if p))


# --------------------------------------------------------------------------- summaries

_KINDS: dict[str, tuple[str, str]] = {
    "call": ("Anruf", "call"),
    "phone": ("Anruf", "call"),
    "email": ("E-Mail", "email"),
    "e-mail": ("E-Mail", "email"),
    "anruf": ("Anruf", "call"),
    "whatsapp": ("WhatsApp", "WhatsApp"),
    "sms": ("SMS", "SMS"),
    "meeting": ("Termin", "meeting"),
    "note": ("Notiz", "note"),
    "task": ("Aufgabe", "task"),
    "status_change": ("Statuswechsel", "stage change"),
    "status": ("Statuswechsel", "stage change"),
}


def summarize(
    lead: LeadContext,
    events: Sequence[tuple[datetime, str, str]],
    *,
    language: str | None = None,
) -> str:
    """1–4 sentences: who and which stage, last contact, latest activity, what the notes say.

    `events` are (occurred_at, kind, summary) tuples in any order; their summaries are quoted
    (cleaned and shortened), never interpreted.
    """
    lang: Language = normalize_language(language) or lead_language(lead)
    scan = scan_notes(lead.notes)
    last_at = lead.last_contacted_at
    stage = normalize_status(lead.status) or infer_stage(scan, last_at is not None)
    stage_name = STAGE_NAMES[lang][stage]
    who = _join(clean_text(lead.first_name, 40), clean_text(lead.last_name, 40))
    company = clean_text(lead.company, 60)
    en = lang == "en"
    if not who:
        who = "The lead" if en else "Der Lead"
    if company:
        who = f"{who} ({company})"
    sentences = [
        f'{who} is at stage "{stage_name}".' if en else f"{who} steht im Status „{stage_name}“."
    ]
    if last_at is None:
        sentences.append("Not contacted yet." if en else "Noch kein Kontakt.")
    else:
        date = format_date(last_at, lang)
        sentences.append(f"Last contact on {date}." if en else f"Letzter Kontakt am {date}.")
    if events:
        latest = max(events, key=lambda e: as_utc(e[0]))
        raw_kind = clean_text(latest[1], 30)
        kind = _KINDS.get(fold(raw_kind), (raw_kind, raw_kind))[1 if en else 0]
        what = clean_text(latest[2], 120).rstrip(".!? ")
        count = len(events)
        date = format_date(latest[0], lang)
        if en:
            noun = "activity" if count == 1 else "activities"
            head = f"{count} {noun}, most recent on {date}"
        else:
            head = f"{count} {'Aktivität' if count == 1 else 'Aktivitäten'}, zuletzt am {date}"
        sentences.append(f"{head}: {_join(kind, '– ' + what if what else '')}.")
    labels = note_labels(scan, lang)
    if labels:
        sentences.append(("Notes: " if en else "Notizen: ") + ", ".join(labels) + ".")
    return " ".join(sentences)


# --------------------------------------------------------------------------- chat

_ASK_MESSAGE = re.compile(
    r"nachricht|schreib|formulier|entwurf|\bmail|e-mail|whatsapp|\bsms\b|message|draft"
    r"|\bwrite\b|\btext (?:her|him|them)\b"
)
_ASK_NEXT = re.compile(
    r"nachste|naechste|schritt|was soll|was tun|was mache|empfehl|vorschlag|\btodo\b"
    r"|next step|what should|what now|what next|recommend|suggest|to do\b"
)
_ASK_SCORE = re.compile(r"score|bewert|chance|wahrscheinlich|likely|probability|priorit")
_ASK_SUMMARY = re.compile(
    r"zusammenfass|uberblick|ueberblick|summar|overview|status|\bstand\b|wer ist|who is"
    r"|tell me about|erzahl"
)
_ASK_HELP = re.compile(r"hilfe|\bhelp\b|was kannst|what can you|\bhallo\b|\bhi\b|\bhey\b|hello")
_CHAT_CHANNEL = (
    (re.compile(r"whatsapp|\bwa\b"), "whatsapp"),
    (re.compile(r"\bsms\b|\btext (?:her|him|them)\b"), "sms"),
    (re.compile(r"mail"), "email"),
    (re.compile(r"anruf|telefon|call script|gesprachsleitfaden|phone"), "phone"),
)
_CHANNEL_NAMES = {"whatsapp": "WhatsApp", "email": "E-Mail", "sms": "SMS", "phone": "Telefon"}

_CHAT_TEXT: dict[str, dict[str, str]] = {
    "de": {
        "help": "Ich bin der regelbasierte Assistent von Leadflow (kein Sprachmodell). Ich kann "
        "den nächsten Schritt empfehlen, den Score erklären, einen Lead zusammenfassen und "
        "Nachrichten für WhatsApp, E-Mail oder SMS entwerfen.",
        "no_lead": "Bitte wähle zuerst einen Lead aus.",
        "draft": "Entwurf für {channel} (regelbasiert, bitte vor dem Senden prüfen):",
        "subject": "Betreff",
        "closed": "Der Lead ist abgeschlossen ({stage}) – keine Aktion nötig.",
        "due": "Empfehlung: {action} – jetzt fällig.",
        "planned": "Kein akuter Handlungsbedarf. Nächster Schritt: {action} am {date}.",
        "reasons": "Gründe",
        "score": "Score: {score}/100.",
    },
    "en": {
        "help": "I'm Leadflow's rule-based assistant (not a language model). I can recommend "
        "the next step, explain the score, summarise a lead and draft messages for WhatsApp, "
        "email or SMS.",
        "no_lead": "Please select a lead first.",
        "draft": "Draft for {channel} (rule-based, please review before sending):",
        "subject": "Subject",
        "closed": "This lead is closed ({stage}) – no action needed.",
        "due": "Recommendation: {action} – due now.",
        "planned": "No action needed right now. Next step: {action} on {date}.",
        "reasons": "Reasons",
        "score": "Score: {score}/100.",
    },
}


def _recommendation(analysis: Analysis, lang: Language, now: datetime) -> str:
    t = _CHAT_TEXT[lang]
    if analysis.next_action_description is None:
        line = t["closed"].format(stage=STAGE_NAMES[lang][analysis.status])
    elif analysis.needs_action or analysis.next_action_at is None:
        line = t["due"].format(action=analysis.next_action_description)
    else:
        date = format_date(analysis.next_action_at, lang, now=now)
        line = t["planned"].format(action=analysis.next_action_description, date=date)
    reasons = "; ".join(analysis.reasons)
    return f"{line} {t['reasons']}: {reasons}. {t['score'].format(score=analysis.score)}"


def chat_reply(
    lead: LeadContext | None, messages: Sequence[Mapping[str, str]], *, now: datetime
) -> str:
    """A rule-based answer to the last user message (next step, score, draft or summary).

    `messages` are {"role": …, "content": …} mappings; only "user" turns (or turns without a
    role) are read, and only to pick an intent and the language.
    """
    now = as_utc(now)
    asked = [
        clean_text(m.get("content"), 2000)
        for m in messages
        if (m.get("role") or "user").lower() == "user"
    ]
    question = asked[-1] if asked else ""
    lang: Language = (
        detect_language(question)
        or detect_language(*asked)
        or (lead_language(lead) if lead is not None else None)
        or "de"
    )
    t = _CHAT_TEXT[lang]
    q = fold(question)
    if lead is None:
        return f"{t['no_lead']} {t['help']}"

    if _ASK_MESSAGE.search(q):
        channel = next((c for pattern, c in _CHAT_CHANNEL if pattern.search(q)), None)
        draft_lang: Language = (
            "en" if _WANTS_EN.search(q) else "de" if _WANTS_DE.search(q) else lang
        )
        draft = generate_message(
            lead, channel=channel, language=draft_lang, instruction=question, now=now
        )
        channel_name = _CHANNEL_NAMES[draft.channel]
        if lang == "en" and draft.channel in ("email", "phone"):
            channel_name = "email" if draft.channel == "email" else "a call"
        parts = [t["draft"].format(channel=channel_name)]
        if draft.subject:
            parts.append(f"{t['subject']}: {draft.subject}")
        parts.append(draft.body)
        return "\n\n".join(parts)

    # Reasons in the language of the conversation, not the lead's.
    analysis = analyze(replace(lead, language=lang), now=now)
    if _ASK_NEXT.search(q) or _ASK_SCORE.search(q):
        return _recommendation(analysis, lang, now)
    if _ASK_HELP.search(q) and not _ASK_SUMMARY.search(q):
        return t["help"]
    # A summary plus the recommendation is the most useful answer to anything else.
    return f"{summarize(lead, (), language=lang)}\n\n{_recommendation(analysis, lang, now)}"
