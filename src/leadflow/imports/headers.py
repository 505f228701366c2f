"""Which field each column of an uploaded file fills: the header rules.

A header is matched by a rule, not only by a list: it is folded (case, accents and punctuation
removed), a camelCase name is split (`LeadSource` → `lead source`), the entity prefix of the
exporting product is left aside (`Person - Email`, `Lead Status`, `Contact owner`), and a
qualifier or number (`Email 2`, `Phone - Work`, `Primary Email`) is read for email, phone and
mobile columns. The first email/phone column fills the lead's field; further ones, and a mobile
column beside a phone column, fill custom fields (`email_2`, `phone_2`, `mobile` …) instead of
being dropped. All of it runs once per file, never per row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from leadflow.kit.normalize import fold

# Lead field -> header spellings (folded: lower-case, no accents, punctuation as spaces).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": (
        "name",
        "full name",
        "fullname",
        "vollstandiger name",
        "kontakt",
        "kunde",
        "ansprechpartner",
        "contact",
        "contact name",
        "kundenname",
    ),
    "first_name": ("vorname", "first name", "firstname", "given name", "first"),
    "last_name": ("nachname", "last name", "lastname", "surname", "familienname", "last"),
    "email": (
        "email",
        "e mail",
        "mail",
        "e mail adresse",
        "email adresse",
        "email address",
        "e mail address",
        "emailadresse",
    ),
    "phone": (
        "telefon",
        "phone",
        "tel",
        "telephone",
        "telefonnummer",
        "phone number",
        "festnetz",
    ),
    "company": (
        "firma",
        "unternehmen",
        "company",
        "organisation",
        "organization",
        "firmenname",
        "company name",
        "organization name",
        "organisation name",
        "account name",
        "name des unternehmens",
        "unternehmensname",
        "associated company",
    ),
    "status": (
        "status",
        "stage",
        "phase",
        "pipeline status",
        "lifecycle stage",
        "lebenszyklusphase",
        "lead status",
    ),
    "channel": ("kanal", "channel", "kontaktkanal", "bevorzugter kanal"),
    "notes": (
        "notizen",
        "notiz",
        "notes",
        "note",
        "bemerkung",
        "bemerkungen",
        "kommentar",
        "kommentare",
        "comments",
        "comment",
        "description",
        "beschreibung",
    ),
    "last_contacted_at": (
        "letzter kontakt",
        "last contact",
        "last contacted",
        "zuletzt kontaktiert",
        "letzter kontakt am",
        "last_contact",
        "last activity date",
        "last activity",
        "last activity time",
        "date of last activity",
        "datum der letzten aktivitat",
        "letzte aktivitat",
        # The API's and the export's own name (an export must import back).
        "last_contacted_at",
    ),
    "source": (
        "quelle",
        "source",
        "herkunft",
        "lead quelle",
        "lead source",
        "original source",
        "ursprungliche quelle",
    ),
    "tags": ("tags", "tag", "schlagworte", "labels", "label"),
    "disg_type": ("disg", "disg typ", "disc", "disc type", "disg type"),
    "utm_source": ("utm source",),
    "utm_medium": ("utm medium",),
    "utm_campaign": ("utm campaign",),
    "score": ("score", "punkte", "lead score"),
}
IDENTITY_FIELDS = ("name", "first_name", "last_name", "email", "phone", "company")

# Targets that are not lead columns.
OWNER = "owner"  # a user of the organisation, by email, full name or id → the assignee
MOBILE_WORDS = (
    "handy",
    "mobil",
    "mobile",
    "mobilnummer",
    "mobile phone",
    "mobile phone number",
    "mobile number",
    "handynummer",
    "telefon mobil",
    "mobiltelefon",
    "mobiltelefonnummer",
    "mobilfunknummer",
    "cell",
    "cell phone",
    "cellphone",
)
OWNER_WORDS = (
    "owner",
    "owner name",
    "owner full name",
    "owner email",
    "owner e mail",
    "record owner",
    "hubspot owner",
    "assigned to",
    "assignee",
    "assignee name",
    "assignee email",
    "assignee id",
    "assigned user",
    "salesperson",
    "sales person",
    "sales rep",
    "sales representative",
    "account manager",
    "betreuer",
    "kundenbetreuer",
    "zustandig",
    "zustandiger mitarbeiter",
    "verantwortlich",
    "verantwortlicher",
    "vertriebsmitarbeiter",
    "verkaufer",
    "berater",
    "zugewiesen an",
    "bearbeiter",
    "inhaber",
    "kontaktinhaber",
)
# The other CRM's user ids: they name no user here (kept, not matched).
OWNER_ID_WORDS = ("owner id", "ownerid", "owner user id", "hubspot owner id", "record owner id")
OWNER_ID_KEY = "crm_owner_id"
# Not carried over: an imported lead is a new lead with its own id and creation time.
SYSTEM_WORDS = (
    "id",
    "record id",
    "created at",
    "create date",
    "created date",
    "created time",
    "creation date",
    "erstellt am",
    "erstellungsdatum",
    "updated at",
    "last modified date",
    "modified time",
    "geandert am",
)
# Custom fields the import defines (as text fields) when a file fills them.
EXTRA_FIELDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "job_title": (
        "Job title",
        (
            "title",
            "job title",
            "jobtitle",
            "position",
            "job position",
            "jobbezeichnung",
            "berufsbezeichnung",
            "designation",
            "funktion",
        ),
    ),
    "website": ("Website", ("website", "web site", "webseite", "homepage", "company website")),
    "linkedin_url": (
        "LinkedIn URL",
        ("linkedin", "linkedin url", "linkedin profile", "linkedin profile url", "profile url"),
    ),
}
_SECONDARY = re.compile(r"^(email|phone|mobile)_([2-9])$")

# Words around "email"/"phone" that say which one it is; the first are fine for the main one.
_PRIMARY_QUALIFIERS = frozenset({"primary", "main", "work", "business", "geschaftlich"})
_MOBILE_QUALIFIERS = frozenset({"mobile", "mobil", "cell", "handy"})
_QUALIFIERS = (
    _PRIMARY_QUALIFIERS
    | _MOBILE_QUALIFIERS
    | {
        "office",
        "home",
        "private",
        "privat",
        "personal",
        "personlich",
        "other",
        "secondary",
        "additional",
        "alternate",
        "alternative",
        "weitere",
        "weiteres",
        "zweite",
        "direct",
        "direkt",
        "dienstlich",
        "buro",
    }
)
# Entity prefixes of person-centred exports (Pipedrive `Person - Email`, Zoho `Lead Owner`,
# HubSpot `Contact owner`): the column is about the lead itself. Organisation, deal and account
# prefixes are not among them: `Organization - Label` is not the person's label.
_PREFIXES = frozenset(
    {
        "person",
        "contact",
        "lead",
        "kontakt",
        "customer",
        "kunde",
        "kunden",
        "client",
        "prospect",
        "interessent",
        "people",
    }
)


def header_key(header: str) -> str:
    """Folded header for matching: accents and case removed, punctuation as spaces."""
    return " ".join(re.sub(r"[^a-z0-9]+", " ", fold(header)).split())


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])|(?<=[A-Za-z])(?=[0-9])")


def split_camel(header: str) -> str:
    """`LeadSource` → `Lead Source`, `Email2` → `Email 2` (other text unchanged)."""
    return _CAMEL.sub(" ", header)


_WORDS: dict[str, str] = {}
for _field, _syns in SYNONYMS.items():
    _WORDS.update({header_key(s): _field for s in _syns})
_WORDS.update({header_key(w): "mobile" for w in MOBILE_WORDS})
_WORDS.update({header_key(w): OWNER for w in OWNER_WORDS})
_WORDS.update({header_key(w): "owner_id" for w in OWNER_ID_WORDS})
_WORDS.update({header_key(w): "system" for w in SYSTEM_WORDS})
for _key, (_label, _words) in EXTRA_FIELDS.items():
    _WORDS.update({header_key(w): f"extra:{_key}" for w in _words})


@dataclass(frozen=True)
class Match:
    """How a header was recognised."""

    kind: str  # a lead field, "mobile", "owner", "owner_id", "system" or "extra:<key>"
    camel: str | None = None  # the header as split (when splitting it made the match)
    prefix: str | None = None
    qualifier: str | None = None
    number: int | None = None


def match_header(header: str) -> Match | None:
    """The rule a header matches, or None."""
    plain = header_key(header)
    spaced = header_key(split_camel(header))
    for key in dict.fromkeys((plain, spaced)):
        found = _match_key(key, spaced if key != plain else None)
        if found is not None:
            return found
    return None


def _match_key(key: str, camel: str | None) -> Match | None:
    tokens = key.split()
    prefix: str | None = None
    qualifier: str | None = None
    number: int | None = None
    while tokens:
        kind = _WORDS.get(" ".join(tokens))
        if kind is not None:
            if (qualifier or number) and kind not in ("email", "phone", "mobile"):
                return None  # "Other Name", "Company 2": not a rule we know
            if kind == "phone" and qualifier in _MOBILE_QUALIFIERS:
                kind = "mobile"
            return Match(kind, camel, prefix, qualifier, number)
        if len(tokens) < 2:
            break
        if number is None and tokens[-1].isdigit() and len(tokens[-1]) <= 2:
            number = int(tokens.pop())
        elif qualifier is None and tokens[-1] in _QUALIFIERS:
            qualifier = tokens.pop()
        elif qualifier is None and tokens[0] in _QUALIFIERS:
            qualifier = tokens.pop(0)
        elif prefix is None and tokens[0] in _PREFIXES:
            prefix = tokens.pop(0)
        else:
            break
    return None


def generated_label(key: str) -> str | None:
    """The label of a custom field the import defines itself, or None for other keys."""
    if key in EXTRA_FIELDS:
        return EXTRA_FIELDS[key][0]
    if key == "mobile":
        return "Mobile"
    if key == OWNER_ID_KEY:
        return "Owner id (previous CRM)"
    m = _SECONDARY.match(key)
    if m:
        return f"{m.group(1).title()} {m.group(2)}"
    return None


def mapping_targets() -> frozenset[str]:
    """Targets `mapping` may name besides `custom.<key>` and `ignore`."""
    return frozenset({*SYNONYMS, OWNER})


@dataclass
class Column:
    """Where one column goes and why (the preview shows it)."""

    header: str
    target: str | None
    rule: str
    reason: str


@dataclass
class ColumnPlan:
    """Where each column goes: a lead field, `owner`, a custom field (`custom.<key>`) or
    nowhere; with the rule and reason per column."""

    targets: list[str | None]
    ignored: list[str] = field(default_factory=list)
    columns: list[Column] = field(default_factory=list)


def _describe(m: Match) -> tuple[str, str]:
    """Rule and reason of a match (before slots are given out)."""
    parts: list[str] = []
    rule = "name"
    if m.camel:
        rule = "camel_case"
        parts.append(f"camelCase read as '{m.camel}'")
    if m.prefix:
        rule = "prefix"
        parts.append(f"'{m.prefix}' prefix of the exporting product set aside")
    if m.qualifier or m.number:
        rule = "qualifier" if m.qualifier else "number"
        parts.append(f"'{m.qualifier or m.number}' read as which {m.kind}")
    return rule, "; ".join(parts)


def plan_columns(
    headers: list[str], custom_keys: dict[str, str], mapping: dict[str, str] | None
) -> ColumnPlan:
    """Map headers to targets. `custom_keys` maps folded key/label → custom field key.

    Order: `mapping`, an exact known name, a custom field of the organisation by key or label,
    then the rules (camelCase, product prefix, qualifier/number). A second column for a field
    is ignored, except a second status column (the two are combined per row) and further
    email/phone/mobile columns (custom fields).
    """
    explicit = {header_key(k): v for k, v in (mapping or {}).items()}
    n = len(headers)
    targets: list[str | None] = [None] * n
    rules: list[tuple[str, str]] = [("unknown", "not recognised")] * n
    matches: dict[int, Match] = {}
    used: set[str] = set()
    status_columns = 0
    for i, header in enumerate(headers):
        key = header_key(header)
        if key in explicit:
            target = explicit[key]
            if target in ("ignore", ""):
                rules[i] = ("mapping", "ignored by mapping")
                continue
            if target in used and not (target == "status" and status_columns < 2):
                rules[i] = ("duplicate", f"{target} is already filled by another column")
                continue
            targets[i], rules[i] = target, ("mapping", "given in mapping")
            used.add(target)
            status_columns += target == "status"
    for i, header in enumerate(headers):
        key = header_key(header)
        if key in explicit or not header.strip():
            continue
        exact = _WORDS.get(key)
        m: Match | None
        # An organisation's own field wins over a field the import would define itself.
        if key in custom_keys and (
            exact is None or exact in ("mobile", "owner_id") or exact.startswith("extra:")
        ):
            target = f"custom.{custom_keys[key]}"
            if target in used:
                rules[i] = ("duplicate", f"{target} is already filled by another column")
            else:
                targets[i], rules[i] = target, ("custom_field", f"custom field {custom_keys[key]}")
                used.add(target)
            continue
        m = Match(exact) if exact is not None else match_header(header)
        if m is None:
            continue
        rule, reason = _describe(m)
        if m.kind in ("email", "phone", "mobile"):
            matches[i] = m
            rules[i] = (rule, reason)
            continue
        if m.kind == "system":
            rules[i] = ("system", "not carried over: an imported lead gets its own id and dates")
            continue
        if m.kind == "owner_id":
            target = f"custom.{OWNER_ID_KEY}"
            why = (
                "an id of the other CRM's user names no user here: kept in custom field "
                f"{OWNER_ID_KEY}; an owner name or email column assigns"
            )
            rule = "owner_id"
        elif m.kind.startswith("extra:"):
            target = f"custom.{m.kind[6:]}"
            why = f"kept in custom field {m.kind[6:]}"
        elif m.kind == OWNER:
            target = OWNER
            why = "owner: the user with this email or full name becomes the assignee"
        else:
            target = m.kind
            why = f"known name for {m.kind}"
        if target in used and not (target == "status" and status_columns < 2):
            rules[i] = ("duplicate", f"{target} is already filled by another column")
            continue
        targets[i] = target
        rules[i] = (rule, "; ".join(p for p in (reason, why) if p))
        used.add(target)
        status_columns += target == "status"
    _give_slots(matches, targets, rules, used)
    columns = [Column(h, targets[i], rules[i][0], rules[i][1]) for i, h in enumerate(headers)]
    ignored = [h for i, h in enumerate(headers) if targets[i] is None and h.strip()]
    return ColumnPlan(targets, ignored, columns)


def _give_slots(
    matches: dict[int, Match],
    targets: list[str | None],
    rules: list[tuple[str, str]],
    used: set[str],
) -> None:
    """Email, phone and mobile columns: the main one fills the lead's field, the others fill
    numbered custom fields. A mobile column is the phone when the file has no phone column."""
    by_kind: dict[str, list[int]] = {"email": [], "phone": [], "mobile": []}
    for i, m in sorted(matches.items()):
        by_kind[m.kind].append(i)
    has_phone = bool(by_kind["phone"]) or "phone" in used
    for kind in ("email", "phone", "mobile"):
        cols = by_kind[kind]
        if not cols:
            continue
        main_field = kind if kind != "mobile" else ("phone" if not has_phone else None)
        order = cols
        if main_field is not None and main_field not in used:
            # The main column: unqualified or "work"/"primary", and not numbered above 1.
            main = next(
                (
                    i
                    for i in cols
                    if (matches[i].qualifier in (None, *_PRIMARY_QUALIFIERS))
                    and (matches[i].number or 1) == 1
                ),
                cols[0],
            )
            targets[main] = main_field
            used.add(main_field)
            why = (
                "mobile number as phone: the file has no other phone column"
                if kind == "mobile"
                else f"known name for {kind}"
            )
            rules[main] = (rules[main][0], "; ".join(p for p in (rules[main][1], why) if p))
            order = [i for i in cols if i != main]
        for i in order:
            key = _free_key(kind, matches[i].number, used)
            if key is None:
                rules[i] = ("duplicate", f"more than 9 {kind} columns")
                continue
            targets[i] = f"custom.{key}"
            used.add(targets[i])  # type: ignore[arg-type]
            why = (
                "mobile number: kept in custom field mobile (the phone when a row has none)"
                if key == "mobile"
                else f"further {kind} column: kept in custom field {key}"
            )
            rule = "mobile" if kind == "mobile" else "secondary"
            rules[i] = (rule, "; ".join(p for p in (rules[i][1], why) if p))


def _free_key(kind: str, number: int | None, used: set[str]) -> str | None:
    """The custom key for a further email/phone/mobile column (`email_2` …, `mobile`)."""
    candidates = []
    if kind == "mobile":
        candidates.append("mobile")
    if number and number >= 2:
        candidates.append(f"{kind}_{number}")
    candidates += [f"{kind}_{n}" for n in range(2, 10)]
    for key in candidates:
        if f"custom.{key}" not in used:
            return key
    return None
