"""Normalising contact data: lower-cased validated emails, E.164 phone numbers."""

from __future__ import annotations

import unicodedata

import phonenumbers
from email_validator import EmailNotValidError, validate_email


def normalize_email(raw: str | None) -> str | None:
    """Lower-cased, syntax-checked email (no DNS lookups); None for empty input.

    Raises ValueError with a readable message when the address is invalid.
    """
    if raw is None or not raw.strip():
        return None
    try:
        info = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"invalid email address: {exc}") from None
    return info.normalized.lower()


def normalize_phone(raw: str | None, region: str = "DE") -> str | None:
    """E.164 form of a phone number (default region for national numbers); None if empty.

    Raises ValueError when the number cannot be a valid phone number.
    """
    if raw is None or not str(raw).strip():
        return None
    text = str(raw).strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException:
        raise ValueError(f"invalid phone number: {raw!r}") from None
    if not phonenumbers.is_possible_number(number) or not phonenumbers.is_valid_number(number):
        raise ValueError(f"invalid phone number: {raw!r}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def fold(text: str) -> str:
    """Lower-case and strip accents ("Müller" → "muller") for matching headers and names."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def neutralize_formula(value: str) -> str:
    """Prefix a quote to cells a spreadsheet would evaluate (`= + - @`, tab, CR)."""
    if value and value[0] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
