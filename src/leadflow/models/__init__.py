"""SQLAlchemy models, one file per entity. Importing this package registers them all."""

from leadflow.models.activity import Interaction, MessageEvent
from leadflow.models.ai_generation import AiGeneration
from leadflow.models.api_key import ApiKey
from leadflow.models.assignment_rule import AssignmentRule, SlaPolicy
from leadflow.models.audit_log import AuditLog
from leadflow.models.auth_session import AuthSession, RefreshToken
from leadflow.models.call_request import CallRequest, CallRequestEvent
from leadflow.models.custom_field import CustomFieldDefinition
from leadflow.models.health import HealthSample, RequestSample, WorkerHeartbeat
from leadflow.models.import_batch import (
    ImportBatch,
    ImportFileChunk,
    ImportRowError,
    ImportUpdate,
)
from leadflow.models.integration import Integration
from leadflow.models.invitation import Invitation
from leadflow.models.lead import Lead
from leadflow.models.lead_history import Consent, LeadAssignment, LeadNoteEdit, LeadStatusChange
from leadflow.models.lead_rollup import (
    LeadRollupDay,
    LeadRollupDelta,
    LeadRollupStage,
    LeadRollupZone,
)
from leadflow.models.organization import Organization
from leadflow.models.outbox import Notification, OutboxMessage, PeriodicRun
from leadflow.models.pipeline_stage import PipelineStage
from leadflow.models.report import Report, ReportFileChunk, ReportRun, ReportSchedule
from leadflow.models.role import Role
from leadflow.models.saved_view import SavedView
from leadflow.models.task import Task
from leadflow.models.team import Team
from leadflow.models.user import User
from leadflow.models.webhook import (
    WebhookAttempt,
    WebhookBatch,
    WebhookDelivery,
    WebhookEndpoint,
)

__all__ = [
    "AiGeneration",
    "ApiKey",
    "AssignmentRule",
    "AuditLog",
    "AuthSession",
    "CallRequest",
    "CallRequestEvent",
    "Consent",
    "CustomFieldDefinition",
    "HealthSample",
    "ImportBatch",
    "ImportFileChunk",
    "ImportRowError",
    "ImportUpdate",
    "Integration",
    "Interaction",
    "Invitation",
    "Lead",
    "LeadAssignment",
    "LeadNoteEdit",
    "LeadRollupDay",
    "LeadRollupDelta",
    "LeadRollupStage",
    "LeadRollupZone",
    "LeadStatusChange",
    "MessageEvent",
    "Notification",
    "Organization",
    "OutboxMessage",
    "PeriodicRun",
    "PipelineStage",
    "RefreshToken",
    "Report",
    "ReportFileChunk",
    "ReportRun",
    "ReportSchedule",
    "RequestSample",
    "Role",
    "SavedView",
    "SlaPolicy",
    "Task",
    "Team",
    "User",
    "WebhookAttempt",
    "WebhookBatch",
    "WebhookDelivery",
    "WebhookEndpoint",
    "WorkerHeartbeat",
]
