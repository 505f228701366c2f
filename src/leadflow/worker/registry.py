"""Imports every module that registers jobs or delivery handlers (the worker's entry list).

Timeline kinds registered at import (`imports.timeline`) are imported here too, so a lead's
timeline reads the same in the worker as in the app.
"""

import leadflow.auth.service
import leadflow.calls.jobs
import leadflow.imports.jobs
import leadflow.imports.timeline
import leadflow.notifications.service
import leadflow.sla.service
import leadflow.tasks.jobs
import leadflow.worker.outbox
import leadflow.worker.prune  # noqa: F401
