"""A local HTTP server that speaks the OpenAI Responses API (`POST /v1/responses`).

It records every request (path, headers, JSON body) and answers with a valid Response object.
Tests queue behaviours: a given output text, an HTTP error, invalid JSON, or a hang that lasts
until the server is stopped (longer than any client timeout, without the test sleeping).
`hold()` makes every request wait at the door until `open()`; `wait_for_requests(n)` blocks
until n requests have arrived (both events, no sleeps).
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INPUT_TOKENS = 123
OUTPUT_TOKENS = 45
DEFAULT_ANALYSIS = {
    "status": "proposal",
    "needs_action": True,
    "next_action_at": None,
    "next_action_description": "Angebot senden",
    "score": 77,
    "reasons": ["Wartet auf ein Angebot"],
}


@dataclass
class Recorded:
    """One request the server received."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def schema_name(self) -> str | None:
        """The structured-output schema name, if the request asked for one."""
        fmt = (self.body.get("text") or {}).get("format") or {}
        return fmt.get("name") if fmt.get("type") == "json_schema" else None

    @property
    def input_text(self) -> str:
        """All input items' text, joined."""
        items = self.body.get("input") or []
        if isinstance(items, str):
            return items
        return "\n".join(str(i.get("content", "")) for i in items)


@dataclass
class _Behaviour:
    kind: str  # "text", "status", "hang"
    text: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


class FakeOpenAI:
    """The server; `base_url` goes into the client's `base_url`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        # GET /v1/models (an integration's connection test): the models listed, and the key
        # it insists on when set.
        self.models = ["gpt-4o-mini", "gpt-4.1"]
        self.api_key: str | None = None
        self._queue: deque[_Behaviour] = deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._gate = threading.Event()
        self._gate.set()
        self._arrived = threading.Condition(self._lock)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>/v1`."""
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAI:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Release hanging requests, stop serving and close the socket."""
        self._stopping.set()
        self._gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------------ behaviours

    def reply(self, text: str) -> None:
        """The next request gets `text` as its output text."""
        self._push(_Behaviour("text", text=text))

    def reply_json(self, payload: Any) -> None:
        """The next request gets `payload` as JSON output text."""
        self.reply(json.dumps(payload))

    def fail(self, status: int = 500, *, retry_after_ms: int | None = None) -> None:
        """The next request gets an HTTP error."""
        headers = {"retry-after-ms": str(retry_after_ms)} if retry_after_ms is not None else {}
        self._push(_Behaviour("status", status=status, headers=headers))

    def hang(self) -> None:
        """The next request gets no answer until the server stops."""
        self._push(_Behaviour("hang"))

    def hold(self) -> None:
        """From now on, requests wait (after being recorded) until `open()` is called."""
        self._gate.clear()

    def open(self) -> None:
        """Let waiting and later requests through."""
        self._gate.set()

    def wait_for_requests(self, n: int, timeout: float = 30) -> bool:
        """Block until at least `n` requests were received (False if `timeout` passed first:
        a safety net so a broken test fails instead of hanging)."""
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self.requests) >= n, timeout=timeout)

    def _push(self, behaviour: _Behaviour) -> None:
        with self._lock:
            self._queue.append(behaviour)

    def _next(self, body: dict[str, Any]) -> _Behaviour:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return _Behaviour("text", text=self._default_text(body))

    @staticmethod
    def _default_text(body: dict[str, Any]) -> str:
        fmt = (body.get("text") or {}).get("format") or {}
        if fmt.get("name") == "lead_analysis":
            return json.dumps(DEFAULT_ANALYSIS)
        if fmt.get("name") == "lead_message":
            email = "Channel email:" in str(body.get("instructions", ""))
            return json.dumps(
                {"subject": "Ihr Angebot" if email else None, "body": "Hallo Lea, (model draft)"}
            )
        return "Model answer."

    # ------------------------------------------------------------------ HTTP

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def do_GET(self) -> None:
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake._arrived:
                    fake.requests.append(Recorded(self.path, headers, {}))
                    fake._arrived.notify_all()
                if self.path != "/v1/models":
                    self._send(404, {"error": {"message": "no such route", "type": "invalid"}})
                    return
                if fake.api_key and headers.get("authorization") != f"Bearer {fake.api_key}":
                    error = {"message": "Incorrect API key", "type": "invalid_request_error"}
                    self._send(401, {"error": error})
                    return
                models = [
                    {"id": m, "object": "model", "created": 0, "owned_by": "test"}
                    for m in fake.models
                ]
                self._send(200, {"object": "list", "data": models})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b"{}"
                body = json.loads(raw or b"{}")
                headers = {k.lower(): v for k, v in self.headers.items()}
                with fake._arrived:
                    fake.requests.append(Recorded(self.path, headers, body))
                    fake._arrived.notify_all()
                fake._gate.wait(timeout=60)
                if self.path != "/v1/responses":
                    self._send(404, {"error": {"message": "no such route", "type": "invalid"}})
                    return
                behaviour = fake._next(body)
                if behaviour.kind == "hang":
                    fake._stopping.wait(timeout=30)
                    return
                if behaviour.kind == "status":
                    error = {"message": "simulated failure", "type": "server_error", "code": None}
                    self._send(behaviour.status, {"error": error}, behaviour.headers)
                    return
                self._send(200, _response(body, behaviour.text))

            def _send(
                self, status: int, payload: Any, headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout); nothing to answer

        return Handler


def _response(request: dict[str, Any], text: str) -> dict[str, Any]:
    """A completed Responses API object carrying `text`."""
    return {
        "id": "resp_test_1",
        "object": "response",
        "created_at": int(time.time()),
        "model": request.get("model", "unknown"),
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": request.get("instructions"),
        "output": [
            {
                "type": "message",
                "id": "msg_test_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
        ],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": INPUT_TOKENS,
            "output_tokens": OUTPUT_TOKENS,
            "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens_details": {"reasoning_tokens": 0},
        },
    }
