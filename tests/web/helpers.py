"""Signed-in browsers for the page tests: a login session's cookie and its CSRF token."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import httpx

from leadflow.auth.service import start_session
from leadflow.auth.tokens import decode_access_token
from leadflow.models.organization import Organization
from leadflow.models.user import User
from leadflow.web.session import SESSION_COOKIE, session_csrf_token
from tests.fixtures.factories import Factory

HTMX = {"HX-Request": "true"}


@dataclass
class Browser:
    """A user signed in to the web app: their session cookie and the pages' CSRF token."""

    user: User
    token: str
    csrf: str

    @property
    def cookie(self) -> dict[str, str]:
        """The Cookie header the browser sends."""
        return {"Cookie": f"{SESSION_COOKIE}={self.token}"}

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """Cookie plus `extra` headers."""
        return {**self.cookie, **(extra or {})}

    async def get(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        """GET as this browser."""
        return await client.get(url, headers=self.headers(headers))

    async def post(
        self,
        client: httpx.AsyncClient,
        url: str,
        data: dict[str, Any] | None = None,
        *,
        csrf: bool = True,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """POST a form as this browser (with its CSRF token unless `csrf=False`)."""
        form = dict(data or {})
        if csrf:
            form["csrf_token"] = self.csrf
        return await client.post(url, data=form, headers=self.headers(headers))


async def browser(factory: Factory, org: Organization, role: str = "admin") -> Browser:
    """A new user of `org` with `role`, signed in (a login session of their own)."""
    return await signed_in(factory, await factory.user(org, role))


async def signed_in(factory: Factory, user: User) -> Browser:
    """`user` signed in to the web app with a new login session."""
    pair = await start_session(factory.session, factory.settings, user)
    await factory.session.commit()
    claims = decode_access_token(factory.settings, pair.access_token)
    assert claims is not None
    return Browser(user, pair.access_token, session_csrf_token(factory.settings, claims.session_id))


def csrf_of(html: str) -> str:
    """The CSRF token a page's forms carry."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is not None, "no CSRF token on the page"
    return found.group(1)
