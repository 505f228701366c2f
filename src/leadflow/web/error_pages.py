"""Error pages: the web app's routes (and browsers asking for HTML) get pages in the app's
style; the API keeps its problem+json answers.

The app's exception handlers are wrapped rather than replaced: each wrapper decides per request
whether it answers with a page or hands the error to the problem+json handler it wraps.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response

from leadflow.exceptions import LeadflowError
from leadflow.web.errors import SignInRequired
from leadflow.web.templating import is_htmx, redirect, render

log = logging.getLogger("leadflow.web")

Handler = Callable[[Request, Exception], Awaitable[Response]]

# Paths of the web app (everything else answers problem+json unless a browser asks for HTML).
WEB_PREFIXES = ("/crm/", "/admin/", "/static/", "/notifications/")
WEB_PATHS = frozenset({"/", "/login", "/logout", "/accept-invite", "/language", "/admin"})
# Never pages, whatever the Accept header says.
API_PREFIXES = ("/api/", "/docs", "/redoc", "/openapi.json", "/metrics", "/health", "/ready")


def wants_page(request: Request) -> bool:
    """Whether an error of this request is answered with an HTML page."""
    # The path inside the app: behind a proxy prefix (`--root-path /crm`) the prefix is not
    # part of it, so `/crm/api/…` is still the API.
    path = request.scope.get("path", request.url.path)
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :] or "/"
    if path.startswith(API_PREFIXES):
        return False
    if path in WEB_PATHS or path.startswith(WEB_PREFIXES):
        return True
    # An unknown path typed into a browser: a page too (curl and API clients get JSON).
    return "text/html" in request.headers.get("accept", "")


def _status_of(exc: Exception) -> int:
    if isinstance(exc, LeadflowError):
        return exc.status
    if isinstance(exc, StarletteHTTPException):
        return exc.status_code
    if isinstance(exc, RequestValidationError):
        return 422
    return 500


def error_page(request: Request, exc: Exception) -> Response:
    """The page (or, for htmx, the flash message) for `exc`."""
    status = _status_of(exc)
    if isinstance(exc, SignInRequired) or status == 401:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        if request.method != "GET" or is_htmx(request):
            target = "/"
        return redirect(request, f"/login?next={quote(target, safe='')}")
    if status >= 500:
        log.error("unhandled error on a page", exc_info=exc)
    kind = {403: "forbidden", 404: "not_found"}.get(status, "error" if status >= 500 else "bad")
    detail = exc.detail if isinstance(exc, LeadflowError) and status < 500 else None
    context = {"status": status, "kind": kind, "detail": detail}
    if is_htmx(request):
        # Shown in the page's flash region whatever the request targeted.
        return render(
            request,
            "_flash.html",
            {**context, "level": "error"},
            status_code=status,
            headers={"HX-Retarget": "#flash", "HX-Reswap": "innerHTML"},
        )
    return render(request, "error.html", context, status_code=status)


def _wrap(original: Handler) -> Handler:
    async def handler(request: Request, exc: Exception) -> Response:
        if wants_page(request):
            try:
                return error_page(request, exc)
            except Exception:  # the error page itself failed: the plain answer still works
                log.exception("error page failed")
        return await original(request, exc)

    return handler


def install(app: FastAPI) -> None:
    """Wrap every registered exception handler with the page-or-problem decision."""
    for key, original in list(app.exception_handlers.items()):
        app.exception_handlers[key] = _wrap(original)  # type: ignore[arg-type]
