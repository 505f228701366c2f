"""Call-request requests and responses (seed 001's shapes plus Leadflow's read models)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Safe in a URL path segment: GET /call-requests/{id} accepts the client's request_id too.
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:\-]{1,100}$"
_MAX_PROFILE_BYTES = 10_000


class CallStatus(StrEnum):
    """Where a call request stands (seed 001's status flow)."""

    QUEUED = "queued"
    OUTSIDE_BUSINESS_HOURS = "outside_business_hours"
    CALLING = "calling"
    IN_PROGRESS = "in_progress"
    WAITING_FOR_CALLBACK = "waiting_for_callback"
    BOOKED = "booked"
    FAILED = "failed"
    CANCELED = "canceled"


class EventType(StrEnum):
    """What happened to a call request (seed 001's event types plus `canceled`)."""

    REQUEST_RECEIVED = "request_received"
    SCHEDULED = "scheduled"
    CALL_STARTED = "call_started"
    CALL_CONNECTED = "call_connected"
    BOOKING_IN_PROGRESS = "booking_in_progress"
    BOOKING_CONFIRMED = "booking_confirmed"
    CALL_FAILED = "call_failed"
    CALL_COMPLETED = "call_completed"
    CANCELED = "canceled"


class CallRequestIn(BaseModel):
    """Seed 001's request body, plus an optional `lead_id`.

    Unknown fields are ignored rather than rejected: the seed's frontend sends the row it
    stored in its own table, which may carry columns of its own (status, created_at …).
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    request_id: str = Field(pattern=REQUEST_ID_PATTERN, description="The client's own id")
    user_id: str = Field(min_length=1, max_length=200, description="The client's user id")
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(max_length=5000)
    callback_number: str = Field(min_length=1, max_length=40)
    number_to_call: str | None = Field(default=None, max_length=40)
    preferred_time: str = Field(max_length=300)
    user_profile: dict[str, Any] = Field(default_factory=dict)
    lead_id: uuid.UUID | None = None

    @field_validator("user_profile")
    @classmethod
    def _small_profile(cls, v: dict[str, Any]) -> dict[str, Any]:
        if len(json.dumps(v, default=str)) > _MAX_PROFILE_BYTES:
            raise ValueError(f"must be at most {_MAX_PROFILE_BYTES} bytes as JSON")
        return v


class CallWarning(BaseModel):
    """Something accepted but worth a second look (e.g. a number not known to be valid)."""

    field: str
    code: str
    message: str


class CallAccepted(BaseModel):
    """Seed 001's immediate answer, plus our id, the current status and any warnings."""

    status: Literal["accepted"] = "accepted"
    request_id: str
    message: str
    id: uuid.UUID
    call_status: CallStatus
    duplicate: bool = False
    warnings: list[CallWarning] = Field(default_factory=list)


class CallRequestRead(BaseModel):
    """A call request."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    request_id: str
    external_user_id: str
    requested_by: uuid.UUID | None
    lead_id: uuid.UUID | None
    title: str
    description: str
    callback_number: str
    number_to_call: str
    preferred_time: str
    user_profile: dict[str, Any]
    status: CallStatus
    summary: str | None
    attempts: int
    scheduled_for: datetime | None
    provider: str | None
    provider_call_id: str | None
    last_error: str | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CallEventRead(BaseModel):
    """One step of a call request; `seq` counts from 1 per request (the SSE event id)."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    call_request_id: uuid.UUID
    seq: int
    type: EventType
    status: CallStatus
    message: str
    data: dict[str, Any] | None
    created_at: datetime


class ProviderEventOut(BaseModel):
    """What a provider callback changed."""

    applied: list[str]
    status: CallStatus
