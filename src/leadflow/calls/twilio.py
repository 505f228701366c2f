"""The Twilio adapter: outbound calls over Twilio's REST API, signed status callbacks.

Calls are created with `POST {api_base}/2010-04-01/Accounts/{sid}/Calls.json` (basic auth
sid:token, form fields To, From, Twiml, StatusCallback …). Twilio then reports the call's
progress to `StatusCallback`; those requests carry `X-Twilio-Signature`, an HMAC-SHA1 (key:
the auth token) of the full callback URL followed by every POST parameter as name+value,
sorted by name, base64-encoded. `valid_signature` implements that algorithm, and
`updates_from_callback` maps Twilio's `CallStatus` to the provider-neutral updates.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import AsyncGenerator, Callable, Mapping, Sequence
from urllib.parse import urlsplit, urlunsplit
from xml.sax.saxutils import escape

import httpx

from leadflow.calls.providers import CallUpdate, OutboundCall, ProviderError, UpdateKind
from leadflow.config import Settings
from leadflow.kit.outbound import TargetRefused

log = logging.getLogger("leadflow.calls")

# Status callbacks Twilio should send; `answered` arrives as CallStatus=in-progress.
CALLBACK_EVENTS = ("initiated", "ringing", "answered", "completed")
_TWIML_TEXT_LIMIT = 1500  # Twilio accepts at most 4000 characters of TwiML per call


def compute_signature(auth_token: str, url: str, params: Sequence[tuple[str, str]]) -> str:
    """Twilio's request signature of `url` and the POST `params` (repeated names allowed)."""
    data = url
    for name in sorted({n for n, _ in params}):
        for value in sorted(v for n, v in params if n == name):
            data += name + value
    digest = hmac.new(auth_token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def _port_variants(url: str) -> list[str]:
    # Twilio signs the URL as it called it; some setups add or drop the default port, so
    # (like Twilio's own validators) accept both spellings.
    parts = urlsplit(url)
    host = parts.hostname or ""
    default = 443 if parts.scheme == "https" else 80
    without = urlunsplit(parts._replace(netloc=host))
    with_port = urlunsplit(parts._replace(netloc=f"{host}:{parts.port or default}"))
    return [url, without, with_port]


def valid_signature(
    auth_token: str, url: str, params: Sequence[tuple[str, str]], signature: str | None
) -> bool:
    """Whether `signature` (the X-Twilio-Signature header) signs `url` and `params`."""
    if not auth_token or not signature:
        return False
    return any(
        hmac.compare_digest(compute_signature(auth_token, u, params), signature)
        for u in _port_variants(url)
    )


def updates_from_callback(params: Mapping[str, str]) -> list[CallUpdate]:
    """The updates one status callback stands for (empty for ringing and the like).

    `completed` means the call was answered and has ended. A voice-AI flow running the
    conversation may add `BookingStatus=confirmed|failed` and `BookingSummary=…`; without
    them nothing was booked during the call and the request waits for a callback.
    """
    status = params.get("CallStatus", "")
    if status == "in-progress":
        return [CallUpdate(UpdateKind.CONNECTED, "Call answered")]
    if status == "completed":
        connected = CallUpdate(UpdateKind.CONNECTED, "Call answered")
        duration = params.get("CallDuration")
        took = f" after {duration} s" if duration else ""
        booking = params.get("BookingStatus", "").lower()
        if booking == "confirmed":
            summary = params.get("BookingSummary") or "Appointment booked"
            return [
                connected,
                CallUpdate(UpdateKind.BOOKED, "Appointment successfully booked", summary=summary),
            ]
        reason = params.get("BookingSummary") or "no booking was confirmed during the call"
        return [connected, CallUpdate(UpdateKind.NOT_BOOKED, f"Call ended{took}: {reason}")]
    if status in ("busy", "no-answer"):
        return [CallUpdate(UpdateKind.NO_ANSWER, "Line busy" if status == "busy" else "No answer")]
    if status == "failed":
        code = params.get("ErrorCode") or params.get("SipResponseCode")
        detail = f" (code {code})" if code else ""
        return [CallUpdate(UpdateKind.FAILED, f"Twilio could not connect the call{detail}")]
    if status == "canceled":
        return [CallUpdate(UpdateKind.FAILED, "The call was canceled at Twilio")]
    return []  # queued, initiated, ringing: nothing changes for us


def _spoken_number(number: str) -> str:
    # Read digit by digit: "+4930…" spoken as one large number is useless on the phone.
    return " ".join(c for c in number if c.isdigit())


def twiml(call: OutboundCall) -> str:
    """What the call says: the request read out, and the number to call back (German)."""
    caller = f" im Auftrag von {call.caller_name}" if call.caller_name else ""
    parts = [
        f"Guten Tag, dies ist ein automatischer Anruf{caller}.",
        f"Anliegen: {call.title}.",
        call.description,
        f"Gewünschter Termin: {call.preferred_time}." if call.preferred_time else "",
        f"Bitte rufen Sie zurück unter {_spoken_number(call.callback_number)}.",
        "Vielen Dank.",
    ]
    text = " ".join(p for p in parts if p)[:_TWIML_TEXT_LIMIT]
    # Title and description are user input: escaped, they stay text inside <Say>.
    return f'<Response><Say language="de-DE">{escape(text)}</Say></Response>'


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("message") or body.get("detail") or body)[:200]
    return str(body)[:200]


class TwilioProvider:
    """Places calls through Twilio's REST API; progress arrives as status callbacks."""

    name = "twilio"

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        from_number: str,
        api_base: str = "https://api.twilio.com",
        timeout: float = 15.0,
        transport: Callable[[], httpx.AsyncBaseTransport] | None = None,
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.from_number = from_number
        self.api_base = api_base.rstrip("/")
        self.timeout = timeout
        # A new transport per request (a client closes its transport): an organisation's own
        # API base goes through the outbound address guard.
        self.transport = transport

    @classmethod
    def from_settings(cls, settings: Settings) -> TwilioProvider:
        """The provider configured by `LEADFLOW_TWILIO_*` / `TWILIO_*`."""
        return cls(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            from_number=settings.twilio_from_number,
            api_base=settings.twilio_api_base,
        )

    def _calls_url(self, call_sid: str | None = None) -> str:
        tail = f"/{call_sid}" if call_sid else ""
        return f"{self.api_base}/2010-04-01/Accounts/{self.account_sid}/Calls{tail}.json"

    def _check_configured(self) -> None:
        missing = [
            name
            for name, value in (
                ("TWILIO_ACCOUNT_SID", self.account_sid),
                ("TWILIO_AUTH_TOKEN", self.auth_token),
                ("TWILIO_FROM_NUMBER", self.from_number),
            )
            if not value
        ]
        if missing:
            raise ProviderError(f"Twilio is not configured: set {', '.join(missing)}")

    async def _post(self, url: str, data: Mapping[str, str | list[str]]) -> httpx.Response:
        try:
            transport = self.transport() if self.transport is not None else None
            async with httpx.AsyncClient(timeout=self.timeout, transport=transport) as client:
                return await client.post(url, data=data, auth=(self.account_sid, self.auth_token))
        except (httpx.HTTPError, TargetRefused) as exc:
            raise ProviderError(f"Twilio is unreachable ({type(exc).__name__})") from exc

    async def place_call(self, call: OutboundCall) -> AsyncGenerator[CallUpdate, None]:
        """Create the call at Twilio and report its sid; the rest comes as callbacks."""
        self._check_configured()
        response = await self._post(
            self._calls_url(),
            {
                "To": call.to,
                "From": self.from_number,
                "Twiml": twiml(call),
                "StatusCallback": call.status_callback_url,
                "StatusCallbackMethod": "POST",
                "StatusCallbackEvent": list(CALLBACK_EVENTS),
            },
        )
        if response.status_code >= 400:
            raise ProviderError(
                f"Twilio refused the call ({response.status_code}): {_error_text(response)}"
            )
        try:
            sid = str(response.json()["sid"])
        except (ValueError, KeyError, TypeError):
            raise ProviderError("Twilio answered without a call sid") from None
        yield CallUpdate(UpdateKind.PLACED, f"Twilio call {sid} queued", provider_call_id=sid)

    async def hangup(self, provider_call_id: str) -> None:
        """End the call (Status=completed cancels a ringing call and hangs up a live one)."""
        self._check_configured()
        response = await self._post(self._calls_url(provider_call_id), {"Status": "completed"})
        if response.status_code >= 400:
            # Typically the call has ended already; nothing left to stop.
            log.info(
                "twilio hangup not applied",
                extra={"call_sid": provider_call_id, "status": response.status_code},
            )
