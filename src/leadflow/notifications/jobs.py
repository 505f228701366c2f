"""Delivery of notification emails: the outbox handler for rows of kind `email`."""

from __future__ import annotations

from typing import Any

from leadflow.db.engine import transactions_that
from leadflow.models.outbox import OutboxMessage
from leadflow.notifications import attachments, service
from leadflow.notifications.email import Attachment, RenderedEmail, SmtpConfig, send
from leadflow.worker import outbox
from leadflow.worker.jobs import JobContext


async def deliver_email(ctx: JobContext, row: OutboxMessage) -> dict[str, Any]:
    """Send a queued email over SMTP, or only log it when no SMTP server is configured.

    Failures raise `EmailDeliveryError`; its `permanent` tells the outbox not to retry.
    Attachments are loaded only when the email is really sent; one that is gone fails the
    email for good (`AttachmentMissing`).
    """
    s = ctx.settings
    if not s.smtp_host:
        # No SMTP configured: keep the email readable at /admin/emails instead of sending it.
        return {"status": "logged"}
    p = row.payload
    config = SmtpConfig(
        host=s.smtp_host,
        port=s.smtp_port,
        username=s.smtp_username or None,
        password=s.smtp_password or None,
        sender=s.smtp_from,
        starttls=s.smtp_starttls,
        use_tls=s.smtp_tls,
    )
    files: tuple[Attachment, ...] = ()
    if p.get("attachments"):
        # Only reads: on SQLite no write lock while the files are read.
        with transactions_that(write=False):
            async with ctx.session_factory() as session:
                files = await attachments.load(session, p["attachments"])
    message_id = await send(
        config,
        RenderedEmail(
            to=p["to"],
            subject=p["subject"],
            text=p["text"],
            html=p.get("html"),
            headers=p.get("headers") or {},
            attachments=files,
        ),
    )
    return {"status": "sent", "message_id": message_id}


outbox.register_handler("email", deliver_email, service.notify_email_failed)
