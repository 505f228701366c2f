"""Signing per the Standard Webhooks specification (the `standardwebhooks` package): headers
`webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature` (`v1,<base64 HMAC-SHA256
of "{id}.{timestamp}.{body}">`, space-separated when an old secret still signs after a
rotation). The body is `{"type", "timestamp", "data"}`."""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import uuid
from collections.abc import Sequence
from datetime import datetime
from math import floor

from standardwebhooks import Webhook

PREFIX = "whsec_"
_MIN_BYTES, _MAX_BYTES = 24, 64


def new_secret() -> str:
    """A fresh secret: `whsec_` and 32 random bytes in base64."""
    return PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(value: str) -> str:
    """`value` if it is `whsec_` followed by base64 of 24 to 64 bytes, else ValueError."""
    if not value.startswith(PREFIX):
        raise ValueError(f"a secret starts with {PREFIX!r}")
    try:
        raw = base64.b64decode(value[len(PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the part after 'whsec_' must be base64") from None
    if not _MIN_BYTES <= len(raw) <= _MAX_BYTES:
        raise ValueError(f"the secret must decode to {_MIN_BYTES}-{_MAX_BYTES} bytes")
    return value


def message_id(value: uuid.UUID) -> str:
    """The `webhook-id` of a message."""
    return f"msg_{value.hex}"


def envelope(event_type: str, occurred_at: datetime, data_json: str) -> str:
    """The request body around the stored JSON of the event's data (no re-encoding)."""
    return (
        f'{{"type":{json.dumps(event_type)},'
        f'"timestamp":{json.dumps(occurred_at.isoformat())},"data":{data_json}}}'
    )


def headers(signing_secrets: Sequence[str], msg_id: str, at: datetime, body: str) -> dict[str, str]:
    """The three signature headers for `body` sent at `at`."""
    signature = " ".join(Webhook(s).sign(msg_id, at, body) for s in signing_secrets)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(floor(at.timestamp())),
        "webhook-signature": signature,
    }
