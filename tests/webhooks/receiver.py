"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 that verifies every request's
Standard Webhooks signature with the `standardwebhooks` library and answers with the status
codes a test queues (200 when none is queued).

The library checks the `webhook-timestamp` against "now" (5 minutes either way). The receiver's
now is Leadflow's clock, so a test may freeze it and move it by hours between attempts.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from leadflow.kit.clock import clock


class ClockedWebhook(Webhook):
    """The library's verifier with the tolerance window around Leadflow's clock."""

    def _Webhook__verify_timestamp(self, timestamp_header: str) -> datetime:
        now = clock.now()
        try:
            at = datetime.fromtimestamp(float(timestamp_header), tz=UTC)
        except ValueError:
            raise WebhookVerificationError("Invalid Signature Headers") from None
        if at < now - timedelta(minutes=5):
            raise WebhookVerificationError("Message timestamp too old")
        if at > now + timedelta(minutes=5):
            raise WebhookVerificationError("Message timestamp too new")
        return at


@dataclass
class Received:
    """One request: its headers (lower-case), raw body and what verification found."""

    path: str
    headers: dict[str, str]
    body: bytes
    payload: Any  # the verified JSON, or None
    error: str | None  # why verification failed, or None

    @property
    def event(self) -> str:
        """The event type of the verified payload."""
        return str(self.payload["type"])


class Receiver:
    """The server. `secret` is the endpoint's signing secret (set after creating it)."""

    def __init__(self) -> None:
        self.secret: str | None = None
        self.received: list[Received] = []
        self._replies: deque[int] = deque()
        self._failing: dict[str, deque[int]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>/hooks`."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/hooks"

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    def start(self) -> Receiver:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def reply(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, in order."""
        with self._lock:
            self._replies.extend(statuses)

    def fail_for(self, needle: str, *statuses: int) -> None:
        """Answer the next requests whose body contains `needle` with these statuses (sends
        run concurrently, so a global order would not say which request gets which)."""
        with self._lock:
            self._failing.setdefault(needle, deque()).extend(statuses)

    def verified(self) -> list[Any]:
        """The payloads of every request whose signature verified."""
        return [r.payload for r in self.received if r.error is None]

    def verify_with(self, secret: str, r: Received) -> Any:
        """Verify a received request with another secret (raises when it does not match)."""
        return ClockedWebhook(secret).verify(r.body, r.headers)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        rx = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                payload, error = None, None
                try:
                    assert rx.secret is not None, "no secret set"
                    payload = ClockedWebhook(rx.secret).verify(body, headers)
                except (WebhookVerificationError, AssertionError, ValueError) as exc:
                    error = str(exc) or type(exc).__name__
                with rx._lock:
                    rx.received.append(Received(self.path, headers, body, payload, error))
                    status = rx._replies.popleft() if rx._replies else 200
                    for needle, queued in rx._failing.items():
                        if queued and needle.encode() in body:
                            status = queued.popleft()
                            break
                data = json.dumps({"ok": status < 300, "status": status}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
