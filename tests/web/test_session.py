"""Sign-in, sign-out, invitations, CSRF, the language switch and the error pages."""

from __future__ import annotations

import re
import uuid

import httpx
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.accounts.invitations import invitation_token
from leadflow.models.auth_session import AuthSession
from leadflow.models.invitation import Invitation
from leadflow.models.outbox import Notification
from leadflow.models.user import User
from leadflow.web.session import ANON_CSRF_COOKIE, SESSION_COOKIE
from tests.fixtures.factories import PASSWORD, Factory
from tests.web.helpers import HTMX, browser, csrf_of


def _set_cookie(response: httpx.Response, name: str) -> str:
    """The Set-Cookie header `response` sends for `name`."""
    for header in response.headers.get_list("set-cookie"):
        if header.startswith(f"{name}="):
            return header
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers.get_list('set-cookie')}")


async def _login_form(client: httpx.AsyncClient) -> tuple[str, str]:
    page = await client.get("/login")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    anon = _set_cookie(page, ANON_CSRF_COOKIE).split(";")[0].split("=", 1)[1]
    return csrf_of(page.text), anon


async def test_sign_in_sets_an_http_only_lax_cookie_and_shows_the_shell(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org("Shell GmbH")
    user = await factory.user(org, "manager")
    token, anon = await _login_form(client)
    r = await client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token, "next": "/crm/leads"},
        headers={"Cookie": f"{ANON_CSRF_COOKIE}={anon}"},
    )
    assert (r.status_code, r.headers["location"]) == (303, "/crm/leads")
    cookie = _set_cookie(r, SESSION_COOKIE)
    flags = {part.strip().lower() for part in cookie.split(";")[1:]}
    assert "httponly" in flags and "samesite=lax" in flags and "path=/" in flags
    assert "secure" not in flags  # env=test over plain http
    session_token = cookie.split(";")[0].split("=", 1)[1]
    page = await client.get("/", headers={"Cookie": f"{SESSION_COOKIE}={session_token}"})
    assert page.status_code == 200
    assert "Shell GmbH" in page.text and user.email in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]


async def test_the_session_cookie_is_secure_outside_development(
    app: FastAPI, client: httpx.AsyncClient, factory: Factory
) -> None:
    app.state.settings = app.state.settings.model_copy(update={"env": "production"})
    org = await factory.org()
    user = await factory.user(org)
    token, anon = await _login_form(client)
    assert "secure" in _set_cookie(await client.get("/login"), ANON_CSRF_COOKIE).lower()
    r = await client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
        headers={"Cookie": f"{ANON_CSRF_COOKIE}={anon}"},
    )
    assert r.status_code == 303
    assert "secure" in {p.strip().lower() for p in _set_cookie(r, SESSION_COOKIE).split(";")}


async def test_a_wrong_password_or_a_missing_csrf_token_signs_nobody_in(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    user = await factory.user(org)
    token, anon = await _login_form(client)
    jar = {"Cookie": f"{ANON_CSRF_COOKIE}={anon}"}
    wrong = await client.post(
        "/login", data={"email": user.email, "password": "nope", "csrf_token": token}, headers=jar
    )
    assert wrong.status_code == 401
    assert "Invalid email or password" in wrong.text
    assert SESSION_COOKIE not in wrong.headers.get("set-cookie", "")
    forged = await client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": "forged" * 8},
        headers=jar,
    )
    assert forged.status_code == 403
    assert forged.headers["content-type"].startswith("text/html")
    assert SESSION_COOKIE not in forged.headers.get("set-cookie", "")


async def test_pages_send_strangers_to_the_sign_in(client: httpx.AsyncClient) -> None:
    r = await client.get("/crm/leads?q=x")
    assert (r.status_code, r.headers["location"]) == (303, "/login?next=%2Fcrm%2Fleads%3Fq%3Dx")
    r = await client.get("/crm/leads", headers=HTMX)
    assert r.headers["hx-redirect"].startswith("/login")
    r = await client.get("/", headers={"Cookie": f"{SESSION_COOKIE}=not-a-token"})
    assert r.status_code == 303


async def test_an_api_key_in_the_cookie_is_not_a_session(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    admin = await factory.member(org)
    key = await client.post(
        "/api/v1/admin/api-keys",
        headers=admin.headers,
        json={"name": "k", "scopes": ["leads:read"]},
    )
    assert key.status_code == 201, key.text
    r = await client.get("/", headers={"Cookie": f"{SESSION_COOKIE}={key.json()['api_key']}"})
    assert r.status_code == 303


async def test_logout_ends_the_login_session(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    assert (await me.post(client, "/logout", csrf=False)).status_code == 403
    r = await me.post(client, "/logout")
    assert (r.status_code, r.headers["location"]) == (303, "/login")
    assert "max-age=0" in _set_cookie(r, SESSION_COOKIE).lower()
    assert (await me.get(client, "/")).status_code == 303  # the old cookie is dead
    row = await session.scalar(
        select(AuthSession)
        .where(AuthSession.user_id == me.user.id)
        .execution_options(populate_existing=True)
    )
    assert row is not None and row.revoked_reason == "logout"


async def test_an_invitation_is_accepted_on_its_page(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org("Invite AG")
    admin = await factory.member(org)
    r = await client.post(
        "/api/v1/admin/users",
        headers=admin.headers,
        json={
            "full_name": "Nina Neu",
            "email": "nina@example.com",
            "role": "counselor",
            "send_invite": True,
        },
    )
    assert r.status_code == 201, r.text
    invitation = await session.scalar(
        select(Invitation).where(Invitation.user_id == uuid.UUID(r.json()["user_id"]))
    )
    assert invitation is not None
    link = invitation_token(factory.settings.resolved_secret_key(), invitation.id)
    page = await client.get(f"/accept-invite?token={link}")
    assert page.status_code == 200 and f'value="{link}"' in page.text
    anon = _set_cookie(page, ANON_CSRF_COOKIE).split(";")[0].split("=", 1)[1]
    jar = {"Cookie": f"{ANON_CSRF_COOKIE}={anon}"}
    form = {"token": link, "csrf_token": csrf_of(page.text)}
    short = await client.post(
        "/accept-invite", data={**form, "password": "short", "password2": "short"}, headers=jar
    )
    assert short.status_code == 422 and "at least 10 characters" in short.text
    bad = await client.post(
        "/accept-invite",
        data={**form, "token": "x" * 43, "password": "long enough 1", "password2": "long enough 1"},
        headers=jar,
    )
    assert bad.status_code == 422 and "not valid" in bad.text
    ok = await client.post(
        "/accept-invite",
        data={**form, "password": "long enough 1", "password2": "long enough 1"},
        headers=jar,
    )
    assert (ok.status_code, ok.headers["location"]) == (303, "/")
    cookie = _set_cookie(ok, SESSION_COOKIE).split(";")[0]
    home = await client.get("/", headers={"Cookie": cookie})
    assert home.status_code == 200 and "Invite AG" in home.text
    user = await session.scalar(
        select(User)
        .where(User.email == "nina@example.com")
        .execution_options(populate_existing=True)
    )
    assert user is not None and user.password_hash


async def test_language_from_accept_language_and_the_switch(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    german = await me.get(
        client, "/crm/leads", headers={"Accept-Language": "de-DE,de;q=0.9,en;q=0.5"}
    )
    assert '<html lang="de"' in german.text and "Handlungsbedarf" in german.text
    english = await me.get(client, "/crm/leads", headers={"Accept-Language": "fr, en;q=0.5"})
    assert '<html lang="en"' in english.text and "Needs action" in english.text
    r = await me.post(client, "/language", {"lang": "de", "next": "/crm/pipeline"})
    assert (r.status_code, r.headers["location"]) == (303, "/crm/pipeline")
    chosen = _set_cookie(r, "lf_lang").split(";")[0]
    page = await client.get(
        "/crm/leads", headers={**me.cookie, "Cookie": f"{me.cookie['Cookie']}; {chosen}"}
    )
    assert '<html lang="de"' in page.text
    # Never a redirect to another site.
    r = await me.post(client, "/language", {"lang": "en", "next": "//evil.example"})
    assert r.headers["location"] == "/"


async def test_error_pages_for_pages_and_problems_for_the_api(
    client: httpx.AsyncClient, factory: Factory
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    page = await me.get(client, "/no/such/page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text
    missing = await me.get(client, f"/crm/leads/{uuid.uuid4()}")
    assert missing.status_code == 404 and "<html" in missing.text
    api = await client.get("/api/v1/no/such", headers={"Accept": "text/html"})
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    plain = await client.get("/no/such/page")
    assert plain.headers["content-type"] == "application/problem+json"
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/openapi.json")).status_code == 200
    htmx = await me.get(client, f"/crm/leads/{uuid.uuid4()}", headers=HTMX)
    assert htmx.status_code == 404 and htmx.headers["hx-retarget"] == "#flash"


async def test_vendored_assets_are_served(client: httpx.AsyncClient) -> None:
    r = await client.get("/static/vendor/htmx-2.0.11/htmx.min.js")
    assert r.status_code == 200 and "htmx" in r.text[:2000]
    for path in (
        "/static/vendor/htmx-2.0.11/LICENSE",
        "/static/vendor/pico-2.1.1/pico.min.css",
        "/static/vendor/chartjs-4.6.1/chart.umd.min.js",
        "/static/app.css",
        "/static/app.js",
    ):
        assert (await client.get(path)).status_code == 200, path
    page = await client.get("/login")
    assert re.search(r'<script src="/static/vendor/htmx-2\.0\.11/htmx\.min\.js"', page.text)


async def test_notifications_page_and_read_all(
    client: httpx.AsyncClient, factory: Factory, session: AsyncSession
) -> None:
    org = await factory.org()
    me = await browser(factory, org)
    other = await browser(factory, org)
    for user, title in ((me.user, "Yours"), (other.user, "Not yours")):
        session.add(
            Notification(organization_id=org.id, user_id=user.id, kind="t", title=title, data={})
        )
    await session.commit()
    page = await me.get(client, "/crm/notifications")
    assert "Yours" in page.text and "Not yours" not in page.text
    assert 'data-count="1"' in page.text
    assert (await me.post(client, "/notifications/read-all", csrf=False)).status_code == 403
    r = await me.post(client, "/notifications/read-all")
    assert (r.status_code, r.headers["location"]) == (303, "/crm/notifications")
    assert 'data-count="0"' in (await me.get(client, "/crm/notifications")).text
    assert 'data-count="1"' in (await other.get(client, "/crm/notifications")).text
