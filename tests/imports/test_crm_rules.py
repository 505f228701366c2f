"""The rules behind a CRM switch, without a database: header matching, the default stage table
and its fallbacks, owner matching, date orders and the product guess."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from leadflow.imports import parsing
from leadflow.imports.detect import PRODUCTS, detect_product, scan_dates
from leadflow.imports.errors import OWNER_AMBIGUOUS, OWNER_NOT_ALLOWED, OWNER_NOT_FOUND
from leadflow.imports.headers import plan_columns
from leadflow.imports.owners import Member, OwnerResolver
from leadflow.imports.stages import StageResolver
from leadflow.models.pipeline_stage import PipelineStage
from leadflow.organizations.service import DEFAULT_STAGES


def _targets(headers: list[str], custom: dict[str, str] | None = None) -> list[str | None]:
    return plan_columns(headers, custom or {}, None).targets


@pytest.mark.parametrize(
    ("header", "target", "rule"),
    [
        # camelCase is split
        ("LeadSource", "source", "camel_case"),
        ("MobilePhone", "phone", "camel_case"),  # the only phone column: it is the phone
        ("LastActivityDate", "last_contacted_at", "camel_case"),
        ("emailAddress", "email", "camel_case"),
        # product prefixes are set aside
        ("Person - Email", "email", "prefix"),
        ("Person - Label", "tags", "prefix"),
        ("Lead Owner", "owner", "prefix"),
        ("Contact owner", "owner", "prefix"),
        ("Kontakt - Vorname", "first_name", "prefix"),
        # qualifiers and numbers say which email/phone
        ("Primary Email", "email", "qualifier"),
        ("Person - Phone - Work", "phone", "qualifier"),
        ("E-Mail (geschäftlich)", "email", "qualifier"),
        # but not for other fields, nor for other entities' columns
        ("Company 2", None, "unknown"),
        ("Organization - Label", None, "unknown"),
        ("Deal - Title", None, "unknown"),
        # ids of the other system are kept, not matched
        ("OwnerId", "custom.crm_owner_id", "owner_id"),
        ("HubSpot Owner ID", "custom.crm_owner_id", "owner_id"),
        ("Record ID", None, "system"),
        ("Lead ID", None, "system"),
        # German headers of the same exports
        ("Lebenszyklusphase", "status", "name"),
        ("Kontaktinhaber", "owner", "name"),
        ("Datum der letzten Aktivität", "last_contacted_at", "name"),
        ("Name des Unternehmens", "company", "name"),
    ],
)
def test_a_single_header(header: str, target: str | None, rule: str) -> None:
    plan = plan_columns([header], {}, None)
    assert (plan.targets, plan.columns[0].rule) == ([target], rule)


def test_numbered_duplicates_and_mobiles_land_in_custom_fields() -> None:
    headers = [
        "Email",
        "Email 2",
        "Email 3",
        "Phone",
        "Phone 2",
        "Mobile",
        "Person - Phone - Mobile",
        "Other Phone",
    ]
    assert _targets(headers) == [
        "email",
        "custom.email_2",
        "custom.email_3",
        "phone",
        "custom.phone_2",
        "custom.mobile",
        "custom.mobile_2",
        "custom.phone_3",
    ]


def test_the_main_email_is_the_unqualified_or_work_one() -> None:
    assert _targets(["Email - Home", "Email - Work"]) == ["custom.email_2", "email"]
    assert _targets(["Email 2", "Email"]) == ["custom.email_2", "email"]
    assert _targets(["Private Email", "Other Email"]) == ["email", "custom.email_2"]


def test_an_organisations_own_field_wins_over_one_the_import_would_define() -> None:
    custom = {"mobilnummer": "handy_nr", "title": "anrede"}
    assert _targets(["Telefon", "Mobilnummer", "Title"], custom) == [
        "phone",
        "custom.handy_nr",
        "custom.anrede",
    ]


def test_two_status_columns_are_both_read_a_third_is_not() -> None:
    plan = plan_columns(["Lifecycle Stage", "Lead Status", "Stage"], {}, None)
    assert plan.targets == ["status", "status", None]
    assert plan.columns[2].rule == "duplicate"


def test_mapping_wins_and_may_ignore() -> None:
    plan = plan_columns(
        ["Owner", "Mobile", "Title"],
        {},
        {"owner": "ignore", "Mobile": "phone", "TITLE": "notes"},
    )
    assert plan.targets == [None, "phone", "notes"]
    assert [c.rule for c in plan.columns] == ["mapping", "mapping", "mapping"]


def _stages(*keys: str) -> list[PipelineStage]:
    spec = {k: (name, category) for k, name, category, _ in DEFAULT_STAGES}
    out = []
    for i, key in enumerate(keys):
        name, category = spec.get(key, (key.title(), "open"))
        out.append(PipelineStage(key=key, name=name, category=category, position=i))
    return out


DEFAULT = ("new", "contacted", "qualified", "proposal", "won", "lost")


@pytest.mark.parametrize(
    ("word", "stage"),
    [
        # The table, as the products spell the words.
        ("New", "new"),
        ("Open", "new"),
        ("Open - Not Contacted", "new"),
        ("Working", "contacted"),
        ("Working - Contacted", "contacted"),
        ("Attempted to contact", "contacted"),
        ("Contacted", "contacted"),
        ("Connected", "contacted"),
        ("MQL", "qualified"),
        ("SQL", "qualified"),
        ("marketingqualifiedlead", "qualified"),
        ("Qualified", "qualified"),
        ("Opportunity", "proposal"),
        ("Proposal", "proposal"),
        ("Negotiation", "proposal"),
        ("Customer", "won"),
        ("Closed Won", "won"),
        ("closed_won", "won"),
        ("Converted", "won"),
        ("Closed - Converted", "won"),
        ("Unqualified", "lost"),
        ("Closed Lost", "lost"),
        ("Junk", "lost"),
        ("Junk Lead", "lost"),
        # German words the analysis knows too
        ("Angebot gesendet", "proposal"),
        ("in Bearbeitung", "contacted"),
    ],
)
def test_default_stage_table(word: str, stage: str) -> None:
    assert StageResolver(_stages(*DEFAULT), None).choose(word).stage == stage


def test_status_map_and_the_pipelines_own_names_come_first() -> None:
    stages = _stages(*DEFAULT)
    stages[1].name = "Erstgespräch"
    resolver = StageResolver(stages, {"Customer": "qualified", "Other": ""})
    assert [
        (c.stage, c.rule)
        for c in map(resolver.choose, ["customer", "erstgesprach", "Other", "Evangelist", "?"])
    ] == [
        ("qualified", "status_map"),
        ("contacted", "pipeline"),
        (None, "status_map"),
        ("won", "default_table"),
        (None, "unknown"),
    ]


def test_a_pipeline_without_the_target_stage_falls_back() -> None:
    resolver = StageResolver(_stages("new", "termin", "angebot_raus", "gewonnen"), None)
    # "termin" stands for qualified (the analysis knows the word); no contacted, proposal, lost.
    resolver.stages[3].category = "won"
    resolver = StageResolver(resolver.stages, None)
    assert [
        (resolver.choose(w).stage, resolver.choose(w).rule)
        for w in ("Connected", "Opportunity", "Closed Won", "Closed Lost", "New")
    ] == [
        ("new", "fallback"),  # contacted → the nearest earlier stage the pipeline has
        ("termin", "fallback"),  # proposal → qualified's stand-in
        ("gewonnen", "default_table"),  # the won-category stage
        ("angebot_raus", "fallback"),  # no lost stage: the last open one
        ("new", "pipeline"),
    ]


def test_two_status_columns_combine() -> None:
    r = StageResolver(_stages(*DEFAULT), None)
    assert r.combine("new", "contacted") == "contacted"
    assert r.combine("proposal", "contacted") == "proposal"
    assert r.combine("qualified", "lost") == "lost"
    assert r.combine("won", "contacted") == "won"
    assert r.combine(None, "new") == "new"


ANNA = Member(uuid.UUID(int=1), "Anna.Schmidt@Vertrieb-Nord.de", "Anna Schmidt")
JOERG = Member(uuid.UUID(int=2), "joerg@vertrieb-nord.de", "Jörg Müller")
MAX1 = Member(uuid.UUID(int=3), "max1@example.com", "Max Weber")
MAX2 = Member(uuid.UUID(int=4), "max2@example.com", "Max Weber")


@pytest.mark.parametrize(
    ("value", "user", "code"),
    [
        ("anna.schmidt@vertrieb-nord.de", ANNA, None),
        ("ANNA.SCHMIDT@VERTRIEB-NORD.DE", ANNA, None),
        ("anna schmidt", ANNA, None),
        (" Jorg  MULLER ", JOERG, None),
        ("Jörg Müller", JOERG, None),
        (str(JOERG.id), JOERG, None),
        ("Max Weber", None, OWNER_AMBIGUOUS),
        ("max2@example.com", MAX2, None),
        ("Anna", None, OWNER_NOT_FOUND),
        ("0055g00000ABCDE", None, OWNER_NOT_FOUND),
    ],
)
def test_owner_values(value: str, user: Member | None, code: str | None) -> None:
    resolver = OwnerResolver([ANNA, JOERG, MAX1, MAX2], importer=None, may_assign_others=True)
    choice = resolver.choose(value)
    assert (choice.user, choice.code, choice.assignee) == (user, code, user.id if user else None)


def test_without_leads_assign_only_the_importer_is_assigned() -> None:
    resolver = OwnerResolver([ANNA, JOERG], importer=ANNA.id, may_assign_others=False)
    assert resolver.choose("Anna Schmidt").assignee == ANNA.id
    other = resolver.choose("Jörg Müller")
    assert (other.user, other.assignee, other.code) == (JOERG, None, OWNER_NOT_ALLOWED)


@pytest.mark.parametrize(
    ("raw", "order", "expected"),
    [
        ("11/03/2026", parsing.MDY, datetime(2026, 11, 3, tzinfo=UTC)),
        ("11/03/2026", parsing.DMY, datetime(2026, 3, 11, tzinfo=UTC)),
        ("11-03-2026", parsing.MDY, datetime(2026, 11, 3, tzinfo=UTC)),
        ("11/23/2025", None, datetime(2025, 11, 23, tzinfo=UTC)),  # decides itself
        ("23/11/2025", None, datetime(2025, 11, 23, tzinfo=UTC)),
        ("05/05/2026", None, datetime(2026, 5, 5, tzinfo=UTC)),  # same either way
        ("3/7/2026 2:15 PM", parsing.MDY, datetime(2026, 3, 7, 14, 15, tzinfo=UTC)),
        ("3/7/2026 12:05 a.m.", parsing.MDY, datetime(2026, 3, 7, 0, 5, tzinfo=UTC)),
        ("2026-03-07T12:30:00Z", parsing.MDY, datetime(2026, 3, 7, 12, 30, tzinfo=UTC)),
        ("07.03.2026", parsing.MDY, datetime(2026, 3, 7, tzinfo=UTC)),  # dots: always day-first
    ],
)
def test_date_orders(raw: str, order: str | None, expected: datetime) -> None:
    assert parsing.date_value(raw, UTC, order) == expected


@pytest.mark.parametrize("raw", ["11/03/2026", "13/13/2026", "02/30/2026", "3/7/2026 13:15 PM"])
def test_dates_that_cannot_be_read(raw: str) -> None:
    with pytest.raises(ValueError):
        parsing.date_value(raw, UTC, None if raw == "11/03/2026" else parsing.MDY)


def test_day_values_keep_the_written_date() -> None:
    assert parsing.day_value("12/31/1999", parsing.MDY) == "1999-12-31"
    assert parsing.day_value("2026-07-01T23:30:00+05:00") == "2026-07-01"
    assert parsing.day_value(datetime(2026, 7, 1, 23, 30)) == "2026-07-01"


def _rows(values: list[str]) -> list[list[Any]]:
    return [["x", v] for v in values]


def test_the_first_rows_decide_the_order_when_they_can() -> None:
    found = scan_dates(iter(_rows(["01/02/2026", "13/02/2026", "01/13/2026"])), [1], sample_rows=2)
    # Decided by row 2 (day-first); row 3 was never read, so it cannot contradict.
    assert (found[1].order, found[1].ambiguous) == (parsing.DMY, False)


def test_an_open_order_reads_on_to_the_end_of_the_file() -> None:
    rows = _rows(["01/02/2026", "03/04/2026", "", "05/06/2026", "12/25/2026"])
    found = scan_dates(iter(rows), [1], sample_rows=2)
    assert (found[1].order, found[1].ambiguous) == (parsing.MDY, False)
    found = scan_dates(iter(rows[:4]), [1], sample_rows=2)
    assert (found[1].order, found[1].ambiguous, found[1].examples) == (
        None,
        True,
        ["01/02/2026", "03/04/2026", "05/06/2026"],
    )


def test_dotted_and_iso_dates_need_no_decision() -> None:
    found = scan_dates(iter(_rows(["01.02.2026", "2026-02-01 10:00"])), [1])
    assert (found[1].numeric, found[1].format, found[1].families) == (
        False,
        "DD.MM.YYYY",
        ["DD.MM.YYYY", "YYYY-MM-DD"],
    )


@pytest.mark.parametrize("product", PRODUCTS, ids=lambda p: p.key)
def test_each_products_documented_columns_name_it(product: Any) -> None:
    headers: list[str] = []
    for col in product.columns:
        name = col[0] if isinstance(col, tuple) else col
        # As the product writes it: Salesforce in API names, our export in snake_case.
        if product.key == "salesforce":
            name = {"firstname": "FirstName", "lastname": "LastName"}.get(name, name.title())
        if product.key == "leadflow":
            name = name.replace(" ", "_")
        if product.key == "pipedrive":
            name = name.replace(" ", " - ", 1)
        headers.append(name)
    guess = detect_product(headers)
    assert (guess.key, guess.name, guess.confidence) == (product.key, product.name, 1.0)


def test_an_unknown_layout_names_no_product() -> None:
    assert detect_product(["Name", "E-Mail", "Telefon"]).key is None
    # A HubSpot export cut down to two columns is still most like HubSpot, with less confidence.
    guess = detect_product(["Contact owner", "Email"])
    assert (guess.key, guess.confidence) == (None, 0.18)
