"""Outbound requests to addresses a tenant chose (webhook targets, an organisation's SMTP relay,
OpenAI base URL or Twilio API base) without letting them reach the inside of the network.

A target is refused when any address its name resolves to is not globally routable: private
(10/8, 172.16/12, 192.168/16, fc00::/7), loopback, link-local (169.254/16 — the cloud metadata
service — and fe80::/10), shared (100.64/10), multicast, reserved or unspecified, including
IPv4 addresses wrapped in IPv6 (`::ffff:127.0.0.1`, 6to4, Teredo, NAT64).

Checking a name once and connecting later leaves room for DNS rebinding (the name answers a
public address to the check and a private one to the connection). `guarded_transport` closes
that gap: its connections resolve the name themselves, check every address, and connect to
the checked address; TLS still verifies the certificate against the name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class TargetRefused(Exception):
    """The target resolves to an address outbound requests may not reach (or to none)."""


def _embedded_v4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    if ip.teredo is not None:
        found.extend(ip.teredo)
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def is_public(ip: IPAddress) -> bool:
    """Whether `ip` is a globally routable unicast address (IPv4 inside IPv6 unwrapped)."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.scope_id:
            return False  # fe80::1%eth0 and the like: a local interface by definition
        if any(not is_public(inner) for inner in _embedded_v4(ip)):
            return False
    return ip.is_global and not ip.is_multicast


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    literal = host.strip("[]")
    try:
        return [ipaddress.ip_address(literal)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(literal, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:  # no such name, a malformed one
        raise TargetRefused(f"{host} does not resolve") from exc
    out: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        ip = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and len(sockaddr) > 3 and sockaddr[3]:
            ip = ipaddress.IPv6Address(f"{ip}%{sockaddr[3]}")
        if ip not in out:
            out.append(ip)
    if not out:
        raise TargetRefused(f"{host} does not resolve")
    return out


def refused(addresses: Iterable[IPAddress]) -> list[IPAddress]:
    """The addresses of `addresses` that outbound requests may not reach."""
    return [ip for ip in addresses if not is_public(ip)]


async def check_target(host: str, port: int, *, allow_private: bool) -> list[IPAddress]:
    """The addresses of `host`; TargetRefused when it does not resolve, or when one of them
    is not public and `allow_private` is off (one bad address refuses the name: a client may
    pick any of them)."""
    addresses = await resolve(host, port)
    bad = [] if allow_private else refused(addresses)
    if bad:
        raise TargetRefused(
            f"{host} resolves to {', '.join(map(str, bad))}, which is not a public address"
        )
    return addresses


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Opens TCP connections only to checked addresses (see the module docstring)."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve, check, then connect to the first checked address that answers."""
        addresses = await check_target(host, port, allow_private=self.allow_private)
        error: Exception | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                error = exc
        assert error is not None
        raise error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109  (httpcore's interface)
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Never: outbound requests go over TCP."""
        raise httpcore.ConnectError("unix sockets are not allowed for outbound requests")

    async def sleep(self, seconds: float) -> None:
        """Delegate to AnyIO."""
        await self._inner.sleep(seconds)


class _GuardedTransport(httpx.AsyncHTTPTransport):
    def __init__(self, *, allow_private: bool) -> None:
        super().__init__(trust_env=False)
        # httpx builds its own pool; this one differs only in the network backend.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=20,
            max_keepalive_connections=10,
            keepalive_expiry=5.0,
            network_backend=_GuardedBackend(allow_private),
        )


def guarded_transport(*, allow_private: bool) -> httpx.AsyncBaseTransport:
    """An httpx transport whose every connection is checked as described above. Proxies from
    the environment are ignored: the proxy, not this process, would pick the address."""
    return _GuardedTransport(allow_private=allow_private)


def guarded_client(*, allow_private: bool, timeout: float) -> httpx.AsyncClient:
    """An httpx client on `guarded_transport` that follows no redirects (a redirect could
    point anywhere)."""
    return httpx.AsyncClient(
        transport=guarded_transport(allow_private=allow_private),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
