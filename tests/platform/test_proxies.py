"""The client ip comes from X-Forwarded-For only behind trusted proxies (login limiter, logs,
sessions)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from leadflow.config import Settings
from leadflow.kit.context import client_ip, parse_networks
from leadflow.models.auth_session import AuthSession
from tests.fixtures.factories import PASSWORD, Factory

# httpx's in-process transport reports the peer as 127.0.0.1.
TRUSTED = ["127.0.0.1", "10.0.0.0/8", "2001:db8::/32"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The in-process client's address and a private range are trusted proxies."""
    settings.trusted_proxies = TRUSTED
    return settings


@pytest.fixture
async def direct(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client connecting from an untrusted address."""
    transport = httpx.ASGITransport(app=app, client=("203.0.113.50", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


def test_right_most_untrusted_address_wins() -> None:
    nets = parse_networks(TRUSTED)
    # The client may write anything on the left; the proxies' own entries are on the right.
    assert client_ip("10.0.0.1", ["6.6.6.6, 198.51.100.7, 10.0.0.9"], nets) == "198.51.100.7"
    assert client_ip("10.0.0.1", ["6.6.6.6", "198.51.100.7"], nets) == "198.51.100.7"
    assert client_ip("10.0.0.1", [], nets) == "10.0.0.1"
    assert client_ip("10.0.0.1", ["10.1.1.1, 10.2.2.2"], nets) == "10.1.1.1"
    assert client_ip("10.0.0.1", ["garbage, 10.2.2.2"], nets) == "10.2.2.2"
    assert client_ip("10.0.0.1", ["198.51.100.7:5555"], nets) == "198.51.100.7"
    assert client_ip("10.0.0.1", ["[2001:db9::1]:443"], nets) == "2001:db9::1"
    assert client_ip("2001:db8::5", ["2001:db9::1"], nets) == "2001:db9::1"
    # An untrusted peer's header is ignored, and nothing is trusted by default.
    assert client_ip("203.0.113.50", ["198.51.100.7"], nets) == "203.0.113.50"
    assert client_ip("10.0.0.1", ["198.51.100.7"], ()) == "10.0.0.1"


def test_setting_accepts_a_comma_list_and_rejects_non_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LEADFLOW_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1")
    assert Settings().trusted_proxies == ["10.0.0.0/8", "192.168.1.1"]
    monkeypatch.setenv("LEADFLOW_TRUSTED_PROXIES", '["::1"]')
    assert Settings().trusted_proxies == ["::1"]
    monkeypatch.setenv("LEADFLOW_TRUSTED_PROXIES", "proxy.example.com")
    with pytest.raises(ValueError, match="not an IP"):
        Settings()


async def _fail(client: httpx.AsyncClient, email: str, xff: str | None) -> httpx.Response:
    headers = {"X-Forwarded-For": xff} if xff else {}
    return await client.post(
        "/api/v1/auth/login", json={"email": email, "password": "wrong"}, headers=headers
    )


async def test_login_limiter_keys_on_the_forwarded_client(
    client: httpx.AsyncClient,
    direct: httpx.AsyncClient,
    factory: Factory,
    session: AsyncSession,
) -> None:
    org = await factory.org()
    user = await factory.user(org)
    # Ten failures for ten different emails from one client behind the proxy: its ip is blocked.
    for n in range(10):
        assert (await _fail(client, f"nobody{n}@example.com", "198.51.100.7")).status_code == 401
    login = {"email": user.email, "password": PASSWORD}
    blocked = await client.post(
        "/api/v1/auth/login", json=login, headers={"X-Forwarded-For": "198.51.100.7"}
    )
    assert blocked.status_code == 429
    # Another client behind the same proxy is not blocked, and its session records its ip.
    r = await client.post(
        "/api/v1/auth/login", json=login, headers={"X-Forwarded-For": "6.6.6.6, 198.51.100.8"}
    )
    assert r.status_code == 200, r.text
    ips = set(await session.scalars(select(AuthSession.ip).where(AuthSession.user_id == user.id)))
    assert ips == {"198.51.100.8"}
    # A direct (untrusted) client cannot escape its own block by forging the header.
    for n in range(10):
        assert (await _fail(direct, f"other{n}@example.com", f"192.0.2.{n}")).status_code == 401
    r = await direct.post(
        "/api/v1/auth/login", json=login, headers={"X-Forwarded-For": "192.0.2.99"}
    )
    assert r.status_code == 429
