"""`leadflow serve --workers N`: the listener uvicorn binds is handed over as a TCP socket, so
asyncio switches Nagle's algorithm off on every connection it accepts (kit/listener.py)."""

from __future__ import annotations

import asyncio
import pickle
import socket
from multiprocessing.reduction import ForkingPickler

import uvicorn

from leadflow.kit.listener import with_tcp_protocol


def _bound() -> socket.socket:
    """The listener exactly as uvicorn's supervisor binds it for several workers."""
    config = uvicorn.Config("leadflow.app:app_factory", host="127.0.0.1", port=0, workers=2)
    return config.bind_socket()


async def _nodelay_of_accepted(listener: socket.socket) -> int:
    """TCP_NODELAY of the connection an asyncio server accepts on `listener`."""
    seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            sock = transport.get_extra_info("socket")
            seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    server = await asyncio.get_running_loop().create_server(Probe, sock=listener)
    port = listener.getsockname()[1]
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        value = await asyncio.wait_for(seen, timeout=10)
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
    return value


async def test_the_served_listener_gives_every_connection_tcp_nodelay() -> None:
    listener = with_tcp_protocol(_bound())
    assert listener.proto == socket.IPPROTO_TCP
    assert listener.get_inheritable()
    assert await _nodelay_of_accepted(listener) != 0


def test_the_worker_processes_receive_it_as_tcp() -> None:
    """The supervisor pickles the socket to each spawned worker; the protocol goes along."""
    listener = with_tcp_protocol(_bound())
    try:
        copy = pickle.loads(ForkingPickler.dumps(listener))
        try:
            assert copy.proto == socket.IPPROTO_TCP
            assert copy.getsockname() == listener.getsockname()
        finally:
            copy.close()
    finally:
        listener.close()


def test_a_socket_already_tcp_is_kept() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        assert with_tcp_protocol(sock) is sock
    finally:
        sock.close()
