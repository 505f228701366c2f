"""Rendering: the Jinja2 environment, the shell's context and the headers of every page."""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from leadflow.authz.actor import Actor
from leadflow.kit.context import current_request
from leadflow.notifications import repository as notifications_repository
from leadflow.notifications import service as notifications
from leadflow.organizations import service as orgs
from leadflow.web.i18n import LANGUAGES, language_of, translator
from leadflow.web.session import apply_cookies, csrf_token

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"

# Scripts only from our own origin (htmx reads its config from a meta tag; no inline script),
# no framing. Chart.js and htmx set element styles through the CSSOM, which CSP allows.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt_datetime(value: datetime | None, lang: str = "en") -> str:
    if value is None:
        return ""
    return value.strftime("%d.%m.%Y %H:%M" if lang == "de" else "%Y-%m-%d %H:%M")


def query_string(**params: Any) -> str:
    """A query string of the non-empty parameters (lists repeat their key)."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        if value is None or value == "" or value is False:
            continue
        if isinstance(value, list | tuple):
            pairs.extend((key, str(v)) for v in value if v not in (None, ""))
        else:
            pairs.append((key, "true" if value is True else str(value)))
    return urlencode(pairs)


def local_path(url: str) -> str:
    """The path and query of one of our own absolute links (built with `public_url`), so the
    browser follows it on the host it is using (and the CSP's `form-action 'self'` holds)."""
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


env.filters["datetime"] = _fmt_datetime
env.filters["local_path"] = local_path
env.globals["query"] = query_string
env.globals["static"] = lambda path: f"/static/{path}"


def is_htmx(request: Request) -> bool:
    """Whether htmx sent the request (it wants a fragment, not a page)."""
    return request.headers.get("hx-request") == "true" and not request.headers.get(
        "hx-history-restore-request"
    )


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    """Render `template` with the language, CSRF token and shell values of the request."""
    lang = language_of(request)
    ctx: dict[str, Any] = {
        "request": request,
        "_": translator(lang),
        "lang": lang,
        "languages": LANGUAGES,
        "csrf_token": csrf_token(request),
        "actor": getattr(request.state, "web_actor", None),
        "shell": getattr(request.state, "web_shell", None),
        "request_id": current_request().request_id,
        "path": request.url.path,
    }
    ctx.update(context or {})
    html = env.get_template(template).render(ctx)
    response = HTMLResponse(html, status_code=status_code, headers={**SECURITY_HEADERS})
    if headers:
        response.headers.update(headers)
    apply_cookies(request, response)
    return response


def redirect(request: Request, url: str) -> Response:
    """303 to `url`; for htmx an `HX-Redirect` (it would otherwise swap the target page in)."""
    if request.headers.get("hx-request") == "true":
        response: Response = Response(status_code=204, headers={"HX-Redirect": url})
    else:
        response = RedirectResponse(url, status_code=303)
    return apply_cookies(request, response)


async def load_shell(request: Request, session: AsyncSession, actor: Actor) -> None:
    """What the shell shows on a full page: the organisation, unread notifications."""
    org = await orgs.get_organization(session, actor.organization_id)
    unread = await notifications.unread_count(session, actor) if actor.user_id else 0
    latest: uuid.UUID | None = None
    if actor.user_id is not None:
        latest = await notifications_repository.latest_id(session, actor.user_id)
    request.state.web_shell = {"org_name": org.name, "unread": unread, "latest": latest}
