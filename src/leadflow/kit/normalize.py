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


def normalize_possible_phone(raw: str, region: str = "DE") -> tuple[str, bool]:
    """E.164 form of a number that is at least *possible* and whether it is known valid.

    Possible means the length fits the country's plan (local-only lengths do not count);
    valid means the number range is
    assigned as far as libphonenumber knows (seed 001's own `+49 123 456789` is possible,
    not valid). Raises ValueError when the number cannot be a phone number at all.
    """
    text = str(raw).strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region.upper())
    except phonenumbers.NumberParseException:
        raise ValueError(f"invalid phone number: {raw!r}") from None
    # Local-only lengths (a number without its area code) cannot be dialled back.
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise ValueError(f"invalid phone number: {raw!r}")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164, phonenumbers.is_valid_number(number)


def is_valid_phone(e164: str) -> bool:
    """Whether an E.164 number is in a range libphonenumber knows to be assigned."""
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(e164, None))
    except phonenumbers.NumberParseException:
        return False


def fold(text: str) -> str:
    """Lower-case and strip accents ("Müller" → "muller") for matching headers and names."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def neutralize_formula(value: str) -> str:
    """Prefix a quote to cells a spreadsheet would evaluate (`= + - @`, tab, CR)."""
    if value and value[0] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value
