"""AI bridge requests and responses: `POST /ai {action, data}` and the generations list."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from leadflow.ai.local_rules import as_utc, normalize_disg, normalize_language

Language = Literal["de", "en"]
Channel = Literal["whatsapp", "email", "sms", "phone"]

_CHANNEL_WORDS: dict[str, Channel] = {
    "whatsapp": "whatsapp",
    "wa": "whatsapp",
    "email": "email",
    "e-mail": "email",
    "mail": "email",
    "sms": "sms",
    "text": "sms",
    "phone": "phone",
    "call": "phone",
    "telefon": "phone",
    "anruf": "phone",
}


def parse_when(value: Any) -> datetime | None:
    """A contact date: ISO date or date-time, or German "20.11.2024"; naive means UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return as_utc(value)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        text = value.strip()
        for parse in (datetime.fromisoformat, lambda s: datetime.strptime(s, "%d.%m.%Y")):
            try:
                return as_utc(parse(text))
            except ValueError:
                continue
    raise ValueError("must be a date (YYYY-MM-DD or DD.MM.YYYY) or an ISO 8601 date-time")


def _language(value: str | None) -> str | None:
    if value is None or value == "":
        return None
    lang = normalize_language(value)
    if lang is None:
        raise ValueError("must be de or en")
    return lang


class LeadIn(BaseModel):
    """A lead sent inline instead of a `lead_id` (seed 000's free-form object).

    `name` is split into first and last name; the last contact may come as `last_contact`,
    `last_contacted_at` or `extra.last_contact`. Unknown keys are ignored.
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    name: str | None = Field(default=None, max_length=250)
    first_name: str | None = Field(default=None, max_length=120)
    last_name: str | None = Field(default=None, max_length=120)
    company: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    status: str | None = Field(default=None, max_length=60)
    channel: str | None = Field(default=None, max_length=40)
    notes: str | None = Field(default=None, max_length=20_000)
    disg_type: str | None = Field(default=None, max_length=20)
    language: str | None = None
    last_contact: datetime | None = Field(
        default=None, validation_alias=AliasChoices("last_contact", "last_contacted_at")
    )
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("disg_type")
    @classmethod
    def _disg(cls, v: str | None) -> str | None:
        if not v:
            return None
        disg = normalize_disg(v)
        if disg is None:
            raise ValueError("must be one of D, I, S, G, C")
        return disg

    @field_validator("language")
    @classmethod
    def _lang(cls, v: str | None) -> str | None:
        return _language(v)

    @field_validator("last_contact", mode="before")
    @classmethod
    def _when(cls, v: Any) -> datetime | None:
        return parse_when(v)

    @model_validator(mode="after")
    def _extra_last_contact(self) -> LeadIn:
        if self.last_contact is None:
            for key in ("last_contact", "last_contacted_at"):
                if self.extra.get(key) not in (None, ""):
                    try:
                        self.last_contact = parse_when(self.extra[key])
                    except ValueError as exc:
                        raise ValueError(f"extra.{key} {exc}") from None
                    break
        return self


class ChatMessageIn(BaseModel):
    """One conversation turn. Only the server's instructions are instructions: a `system` turn
    from the client is passed on as a user turn."""

    model_config = ConfigDict(extra="ignore")

    role: Literal["user", "assistant", "system"] = "user"
    content: str = Field(min_length=1, max_length=8000)


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class _LeadRef(_Data):
    lead: LeadIn | None = None
    lead_id: uuid.UUID | None = None

    def _one_lead(self, *, required: bool) -> None:
        if self.lead is not None and self.lead_id is not None:
            raise ValueError("give either lead or lead_id, not both")
        if required and self.lead is None and self.lead_id is None:
            raise ValueError("lead or lead_id is required")


class GenerateMessageData(_LeadRef):
    """A follow-up for a lead (`lead` object or `lead_id`); the messages hold the request."""

    messages: list[ChatMessageIn] = Field(default_factory=list, max_length=50)
    channel: Channel | None = None
    language: Language | None = None

    @field_validator("channel", mode="before")
    @classmethod
    def _channel(cls, v: Any) -> Any:
        if isinstance(v, str) and v.strip():
            key = v.strip().lower().replace(" ", "")
            if key not in _CHANNEL_WORDS:
                raise ValueError("must be one of whatsapp, email, sms, phone")
            return _CHANNEL_WORDS[key]
        return v or None

    @field_validator("language", mode="before")
    @classmethod
    def _lang(cls, v: Any) -> Any:
        return _language(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _lead(self) -> GenerateMessageData:
        self._one_lead(required=True)
        return self


class ChatData(_LeadRef):
    """A conversation about a lead (`lead` or `lead_id`) or, without one, the pipeline."""

    messages: list[ChatMessageIn] = Field(min_length=1, max_length=50)
    language: Language | None = None

    @field_validator("language", mode="before")
    @classmethod
    def _lang(cls, v: Any) -> Any:
        return _language(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _lead(self) -> ChatData:
        self._one_lead(required=False)
        if not any(m.role != "assistant" for m in self.messages):
            raise ValueError("messages need at least one user message")
        return self


class AnalyzeData(_LeadRef):
    """Analyse a lead; `apply` (with `lead_id` only) writes the result to the lead."""

    apply: bool = False

    @model_validator(mode="after")
    def _lead(self) -> AnalyzeData:
        self._one_lead(required=True)
        if self.apply and self.lead_id is None:
            raise ValueError("apply needs lead_id (an inline lead cannot be written)")
        return self


class SummarizeData(_Data):
    """Summarise a stored lead and its timeline."""

    lead_id: uuid.UUID
    language: Language | None = None

    @field_validator("language", mode="before")
    @classmethod
    def _lang(cls, v: Any) -> Any:
        return _language(v) if isinstance(v, str) else v


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GenerateMessageRequest(_Request):
    """`generate_message`: a follow-up in the lead's DISG style, channel and language."""

    action: Literal["generate_message"]
    data: GenerateMessageData


class ChatRequest(_Request):
    """`chat`: a multi-turn conversation about a lead or the pipeline."""

    action: Literal["chat"]
    data: ChatData


class AnalyzeRequest(_Request):
    """`analyze_lead`: stage, urgency, next step, score and reasons."""

    action: Literal["analyze_lead"]
    data: AnalyzeData


class SummarizeRequest(_Request):
    """`summarize_lead`: a short summary of the lead's timeline."""

    action: Literal["summarize_lead"]
    data: SummarizeData


AiRequest = Annotated[
    GenerateMessageRequest | ChatRequest | AnalyzeRequest | SummarizeRequest,
    Field(discriminator="action"),
]


class AiWarning(BaseModel):
    """Something the caller should know before using the answer."""

    code: str
    message: str


class _Response(BaseModel):
    reply: str
    provider: str = Field(description="`local` (rule-based, no language model) or `openai`")
    model: str
    prompt_version: str
    generation_id: uuid.UUID
    fallback: bool = Field(description="The configured provider failed; the local one answered")
    warnings: list[AiWarning]
    lead_id: uuid.UUID | None


class MessageResponse(_Response):
    """A draft; `reply` is the text to show (with the subject line for email)."""

    action: Literal["generate_message"] = "generate_message"
    channel: Channel
    language: Language
    subject: str | None
    body: str


class ChatResponse(_Response):
    """A chat answer."""

    action: Literal["chat"] = "chat"


class AnalysisResponse(_Response):
    """A lead analysis; `applied` tells whether it was written to the lead."""

    action: Literal["analyze_lead"] = "analyze_lead"
    status: str
    needs_action: bool
    next_action_at: datetime | None
    next_action_description: str | None
    score: int = Field(ge=0, le=100)
    reasons: list[str]
    applied: bool


class SummaryResponse(_Response):
    """A short summary of the lead's timeline."""

    action: Literal["summarize_lead"] = "summarize_lead"
    language: Language


AiResponse = Annotated[
    MessageResponse | ChatResponse | AnalysisResponse | SummaryResponse,
    Field(discriminator="action"),
]


class GenerationRead(BaseModel):
    """One stored AI call."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    action: str
    lead_id: uuid.UUID | None
    actor_user_id: uuid.UUID | None
    provider: str
    model: str
    prompt_version: str
    input: dict[str, Any]
    output: dict[str, Any] | None
    input_tokens: int | None
    output_tokens: int | None
    latency_ms: int
    outcome: Literal["ok", "fallback", "error"]
    fallback: bool
    error: str | None
    created_at: datetime
