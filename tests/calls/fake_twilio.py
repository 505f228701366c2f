"""A local HTTP server standing in for Twilio's REST API (`/2010-04-01/Accounts/{sid}/Calls…`).

It records every request (method, path, headers, form fields with repeats) and answers like
Twilio: 201 with a call resource for a new call, 200 for an update (hang-up). Tests can queue
an error status for the next request.
"""

from __future__ import annotations

import base64
import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class Recorded:
    """One request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    form: list[tuple[str, str]]

    def field(self, name: str) -> str | None:
        """The (last) value of form field `name`."""
        values = self.fields(name)
        return values[-1] if values else None

    def fields(self, name: str) -> list[str]:
        """Every value of form field `name`, in order."""
        return [v for k, v in self.form if k == name]


class FakeTwilio:
    """The server; `base_url` goes into `twilio_api_base`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        # GET …/Accounts/{sid}.json (an integration's connection test) checks these when set.
        self.credentials: tuple[str, str] | None = None
        self._errors: deque[int] = deque()
        self._lock = threading.Lock()
        self._sids = (f"CA{n:032x}" for n in itertools.count(1))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> FakeTwilio:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def fail_next(self, status: int) -> None:
        """The next request gets an error status with a Twilio-style error body."""
        with self._lock:
            self._errors.append(status)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake._lock:
                    fake.requests.append(Recorded("GET", self.path, headers, []))
                parts = self.path.split("/")
                # /2010-04-01/Accounts/{sid}.json
                if len(parts) != 4 or parts[2] != "Accounts" or not parts[3].endswith(".json"):
                    self._send(404, {"code": 20404, "message": "not found"})
                    return
                sid = parts[3].removesuffix(".json")
                if fake.credentials is not None:
                    expected = base64.b64encode(":".join(fake.credentials).encode()).decode()
                    if headers.get("authorization") != f"Basic {expected}" or (
                        sid != fake.credentials[0]
                    ):
                        self._send(401, {"code": 20003, "message": "Authenticate"})
                        return
                self._send(200, {"sid": sid, "status": "active", "friendly_name": "Test"})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                form = parse_qsl(raw, keep_blank_values=True)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake._lock:
                    fake.requests.append(Recorded("POST", self.path, headers, form))
                    error = fake._errors.popleft() if fake._errors else None
                if error is not None:
                    self._send(error, {"code": 21211, "message": "Simulated Twilio error"})
                    return
                parts = self.path.split("/")
                # /2010-04-01/Accounts/{sid}/Calls.json or …/Calls/{CallSid}.json
                if len(parts) == 5 and parts[4] == "Calls.json":
                    with fake._lock:
                        sid = next(fake._sids)
                    self._send(201, {"sid": sid, "status": "queued", "to": dict(form).get("To")})
                elif len(parts) == 6 and parts[4] == "Calls":
                    self._send(200, {"sid": parts[5].removesuffix(".json"), "status": "completed"})
                else:
                    self._send(404, {"code": 20404, "message": "not found"})

            def _send(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
