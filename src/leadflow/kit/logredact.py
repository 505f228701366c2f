"""Secrets out of the URLs that the access log and httpx write.

Two log lines carry whole URLs: uvicorn's access log (the request's path and query) and httpx's
"HTTP Request" line (every outbound call: webhook deliveries, OpenAI, Twilio). A report's
download link is a credential in its path, and webhook URLs often are one (chat and automation
services put their secret in the path), so both lines are rewritten before any handler sees
them: the access log keeps the path with the download token and secret-looking query values
replaced, httpx's line keeps only the scheme and host of the target.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

REDACTED = "[redacted]"

# Path segments that are credentials: a report's signed download link.
_SECRET_SEGMENTS = re.compile(r"(/reports/downloads/)[^/?#]+")
# Query values whose name says secret (`token`, `api_key`, `signature`, `password`, …).
_SECRET_QUERY = re.compile(
    r"([?&][^=&#]*(?:token|secret|password|passwd|key|signature|sig)[^=&#]*=)[^&#]*",
    re.IGNORECASE,
)


def redact_path(path: str) -> str:
    """`path` (with its query) with credential segments and secret query values replaced."""
    return _SECRET_QUERY.sub(rf"\1{REDACTED}", _SECRET_SEGMENTS.sub(rf"\1{REDACTED}", path))


def origin_of(url: str) -> str:
    """Scheme and host (without any user info) of `url`, its path and query replaced."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    rest = "" if parts.path in ("", "/") and not parts.query else f"/{REDACTED}"
    return f"{parts.scheme}://{netloc}{rest}"


class _AccessLogFilter(logging.Filter):
    """uvicorn.access: `'%s - "%s %s HTTP/%s" %d'`, the path with query third."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


class _OutboundFilter(logging.Filter):
    """httpx: `'HTTP Request: %s %s "%s %d %s"'`, the URL second."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(record.msg, str)
            and record.msg.startswith("HTTP Request:")
            and isinstance(args, tuple)
            and len(args) >= 2
        ):
            record.args = (args[0], origin_of(str(args[1])), *args[2:])
        return True


_FILTERS: dict[str, type[logging.Filter]] = {
    "uvicorn.access": _AccessLogFilter,
    "httpx": _OutboundFilter,
}


def install_redaction() -> None:
    """Attach the filters to their loggers (once; calling again changes nothing).

    A filter on the logger itself runs for every record that logger creates, before any
    handler, whatever the logging configuration and level.
    """
    for name, kind in _FILTERS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, kind) for f in logger.filters):
            logger.addFilter(kind())
