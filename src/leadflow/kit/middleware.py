"""ASGI middleware: request id, client context, Prometheus metrics."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadflow.kit.context import RequestContext, reset_request, set_request

log = logging.getLogger("leadflow.errors")
_INTERNAL_DETAIL = "An unexpected error occurred; quote the request id when reporting it."

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")

REQUESTS = Counter("leadflow_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("leadflow_http_request_seconds", "HTTP latency", ["method", "route"])


class RequestContextMiddleware:
    """Accept or generate `X-Request-ID`, echo it, and expose it to logs and audit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap one HTTP request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        rid = headers.get("x-request-id", "")
        if not _SAFE_ID.match(rid):
            rid = uuid.uuid4().hex
        client = scope.get("client")
        token = set_request(
            RequestContext(
                request_id=rid,
                ip=client[0] if client else None,
                user_agent=headers.get("user-agent"),
            )
        )
        started = time.perf_counter()
        status_holder: dict[str, Any] = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                status_holder["started"] = True
                message.setdefault("headers", [])
                message["headers"].append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            # Handled here, not by Starlette's outer error middleware, so the response and
            # the log line still carry the request id. No stack trace reaches the client.
            log.exception("unhandled error")
            if status_holder.get("started"):
                raise
            status_holder["status"] = 500
            body = json.dumps(
                {
                    "type": "/problems/internal_error",
                    "title": "Internal server error",
                    "status": 500,
                    "code": "internal_error",
                    "request_id": rid,
                    "detail": _INTERNAL_DETAIL,
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/problem+json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"x-request-id", rid.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            method = scope.get("method", "")
            REQUESTS.labels(method, path, str(status_holder["status"])).inc()
            LATENCY.labels(method, path).observe(time.perf_counter() - started)
            reset_request(token)


class AliasMiddleware:
    """Serve the seeds' paths (`/leads…`, `/api/auth/…`) by rewriting them to canonical ones.

    Rewriting before routing keeps one route per endpoint: the aliases stay out of the
    OpenAPI schema and do not lengthen the route table every request is matched against.
    """

    def __init__(self, app: ASGIApp, aliases: dict[str, str]) -> None:
        self.app = app
        # Longest prefix first so "/api/v1/admin/users" wins over shorter overlaps.
        self.aliases = sorted(aliases.items(), key=lambda kv: len(kv[0]), reverse=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite the path of a matching request, then pass it on."""
        if scope["type"] == "http":
            path: str = scope["path"]
            for alias, target in self.aliases:
                if path == alias or path.startswith(alias + "/"):
                    scope = dict(scope)
                    scope["path"] = target + path[len(alias) :]
                    scope["raw_path"] = scope["path"].encode()
                    break
        await self.app(scope, receive, send)
