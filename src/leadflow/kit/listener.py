"""The listening socket of `leadflow serve --workers N`, with TCP_NODELAY on every connection.

With more than one worker, uvicorn binds the socket itself and hands it to its worker
processes. It creates that socket without naming the protocol, so Python records `proto` 0,
every accepted connection inherits 0, and asyncio turns Nagle's algorithm off
(`TCP_NODELAY`) only on sockets whose `proto` is `IPPROTO_TCP`. Nagle then holds the last
small segment of each response until the client acknowledges the previous one, and the
client delays that acknowledgement by up to 40 ms: every request on a kept-alive connection
took ~45 ms on Linux, whatever it did (uvicorn issue #3149, open at 0.54). One worker is not
affected (asyncio builds that listener from `getaddrinfo`, which names the protocol).
"""

from __future__ import annotations

import socket

_TCP_FAMILIES = (socket.AF_INET, socket.AF_INET6)


def with_tcp_protocol(sock: socket.socket) -> socket.socket:
    """`sock` (bound, not yet listening) as a socket object that reports `IPPROTO_TCP`.

    The same file descriptor, address and options; only Python's record of the protocol
    changes, which the worker processes receive with the socket and which asyncio reads on
    each accepted connection. A Unix socket is returned as it is.
    """
    if sock.family not in _TCP_FAMILIES or sock.proto == socket.IPPROTO_TCP:
        return sock
    tcp = socket.socket(sock.family, sock.type, socket.IPPROTO_TCP, fileno=sock.detach())
    tcp.set_inheritable(True)
    return tcp
