"""Errors of the pipeline and its stages."""

from __future__ import annotations

from leadflow.exceptions import Conflict, ValidationFailed


class UnknownStatus(ValidationFailed):
    """A lead status names no stage of the organisation's pipeline."""

    code = "unknown_status"


class NoStages(Conflict):
    """A new lead or an import needs a pipeline stage and the organisation has none."""

    code = "no_stages"


class StageExists(Conflict):
    """A stage with this key already exists."""

    code = "stage_exists"


class StageInUse(Conflict):
    """A stage that leads are in would be deleted."""

    code = "stage_in_use"


class LastStage(Conflict):
    """The pipeline's only stage would be deleted."""

    code = "last_stage"
