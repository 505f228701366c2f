"""The OpenAI provider: the official SDK (`AsyncOpenAI`) and the Responses API.

Every failure — HTTP error, timeout, refusal, output that is not the JSON the schema asks for —
becomes a `ProviderError`; the service then lets the local provider answer. Timeouts and
retries are the SDK's own (`timeout`, `max_retries`). Requests are sent with `store=False`:
lead data is not kept on OpenAI's side for later retrieval.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal, TypeVar, cast

import httpx
import openai
from openai import AsyncOpenAI
from openai.types.responses import ResponseInputParam, ResponseTextConfigParam
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from leadflow.ai import prompts
from leadflow.ai.local_rules import as_utc, normalize_disg
from leadflow.ai.providers import (
    AnalyzeTask,
    ChatTask,
    MessageTask,
    ProviderError,
    Result,
    SummaryTask,
)
from leadflow.ai.types import Analysis, Draft

_MAX_TOKENS = {"message": 800, "chat": 800, "analysis": 500, "summary": 400}
_TIMELINE_EVENTS = 30  # the newest events are enough for four sentences


class _MessageOut(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    subject: str | None = Field(default=None, max_length=300)
    body: str = Field(min_length=1, max_length=8000)


class _AnalysisOut(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    status: Literal["new", "contacted", "qualified", "proposal", "won", "lost"]
    needs_action: bool
    next_action_at: datetime | None
    next_action_description: str | None = Field(max_length=500)
    score: int = Field(ge=0, le=100)
    reasons: list[str] = Field(max_length=10)


class OpenAIProvider:
    """Language-model answers through the OpenAI Responses API."""

    name = "openai"
    prompt_version = prompts.PROMPT_VERSION

    def __init__(
        self,
        *,
        api_key: str,
        model: str,
        base_url: str = "",
        timeout: float = 20,
        max_retries: int = 2,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.model = model
        self._timeout = timeout
        # Without a key every call fails over to the local provider (with a warning) instead
        # of the whole bridge refusing to start.
        self._client = (
            AsyncOpenAI(
                api_key=api_key,
                base_url=base_url or None,
                timeout=timeout,
                max_retries=max_retries,
                # An organisation's own base URL goes through the outbound address guard.
                http_client=http_client,  # type: ignore[arg-type]  # httpx clients are accepted
            )
            if api_key
            else None
        )

    async def aclose(self) -> None:
        """Close the SDK's connection pool."""
        if self._client is not None:
            await self._client.close()

    async def _respond(
        self,
        kind: str,
        *,
        instructions: str,
        items: list[dict[str, str]],
        schema: tuple[str, dict[str, Any]] | None = None,
    ) -> tuple[str, int | None, int | None]:
        """The output text and token counts of one Responses API call."""
        if self._client is None:
            raise ProviderError("OPENAI_API_KEY is not set")
        extra: dict[str, Any] = {}
        if schema is not None:
            extra["text"] = cast(ResponseTextConfigParam, prompts.json_schema_format(*schema))
        try:
            response = await self._client.responses.create(
                model=self.model,
                instructions=instructions,
                input=cast(ResponseInputParam, items),
                max_output_tokens=_MAX_TOKENS[kind],
                store=False,
                **extra,
            )
        except openai.APITimeoutError:
            raise ProviderError(f"timed out after {self._timeout:g} s") from None
        except openai.APIStatusError as exc:
            raise ProviderError(f"HTTP {exc.status_code} from the API") from None
        except openai.OpenAIError as exc:
            raise ProviderError(f"{type(exc).__name__}: {exc}"[:300]) from None
        usage = response.usage
        tokens_in = usage.input_tokens if usage else None
        tokens_out = usage.output_tokens if usage else None
        if response.status not in (None, "completed"):
            raise ProviderError(
                f"response {response.status}", input_tokens=tokens_in, output_tokens=tokens_out
            )
        text = response.output_text.strip()
        if not text:
            raise ProviderError("empty output", input_tokens=tokens_in, output_tokens=tokens_out)
        return text, tokens_in, tokens_out

    async def draft(self, task: MessageTask) -> Result[Draft]:
        """A message drafted by the model (structured output: subject and body)."""
        lead = task.lead
        items = [
            prompts.context_message(
                [prompts.data_block("lead_data", prompts.lead_payload(lead))], task.now
            ),
            *prompts.conversation([(m.role, m.content) for m in task.messages]),
        ]
        if len(items) == 1:
            items.append({"role": "user", "content": "Write the message."})
        text, tin, tout = await self._respond(
            "message",
            instructions=prompts.message_instructions(
                task.channel, task.language, normalize_disg(lead.disg_type)
            ),
            items=items,
            schema=("lead_message", prompts.MESSAGE_SCHEMA),
        )
        out = _parse(_MessageOut, text, tin, tout)
        subject = out.subject or None
        if task.channel == "email" and not subject:
            raise ProviderError(
                "email draft without a subject", input_tokens=tin, output_tokens=tout
            )
        if task.channel != "email":
            subject = None
        return Result(Draft(task.channel, task.language, subject, out.body), tin, tout)

    async def chat(self, task: ChatTask) -> Result[str]:
        """A model answer to the conversation, with the lead or the pipeline as data."""
        blocks = []
        if task.lead is not None:
            blocks.append(prompts.data_block("lead_data", prompts.lead_payload(task.lead)))
        if task.pipeline is not None:
            pipeline = {
                "total": task.pipeline.total,
                "needs_action": task.pipeline.needs_action,
                "stages": [
                    {"key": s.key, "name": s.name, "count": s.count} for s in task.pipeline.stages
                ],
            }
            blocks.append(prompts.data_block("pipeline_data", pipeline))
        items = [
            prompts.context_message(blocks, task.now),
            *prompts.conversation([(m.role, m.content) for m in task.messages]),
        ]
        text, tin, tout = await self._respond(
            "chat", instructions=prompts.chat_instructions(task.language), items=items
        )
        return Result(text, tin, tout)

    async def analyze(self, task: AnalyzeTask) -> Result[Analysis]:
        """A structured analysis, validated; a due date in the past becomes now."""
        items = [
            prompts.context_message(
                [prompts.data_block("lead_data", prompts.lead_payload(task.lead))], task.now
            )
        ]
        text, tin, tout = await self._respond(
            "analysis",
            instructions=prompts.analysis_instructions(task.language),
            items=items,
            schema=("lead_analysis", prompts.ANALYSIS_SCHEMA),
        )
        out = _parse(_AnalysisOut, text, tin, tout)
        next_at = as_utc(out.next_action_at) if out.next_action_at else None
        if next_at is not None and next_at < task.now:
            next_at = as_utc(task.now)
        analysis = Analysis(
            status=out.status,
            needs_action=out.needs_action,
            next_action_at=next_at,
            next_action_description=out.next_action_description or None,
            score=out.score,
            reasons=[r for r in out.reasons if r],
        )
        return Result(analysis, tin, tout)

    async def summarize(self, task: SummaryTask) -> Result[str]:
        """A model summary of the lead and its newest timeline events."""
        events = [
            {"at": e.occurred_at.isoformat(), "kind": e.kind, "summary": e.summary}
            for e in task.events[:_TIMELINE_EVENTS]
        ]
        items = [
            prompts.context_message(
                [
                    prompts.data_block("lead_data", prompts.lead_payload(task.lead)),
                    prompts.data_block("timeline_data", events),
                ],
                task.now,
            )
        ]
        text, tin, tout = await self._respond(
            "summary", instructions=prompts.summary_instructions(task.language), items=items
        )
        return Result(text, tin, tout)


_M = TypeVar("_M", bound=BaseModel)


def _parse(model: type[_M], text: str, tin: int | None, tout: int | None) -> _M:
    """Validate structured output; anything else is a provider failure."""
    try:
        return model.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ProviderError(
            f"invalid structured output: {str(exc).splitlines()[0]}"[:300],
            input_tokens=tin,
            output_tokens=tout,
        ) from None
