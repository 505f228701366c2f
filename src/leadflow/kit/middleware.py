"""ASGI middleware: request id, client context, Prometheus metrics, request body limits."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from leadflow.exceptions import PayloadTooLarge
from leadflow.kit.clock import utcnow
from leadflow.kit.context import (
    Network,
    RequestContext,
    client_ip,
    reset_request,
    set_request,
)
from leadflow.kit.errors import INTERNAL_ERROR
from leadflow.kit.problems import (
    database_busy,
    database_unavailable,
    database_unreachable,
    log_database_outage,
    problem,
)
from leadflow.kit.requeststats import RequestStats, route_group

log = logging.getLogger("leadflow.errors")
_INTERNAL_DETAIL = "An unexpected error occurred; quote the request id when reporting it."

_SAFE_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")

REQUESTS = Counter("leadflow_http_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("leadflow_http_request_seconds", "HTTP latency", ["method", "route"])

# Label values must stay few whatever clients send: other methods count as OTHER, and a path
# no route matched (404s, scans) counts as `unmatched`, never as itself.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"


def metric_labels(scope: Scope, route_paths: Mapping[int, str] | None = None) -> tuple[str, str]:
    """The bounded (method, route template) labels of a served request.

    FastAPI puts the route as its router declared it into the scope (without the prefix it
    was included under); `route_paths` maps such routes (by id) to their full template.
    """
    method = str(scope.get("method", ""))
    route = scope.get("route")
    path = (route_paths or {}).get(id(route)) if route is not None else None
    if path is None:
        path = getattr(route, "path", None)
    return (method if method in METHODS else "OTHER", path if isinstance(path, str) else UNMATCHED)


class RequestContextMiddleware:
    """Accept or generate `X-Request-ID`, echo it, and expose it to logs and audit.

    The client ip in the context is the direct peer, or, when the peer is one of
    `trusted_proxies`, the right-most untrusted address of `X-Forwarded-For`.

    Every answered request is counted in Prometheus' metrics and, when `stats` is given, in
    the process's per-minute figures by route group (the admin health endpoints read them);
    `stats` returns the current figures, read per request (the application's state owns them).
    """

    def __init__(
        self,
        app: ASGIApp,
        trusted_proxies: Sequence[Network] = (),
        route_paths: Mapping[int, str] | None = None,
        stats: Callable[[], RequestStats] | None = None,
    ) -> None:
        self.app = app
        self.trusted = tuple(trusted_proxies)
        self.route_paths = route_paths
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap one HTTP request."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        forwarded: list[str] = []
        for k, v in scope["headers"]:
            name, value = k.decode("latin-1").lower(), v.decode("latin-1")
            headers[name] = value
            if name == "x-forwarded-for":
                forwarded.append(value)
        rid = headers.get("x-request-id", "")
        if not _SAFE_ID.match(rid):
            rid = uuid.uuid4().hex
        client = scope.get("client")
        token = set_request(
            RequestContext(
                request_id=rid,
                ip=client_ip(client[0] if client else None, forwarded, self.trusted),
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
        except Exception as exc:
            # Handled here, not by Starlette's outer error middleware, so the response and
            # the log line still carry the request id. No stack trace reaches the client.
            if database_unreachable(exc) and not status_holder.get("started"):
                # An outage, not a bug: a clean 503 the client may retry, one log line.
                log_database_outage(exc)
                await database_unavailable()(scope, receive, send_wrapper)
                return
            if database_busy(exc) and not status_holder.get("started"):
                log.warning("database busy: %s", str(exc).splitlines()[0][:200])
                busy = "The database is busy at the moment; retry shortly"
                await database_unavailable(busy)(scope, receive, send_wrapper)
                return
            log.exception("unhandled error")
            if status_holder.get("started"):
                raise
            status_holder["status"] = 500
            body = json.dumps(
                {
                    "type": f"/problems/{INTERNAL_ERROR}",
                    "title": "Internal server error",
                    "status": 500,
                    "code": INTERNAL_ERROR,
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
            elapsed = time.perf_counter() - started
            method, path = metric_labels(scope, self.route_paths)
            REQUESTS.labels(method, path, str(status_holder["status"])).inc()
            LATENCY.labels(method, path).observe(elapsed)
            if self.stats is not None:
                self.stats().record(route_group(path), status_holder["status"], elapsed, utcnow())
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
                    # In place, as Starlette's router does: the outer middleware then sees the
                    # matched route (its metrics label) of an aliased request too.
                    scope["path"] = target + path[len(alias) :]
                    scope["raw_path"] = scope["path"].encode()
                    break
        await self.app(scope, receive, send)


class _BodyTooLarge(HTTPException):
    """Raised from `receive` once the body crosses its limit.

    An HTTPException, so FastAPI's body parsing passes it on instead of reporting a
    malformed body; the middleware answers it either way.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than {limit} bytes")
        self.limit = limit


def _too_large(limit: int) -> JSONResponse:
    return problem(
        413,
        title="Payload too large",
        detail=f"The request body is larger than {limit} bytes",
        code=PayloadTooLarge.code,
        max_bytes=limit,
    )


class BodyLimitMiddleware:
    """Bound every request body while it streams, before anything parses or authenticates it.

    `limits()` returns the default limit and the per-path ones (exact canonical paths, so this
    runs inside the alias rewriting); it is read per request, so settings changes apply at once.
    A declared Content-Length above the limit is refused without calling the app. Otherwise the
    bytes are counted in `receive`, which raises as soon as the limit is crossed; the app's own
    response, if it has not started yet, is replaced by the 413.
    """

    def __init__(self, app: ASGIApp, limits: Callable[[], tuple[int, Mapping[str, int]]]) -> None:
        self.app = app
        self.limits = limits

    def limit_for(self, path: str) -> int:
        """The body limit of `path`."""
        default, special = self.limits()
        return special.get(path.rstrip("/") or "/", default)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request within its body limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = next((v for k, v in scope["headers"] if k.lower() == b"content-length"), None)
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await _too_large(limit)(scope, receive, send)
            return

        received = 0
        exceeded = False
        state = {"started": False, "ended": False, "replaced": False}

        async def limited_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise _BodyTooLarge(limit)
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLarge(limit)
            return message

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                if exceeded:
                    # Whatever the app made of the failed read (a 400, a 422 …), the
                    # answer is the 413.
                    state["replaced"] = True
                    await _too_large(limit)(scope, receive, send)
                    state["started"] = state["ended"] = True
                    return
                state["started"] = True
            elif message["type"] == "http.response.body":
                if state["replaced"]:
                    return
                if not message.get("more_body", False):
                    state["ended"] = True
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except* _BodyTooLarge:  # also when a task group (a streaming response) wrapped it
            if not state["started"]:
                await _too_large(limit)(scope, receive, send)
            elif not state["ended"]:
                # A streaming response is under way: close it rather than break the protocol.
                await send({"type": "http.response.body", "body": b"", "more_body": False})
