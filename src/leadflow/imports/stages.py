"""Status words of other CRMs → the organisation's pipeline stages.

The default table names, for each of the default pipeline's stages (new, contacted, qualified,
proposal, won, lost), the status and stage words of the common CRM exports. A value is looked
up once per distinct spelling (the import caches it), never per row.
"""

from __future__ import annotations

from dataclasses import dataclass

from leadflow.ai.local import normalize_status
from leadflow.imports.headers import header_key
from leadflow.models.pipeline_stage import PipelineStage

# The documented default table (docs/api.md "Switching from another CRM"). Folded like
# headers: "Working - Contacted" and "working_contacted" are both "working contacted".
DEFAULT_STAGE_WORDS: dict[str, tuple[str, ...]] = {
    "new": (
        "new",
        "open",
        "open not contacted",
        "not contacted",
        "subscriber",
        "lead",
        "neu",
        "offen",
        "nicht kontaktiert",
    ),
    "contacted": (
        "working",
        "working contacted",
        "attempted to contact",
        "attempted",
        "contacted",
        "connected",
        "in progress",
        "contact in future",
        "bad timing",
        "nurturing",
        "kontaktiert",
        "in bearbeitung",
        "kontaktversuch",
    ),
    "qualified": (
        "mql",
        "sql",
        "qualified",
        "pre qualified",
        "marketing qualified lead",
        "marketingqualifiedlead",
        "sales qualified lead",
        "salesqualifiedlead",
        "qualifiziert",
    ),
    "proposal": (
        "opportunity",
        "open deal",
        "proposal",
        "proposition",
        "negotiation",
        "quote",
        "angebot",
        "verhandlung",
    ),
    "won": (
        "customer",
        "closed won",
        "won",
        "converted",
        "closed converted",
        "evangelist",
        "kunde",
        "gewonnen",
    ),
    "lost": (
        "unqualified",
        "not qualified",
        "closed lost",
        "lost",
        "closed not converted",
        "junk",
        "junk lead",
        "lost lead",
        "disqualified",
        "verloren",
        "nicht qualifiziert",
    ),
}
CANONICAL = tuple(DEFAULT_STAGE_WORDS)  # in pipeline order
_TABLE = {header_key(w): stage for stage, words in DEFAULT_STAGE_WORDS.items() for w in words}


@dataclass(frozen=True)
class StageChoice:
    """Where a status value goes: a stage key (None: unknown) and why."""

    stage: str | None
    rule: str  # status_map | pipeline | default_table | fallback | unknown
    reason: str
    canonical: str | None = None  # the default-table stage, as the analysis reads it


class StageResolver:
    """Maps status values onto one organisation's pipeline (cached per distinct value)."""

    def __init__(self, stages: list[PipelineStage], status_map: dict[str, str] | None) -> None:
        self.stages = stages
        self.keys = {s.key for s in stages}
        self.by_name: dict[str, str] = {}
        for s in stages:
            self.by_name.setdefault(header_key(s.key), s.key)
            self.by_name.setdefault(header_key(s.name), s.key)
        self.status_map = {header_key(k): v for k, v in (status_map or {}).items()}
        self.position = {s.key: i for i, s in enumerate(stages)}
        self.category = {s.key: s.category for s in stages}
        # Which default stage each of the organisation's stages stands for.
        self.stands_for: dict[str, str] = {}
        for s in stages:
            canon = _canonical(s.key) or _canonical(s.name)
            if s.category in ("won", "lost"):
                canon = s.category
            if canon is not None:
                self.stands_for.setdefault(canon, s.key)
        self._cache: dict[str, StageChoice] = {}

    def choose(self, raw: str) -> StageChoice:
        """The stage for a status value as written in the file."""
        hit = self._cache.get(raw)
        if hit is not None:
            return hit
        choice = self._choose(raw)
        if len(self._cache) < 5000:
            self._cache[raw] = choice
        return choice

    def choices(self) -> dict[str, StageChoice]:
        """The status values seen so far and where they went."""
        return dict(self._cache)

    def _choose(self, raw: str) -> StageChoice:
        key = header_key(raw)
        if key in self.status_map:
            target = self.status_map[key]
            if target in ("", "ignore"):
                return StageChoice(None, "status_map", "left unset by status_map")
            return StageChoice(target, "status_map", "given in status_map", _canonical(target))
        if key in self.by_name:
            stage = self.by_name[key]
            return StageChoice(stage, "pipeline", "a stage of your pipeline", _canonical(stage))
        canon = _TABLE.get(key) or normalize_status(raw)
        if canon is None:
            return StageChoice(
                None, "unknown", "not a known status: default_status or the analysis decides"
            )
        stage, exact = self.place(canon)
        if exact:
            return StageChoice(stage, "default_table", f"default table: {canon}", canon)
        return StageChoice(
            stage,
            "fallback",
            f"default table: {canon}, which your pipeline lacks; nearest stage {stage}",
            canon,
        )

    def place(self, canon: str) -> tuple[str, bool]:
        """The organisation's stage for a default-table stage, and whether it is exact."""
        if canon in self.keys:
            return canon, True
        if canon in self.stands_for:
            return self.stands_for[canon], True
        if canon in ("won", "lost"):
            closed = [s.key for s in self.stages if s.category == canon]
            if closed:
                return closed[0], True
            # No such closing stage: the last open stage keeps the lead in the pipeline.
            open_ = [s.key for s in self.stages if s.category == "open"]
            return (open_[-1] if open_ else self.stages[0].key), False
        # An open stage the pipeline lacks: the nearest earlier one it has, else the first.
        rank = CANONICAL.index(canon)
        for earlier in reversed(CANONICAL[:rank]):
            if earlier in self.stands_for:
                return self.stands_for[earlier], False
        return self.stages[0].key, False

    def combine(self, first: str | None, second: str | None) -> str | None:
        """One stage from two status columns (HubSpot's lifecycle stage and lead status): a
        closing stage (won, lost) wins, else the one further along the pipeline."""
        if first is None or second is None:
            return first or second
        closed = [k for k in (first, second) if self.category.get(k) in ("won", "lost")]
        if closed:
            return closed[0]
        return first if self.position.get(first, 0) >= self.position.get(second, 0) else second


def _canonical(raw: str) -> str | None:
    """The default-table stage a word stands for, or None."""
    return _TABLE.get(header_key(raw)) or normalize_status(raw)
