"""A lead's full name and search text, derived from its name and contact fields."""

from __future__ import annotations

import pytest

from leadflow.leads.effects import derived


@pytest.mark.parametrize(
    ("fields", "full_name", "search_text"),
    [
        (
            ("Lea", "Krämer", "Lea@X.de", "+49151", "ACME"),
            "Lea Krämer",
            "lea krämer lea@x.de +49151 acme",
        ),
        (("Lea", None, None, None, None), "Lea", "lea"),
        ((None, "Krämer", None, "+49151", None), "Krämer", "krämer +49151"),
        ((None, None, "a@b.de", None, "ACME"), "", "a@b.de acme"),
        (("", "", "", "", ""), "", ""),
    ],
)
def test_full_name_and_search_text(
    fields: tuple[str | None, ...], full_name: str, search_text: str
) -> None:
    assert derived(*fields) == (full_name, search_text)
