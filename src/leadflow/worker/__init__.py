"""Background work: the job queue (Huey), enqueue-after-commit, the outbox, periodic jobs."""
