"""Reading real-world files: encodings, delimiters, German/English headers, dates."""

from __future__ import annotations

import codecs
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from leadflow.imports import parsing
from leadflow.imports.parsing import FileProblem


def _rows(data: bytes) -> tuple[list[str], list[list[str]]]:
    header, rows = parsing.csv_rows(parsing.decode_lines(iter([data[:7], data[7:]])))
    return header, list(rows)


@pytest.mark.parametrize(
    ("encoded", "label"),
    [
        ("Name;Firma\nJürgen Müller;Bäckerei Größe\n".encode(), "utf-8"),
        (codecs.BOM_UTF8 + "Name;Firma\nJürgen Müller;Bäckerei Größe\n".encode(), "utf-8 bom"),
        ("Name;Firma\nJürgen Müller;Bäckerei Größe\n".encode("utf-16"), "utf-16"),
        ("Name;Firma\nJürgen Müller;Bäckerei Größe\n".encode("cp1252"), "windows-1252"),
    ],
)
def test_encodings_decode(encoded: bytes, label: str) -> None:
    header, rows = _rows(encoded)
    assert header == ["Name", "Firma"], label
    assert rows == [["Jürgen Müller", "Bäckerei Größe"]], label


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_delimiters(delimiter: str) -> None:
    text = (
        delimiter.join(["Vorname", "Nachname", "E-Mail"])
        + "\n"
        + delimiter.join(["Lea", "Kramer", "lea@example.com"])
        + "\n"
    )
    header, rows = _rows(text.encode())
    assert header == ["Vorname", "Nachname", "E-Mail"]
    assert rows == [["Lea", "Kramer", "lea@example.com"]]


def test_quoted_newlines_and_delimiters_survive() -> None:
    _header, rows = _rows(b'Name,Notizen\n"Kramer, Lea","Zeile 1\nZeile 2"\n')
    assert rows == [["Kramer, Lea", "Zeile 1\nZeile 2"]]


def test_header_matching_is_case_and_accent_insensitive() -> None:
    headers = [
        "VORNAME",
        "Nachname",
        "e-mail",
        "Telefon",
        "Handy",
        "Unternehmen",
        "Kanal",
        "Notizen",
        "Letzter Kontakt",
        "Quelle",
        "Tags",
        "Status",
        "Lieblingsfarbe",
        "Größe",
    ]
    plan = parsing.plan_columns(headers, {"grosse": "groesse"}, None)
    assert plan.targets == [
        "first_name",
        "last_name",
        "email",
        "phone",
        "custom.mobile",  # beside a phone column: kept in the custom field `mobile`
        "company",
        "channel",
        "notes",
        "last_contacted_at",
        "source",
        "tags",
        "status",
        None,
        "custom.groesse",
    ]
    assert plan.ignored == ["Lieblingsfarbe"]
    mapped = parsing.plan_columns(["Spalte A", "Mail"], {}, {"Spalte A": "name", "Mail": "ignore"})
    assert mapped.targets == ["name", None]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("20.11.2024", datetime(2024, 11, 20, tzinfo=UTC)),
        ("2024-11-20", datetime(2024, 11, 20, tzinfo=UTC)),
        ("20/11/2024", datetime(2024, 11, 20, tzinfo=UTC)),
        ("3.1.2025 14:30", datetime(2025, 1, 3, 14, 30, tzinfo=UTC)),
        ("", None),
    ],
)
def test_dates(raw: str, expected: datetime | None) -> None:
    assert parsing.date_value(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # No offset: wall-clock time in the organisation's zone (summer: UTC+2, winter: UTC+1).
        ("2026-07-01 10:00", datetime(2026, 7, 1, 8, 0, tzinfo=UTC)),
        ("01.07.2026 10:00", datetime(2026, 7, 1, 8, 0, tzinfo=UTC)),
        ("15.01.2026 10:00:30", datetime(2026, 1, 15, 9, 0, 30, tzinfo=UTC)),
        ("2026-07-01", datetime(2026, 6, 30, 22, 0, tzinfo=UTC)),
        # An offset is kept.
        ("2026-07-01T10:00:00Z", datetime(2026, 7, 1, 10, 0, tzinfo=UTC)),
        ("2026-07-01T10:00:00.123+05:30", datetime(2026, 7, 1, 4, 30, tzinfo=UTC)),
        ("2026-07-01 10:00 -0500", datetime(2026, 7, 1, 15, 0, tzinfo=UTC)),
        ("01.07.2026 10:00 UTC", datetime(2026, 7, 1, 10, 0, tzinfo=UTC)),
        ("2026-07-01 10:00 Uhr", datetime(2026, 7, 1, 8, 0, tzinfo=UTC)),
        # Spreadsheet cells: naive values are local, aware ones keep their zone.
        (datetime(2026, 7, 1, 10, 0), datetime(2026, 7, 1, 8, 0, tzinfo=UTC)),
        (datetime(2026, 7, 1, 10, 0, tzinfo=UTC), datetime(2026, 7, 1, 10, 0, tzinfo=UTC)),
        (date(2026, 7, 1), datetime(2026, 6, 30, 22, 0, tzinfo=UTC)),
    ],
)
def test_dates_without_offset_use_the_given_zone(raw: object, expected: datetime) -> None:
    assert parsing.date_value(raw, ZoneInfo("Europe/Berlin")) == expected


@pytest.mark.parametrize("raw", ["31.02.2024", "gestern", "2024/11/20", "2024-11-20 10:00+24:00"])
def test_bad_dates_raise(raw: str) -> None:
    with pytest.raises(ValueError):
        parsing.date_value(raw)


def test_values() -> None:
    assert parsing.email_value(" Lea.Kramer@Example.COM ") == "lea.kramer@example.com"
    with pytest.raises(ValueError):
        parsing.email_value("lea@")
    assert parsing.phone_value("0151 2345 6789", "DE") == "+4915123456789"
    assert parsing.phone_value("+43 664 1234567", "DE") == "+436641234567"
    with pytest.raises(ValueError):
        parsing.phone_value("12", "DE")
    assert parsing.tags_value("vip; b2b,vip | messe") == ["vip", "b2b", "messe"]


def _address(length: int) -> str:
    """An otherwise valid address of `length` characters (60-character labels)."""
    labels, rest = [], length - 61 - 3  # the local part and @, the ".de"
    while rest > 0:
        labels.append("b" * min(60, rest))
        rest -= len(labels[-1]) + 1
    return "a" * 60 + "@" + ".".join(labels) + ".de"


def test_an_email_longer_than_smtp_allows_is_refused() -> None:
    assert len(_address(254)) == 254 and parsing.email_value(_address(254)) == _address(254)
    with pytest.raises(ValueError, match="too long"):
        parsing.email_value(_address(255))


def test_nul_characters_are_dropped_from_cells_and_headers() -> None:
    assert parsing.text("An\x00na \x00") == "Anna"
    header, rows = _rows(b"Na\x00me,E-Mail\nA\x00B,a@example.com\n")
    assert header == ["Name", "E-Mail"] and rows == [["A\x00B", "a@example.com"]]
    # JSON keys: the header is cleaned, the values are still found under the key as written.
    header, json_values = parsing.json_rows([{"na\x00me": "A", "email": "a@example.com"}])
    assert header == ["name", "email"] and list(json_values) == [["A", "a@example.com"]]


@pytest.mark.parametrize("data", [b"", b"\n\n", b"Name\n"])
def test_empty_files(data: bytes) -> None:
    if data == b"Name\n":
        header, rows = _rows(data)
        assert header == ["Name"] and rows == []
        return
    with pytest.raises(FileProblem):
        _rows(data)


def test_json_rows() -> None:
    header, rows = parsing.json_rows(
        [{"name": "A", "email": "a@example.com"}, {"name": "B", "phone": "030 123456"}]
    )
    assert header == ["name", "email", "phone"]
    assert list(rows) == [["A", "a@example.com", None], ["B", None, "030 123456"]]
    with pytest.raises(FileProblem):
        parsing.json_rows({"not": "a list"})


@pytest.mark.parametrize("raw", ["31.12.9999 23:00-01:00", "01.01.0001 00:00+01:00"])
def test_dates_beyond_the_calendar_are_value_errors(raw: str) -> None:
    with pytest.raises(ValueError, match="not a valid date"):
        parsing.date_value(raw)


def test_spreadsheet_dates_at_the_calendar_edge_are_value_errors() -> None:
    with pytest.raises(ValueError, match="out of range"):
        parsing.date_value(date(1, 1, 1), ZoneInfo("Europe/Berlin"))
