"""Per-request context (request id, client ip) carried in contextvars, and how the client ip
is found behind trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What audit rows, logs and the login limiter need to know about the current request."""

    request_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None


_EMPTY = RequestContext()
_current: ContextVar[RequestContext | None] = ContextVar("leadflow_request", default=None)


def current_request() -> RequestContext:
    """The context of the request being served (empty outside a request)."""
    return _current.get() or _EMPTY


def set_request(ctx: RequestContext) -> object:
    """Install `ctx`; returns a token for `reset_request`."""
    return _current.set(ctx)


def reset_request(token: object) -> None:
    """Restore the previous context."""
    _current.reset(token)  # type: ignore[arg-type]


def parse_networks(entries: Iterable[str]) -> tuple[Network, ...]:
    """IPs and CIDRs as networks (a bare IP is a /32 or /128)."""
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip())


def _address(text: str) -> Address | None:
    text = text.strip()
    if text.startswith("["):  # "[v6]" or "[v6]:port"
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:  # "v4:port"
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _trusted(addr: Address, networks: Sequence[Network]) -> bool:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    return any(addr in net for net in networks)


def client_ip(
    peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]
) -> str | None:
    """The client address: `peer`, unless `peer` is a trusted proxy.

    Behind trusted proxies the X-Forwarded-For chain is read from the right (each proxy appends
    the address it saw) and the first address that is not a trusted proxy is the client. What
    lies left of it was written by the client and may be forged, so it is never used. A chain
    of only trusted proxies yields its left-most entry; a malformed entry stops the walk at the
    last address a trusted proxy vouched for.
    """
    if peer is None or not trusted:
        return peer
    peer_addr = _address(peer)
    if peer_addr is None or not _trusted(peer_addr, trusted):
        return peer
    hops = [h for header in forwarded_for for h in header.split(",") if h.strip()]
    found = str(peer_addr)
    for hop in reversed(hops):
        addr = _address(hop)
        if addr is None:
            return found
        found = str(addr)
        if not _trusted(addr, trusted):
            return found
    return found
