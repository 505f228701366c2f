"""Imports every module that registers jobs or delivery handlers (the worker's entry list)."""

import leadflow.auth.jobs
import leadflow.calls.jobs
import leadflow.imports.service
import leadflow.notifications.jobs
import leadflow.sla.jobs
import leadflow.tasks.jobs
import leadflow.worker.outbox
import leadflow.worker.prune  # noqa: F401
