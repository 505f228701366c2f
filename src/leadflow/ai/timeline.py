"""AI generations in the lead timeline (kind `ai_generation`) and in lead merges.

Importing this module registers both; `leadflow.ai.service` imports it for the app and
`leadflow.wiring` for every process.
"""

from __future__ import annotations

from typing import Any

from leadflow.leads.registry import register_lead_child
from leadflow.models.ai_generation import AiGeneration
from leadflow.timeline.registry import model_source, register_source

TIMELINE_KIND = "ai_generation"


def _short(text: str, n: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 1] + "…"


_ACTION_LABELS = {
    "generate_message": "message draft",
    "chat": "chat answer",
    "analyze_lead": "lead analysis",
    "summarize_lead": "summary",
}


def _timeline_entry(row: AiGeneration) -> tuple[str, dict[str, Any]]:
    label = _ACTION_LABELS.get(row.action, row.action)
    via = row.provider + (", fallback" if row.fallback else "")
    reply = str((row.output or {}).get("reply") or "")
    return f"AI {label} ({via})", {
        "generation_id": str(row.id),
        "action": row.action,
        "provider": row.provider,
        "model": row.model,
        "outcome": row.outcome,
        "fallback": row.fallback,
        "reply": _short(reply) if reply else None,
    }


register_source(model_source(TIMELINE_KIND, AiGeneration, AiGeneration.created_at, _timeline_entry))
register_lead_child(AiGeneration)  # merging leads moves their AI history with them
