"""Hashing of tokens and secrets, and redaction of secret fields."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

SECRET_KEYS = frozenset(
    {
        "password",
        "password_hash",
        "key_hash",
        "token_hash",
        "secret",
        "api_key",
        "token",
        "refresh_token",
        "access_token",
        "smtp_password",
        "credentials",
    }
)


def token_digest(token: str) -> str:
    """SHA-256 hex digest of a high-entropy token (refresh tokens, API keys)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token(nbytes: int = 32) -> str:
    """A URL-safe random token."""
    return secrets.token_urlsafe(nbytes)


def constant_time_equals(a: str, b: str) -> bool:
    """Compare secrets without leaking timing."""
    return hmac.compare_digest(a.encode(), b.encode())


def redact(data: Any) -> Any:
    """Copy of `data` with every secret-looking key replaced by `"***"`."""
    if isinstance(data, dict):
        return {k: ("***" if k in SECRET_KEYS else redact(v)) for k, v in data.items()}
    if isinstance(data, list):
        return [redact(v) for v in data]
    return data
