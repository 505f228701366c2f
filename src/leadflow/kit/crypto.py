"""Encryption at rest for credentials Leadflow must read back (integration passwords and API
keys, webhook signing secrets): Fernet (AES-128-CBC + HMAC-SHA256, `cryptography`) with a key
derived from `LEADFLOW_SECRET_KEY` by HKDF-SHA256.

Tokens written under an earlier secret key stay readable while that key is listed in
`LEADFLOW_PREVIOUS_SECRET_KEYS`; `rotate` re-encrypts a token under the current key (what
`leadflow integrations rotate-key` does for every stored credential).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from leadflow.config import Settings

# A fixed context: the same secret key also signs tokens, and HKDF's `info` keeps the two
# uses apart (a leaked Fernet key says nothing about the signing key, and vice versa).
_INFO = b"leadflow credentials at rest v1"


class SecretUnreadable(Exception):
    """A stored token was encrypted under a key that is neither current nor listed as
    previous (or it was altered)."""


@lru_cache(maxsize=16)
def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def _box(current: str, previous: Sequence[str]) -> MultiFernet:
    return MultiFernet([_fernet(current), *(_fernet(k) for k in previous if k and k != current)])


def encrypt(settings: Settings, plaintext: str) -> str:
    """`plaintext` encrypted under the current secret key (a URL-safe text token)."""
    return _fernet(settings.resolved_secret_key()).encrypt(plaintext.encode()).decode()


def decrypt(settings: Settings, token: str) -> str:
    """The plaintext of a token written under the current or a previous secret key."""
    box = _box(settings.resolved_secret_key(), settings.previous_secret_keys)
    try:
        return box.decrypt(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(
            "stored credentials cannot be decrypted with LEADFLOW_SECRET_KEY or "
            "LEADFLOW_PREVIOUS_SECRET_KEYS"
        ) from None


def rotate(settings: Settings, token: str, old_keys: Sequence[str] = ()) -> str:
    """`token` re-encrypted under the current key (readable with the current key, a previous
    key from the settings or one of `old_keys`)."""
    box = _box(settings.resolved_secret_key(), [*old_keys, *settings.previous_secret_keys])
    try:
        return box.rotate(token.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable("token readable with none of the given keys") from None
