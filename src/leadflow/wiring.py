"""Connects the domains: imports every module that registers a background job, an outbox
delivery handler or a domain-event subscriber, then marks the process wired.

Entry points (`leadflow.app`, `leadflow.cli`) import this module once. Domains never import
it: a subscriber depends on the publisher, and only this list knows them all. The order of
the subscriber imports is the order handlers run for the same event — SLA clocks start
before the assignee is told, so the notification can name the deadline.
"""

import leadflow.auth.service
import leadflow.calls.jobs
import leadflow.imports.jobs
import leadflow.imports.timeline  # the "imported" timeline kind, as in the app
import leadflow.notifications.lead_assigned  # after sla.handlers: the message shows the deadline
import leadflow.notifications.service
import leadflow.sla.handlers
import leadflow.sla.service
import leadflow.tasks.jobs
import leadflow.worker.outbox
import leadflow.worker.prune  # noqa: F401
from leadflow.kit import events

events.wired()
