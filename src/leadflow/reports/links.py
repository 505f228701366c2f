"""Signed download links: `<run id>.<expiry>.<HMAC-SHA256>` with the app's secret key.

A link names one run and carries its expiry; the MAC binds both, so neither can be changed.
It needs no bearer token: whoever holds it may download that one file until it expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import UTC, datetime

from leadflow.reports.errors import DownloadLinkExpired, InvalidDownloadLink

# Domain separation: a MAC made for something else with the same key never verifies here.
_PURPOSE = b"leadflow.reports.download\x00"


def _key(secret: str) -> bytes:
    return hashlib.sha256(_PURPOSE + secret.encode()).digest()


def _mac(secret: str, payload: str) -> str:
    digest = hmac.new(_key(secret), payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def sign(secret: str, run_id: uuid.UUID, expires_at: datetime) -> str:
    """The token of a link to run `run_id`'s file, valid until `expires_at` (whole seconds)."""
    payload = f"{run_id.hex}.{int(expires_at.timestamp())}"
    return f"{payload}.{_mac(secret, payload)}"


def expiry_of(expires_at: datetime) -> datetime:
    """The expiry a token actually carries (whole seconds, UTC)."""
    return datetime.fromtimestamp(int(expires_at.timestamp()), UTC)


def verify(secret: str, token: str, now: datetime) -> uuid.UUID:
    """The run id of a valid, unexpired token; 403 `invalid_download_link` or
    `download_link_expired` otherwise. The MAC is checked first (in constant time), so an
    altered expiry is an invalid link, not an expired one."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidDownloadLink("This download link is not valid")
    run_hex, expiry, given = parts
    if not hmac.compare_digest(given.encode(), _mac(secret, f"{run_hex}.{expiry}").encode()):
        raise InvalidDownloadLink("This download link is not valid")
    try:
        run_id = uuid.UUID(hex=run_hex)
        expires = datetime.fromtimestamp(int(expiry), UTC)
    except (ValueError, OverflowError, OSError):
        raise InvalidDownloadLink("This download link is not valid") from None
    if now >= expires:
        raise DownloadLinkExpired("This download link has expired; export the report again")
    return run_id
