"""Connects the domains: imports every module that registers a background job, an outbox
delivery handler, a timeline kind or a domain-event subscriber, then marks the process wired.

Entry points (`leadflow.app`, `leadflow.cli`) import this module once. Domains never import
it: a subscriber depends on the publisher, and only this list knows them all.
"""

# Every module that subscribes to events, registers a job, an outbox handler or an
# integration type, or adds a timeline kind (ruff keeps them sorted, so the list is
# alphabetical, not by kind).
import leadflow.accounts.jobs
import leadflow.ai.integration
import leadflow.ai.timeline
import leadflow.analytics.rollups
import leadflow.auth.jobs
import leadflow.calls.integration
import leadflow.calls.jobs
import leadflow.health.jobs
import leadflow.imports.jobs
import leadflow.imports.timeline
import leadflow.notifications.integration
import leadflow.notifications.jobs
import leadflow.notifications.lead_assigned
import leadflow.reports.jobs
import leadflow.sla.handlers
import leadflow.sla.jobs
import leadflow.tasks.jobs
import leadflow.webhooks.delivery
import leadflow.webhooks.handlers
import leadflow.webhooks.integration
import leadflow.worker.outbox
import leadflow.worker.prune  # noqa: F401
from leadflow.kit import events

events.wired()
