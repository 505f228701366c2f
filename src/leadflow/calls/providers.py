"""The voice-provider interface and the simulated provider behind it.

A provider places one call attempt and reports what happens as a stream of `CallUpdate`s;
the job applies each update in its own transaction and stops as soon as one no longer
applies (the request was canceled meanwhile). Providers get plain data, never a session.

`LEADFLOW_VOICE_PROVIDER` picks `simulated` (default, offline, deterministic) or `twilio`
(see `leadflow.calls.twilio`). A provider whose calls run elsewhere (Twilio) reports only
`PLACED`; the rest arrives later as status callbacks mapped to the same updates.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class UpdateKind(StrEnum):
    """What a provider can report about a call attempt."""

    PLACED = "placed"  # accepted by the provider; `provider_call_id` identifies the call
    CONNECTED = "connected"  # someone answered
    BOOKING = "booking"  # the voice AI is negotiating the appointment
    BOOKED = "booked"  # appointment confirmed; `summary` says which
    NOT_BOOKED = "not_booked"  # the call ended without a booking: a human has to call back
    NO_ANSWER = "no_answer"  # busy or nobody answered: worth another attempt
    FAILED = "failed"  # technical failure on the provider's side: worth another attempt


@dataclass(frozen=True, slots=True)
class CallUpdate:
    """One report of a provider about the current attempt."""

    kind: UpdateKind
    message: str = ""
    summary: str | None = None
    provider_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class OutboundCall:
    """Everything a provider needs to place one attempt."""

    call_request_id: uuid.UUID
    attempt: int
    to: str
    callback_number: str
    title: str
    description: str
    preferred_time: str
    caller_name: str | None
    status_callback_url: str


class ProviderError(Exception):
    """The provider could not place or run the call (HTTP error, bad configuration …)."""


class VoiceProvider(Protocol):
    """What the call jobs need from a voice provider."""

    name: str

    def place_call(self, call: OutboundCall) -> AsyncGenerator[CallUpdate, None]:
        """Place one attempt and yield what happens; raise ProviderError on failure."""
        ...

    async def hangup(self, provider_call_id: str) -> None:
        """End a running call (after a cancel); must not fail when it has ended already."""
        ...


def _last_digit(number: str) -> str:
    digits = [c for c in number if c.isdigit()]
    return digits[-1] if digits else "0"


class SimulatedProvider:
    """Offline provider with outcomes chosen by the last digit of the number called.

    | last digit | outcome |
    | --- | --- |
    | 0-6 | answers, books the appointment (summary names title and preferred time) |
    | 7 | no answer (every attempt) → retried, then `waiting_for_callback` |
    | 8 | provider failure (every attempt) → retried, then `failed` |
    | 9 | answers, but no appointment can be booked → `waiting_for_callback` |
    """

    name = "simulated"

    async def place_call(self, call: OutboundCall) -> AsyncGenerator[CallUpdate, None]:
        """Play the outcome of `call.to` step by step."""
        digit = _last_digit(call.to)
        if digit == "8":
            raise ProviderError(f"Simulated provider failure calling {call.to}")
        if digit == "7":
            yield CallUpdate(UpdateKind.NO_ANSWER, f"No answer from {call.to}")
            return
        yield CallUpdate(UpdateKind.CONNECTED, f"Connected to {call.to}")
        wanted = call.preferred_time or "the next free slot"
        yield CallUpdate(UpdateKind.BOOKING, f"Voice AI is booking '{call.title}' for {wanted}")
        if digit == "9":
            yield CallUpdate(
                UpdateKind.NOT_BOOKED,
                f"No free appointment for {wanted}; the other side will call back on "
                f"{call.callback_number}",
            )
            return
        yield CallUpdate(
            UpdateKind.BOOKED,
            "Appointment successfully booked",
            summary=f"Appointment booked for {wanted}: {call.title} (simulated call to {call.to})",
        )

    async def hangup(self, provider_call_id: str) -> None:
        """Nothing runs outside this process: the job notices the cancel by itself."""
        return None
