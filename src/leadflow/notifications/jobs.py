"""Delivery of notification emails: the outbox handler for rows of kind `email`."""

from __future__ import annotations

from typing import Any

from leadflow.db.engine import transactions_that
from leadflow.kit.outbound import TargetRefused
from leadflow.models.outbox import OutboxMessage
from leadflow.notifications import attachments, service
from leadflow.notifications.email import (
    Attachment,
    EmailDeliveryError,
    RenderedEmail,
    SmtpConfig,
    send,
)
from leadflow.notifications.integration import check_relay, smtp_for
from leadflow.worker import outbox
from leadflow.worker.jobs import JobContext


async def deliver_email(ctx: JobContext, row: OutboxMessage) -> dict[str, Any]:
    """Send a queued email over SMTP — the organisation's connected relay, else the
    process-wide one — or only log it when neither is configured.

    Failures raise `EmailDeliveryError`; its `permanent` tells the outbox not to retry.
    Attachments are loaded only when the email is really sent; one that is gone fails the
    email for good (`AttachmentMissing`).
    """
    s = ctx.settings
    # The organisation's own relay when it connected one; read in a short transaction of its
    # own, so no connection is held while SMTP talks.
    with transactions_that(write=False):
        async with ctx.session_factory() as session:
            own = await smtp_for(session, s, row.organization_id)
    if own is None and not s.smtp_host:
        # No SMTP configured: keep the email readable at /admin/emails instead of sending it.
        return {"status": "logged"}
    p = row.payload
    if own is not None:
        try:
            await check_relay(s, own)
        except TargetRefused as exc:
            raise EmailDeliveryError(f"SMTP relay refused: {exc}", permanent=False) from None
    config = own or SmtpConfig(
        host=s.smtp_host,
        port=s.smtp_port,
        username=s.smtp_username or None,
        password=s.smtp_password or None,
        sender=s.smtp_from,
        starttls=s.smtp_starttls,
        use_tls=s.smtp_tls,
        timeout=s.smtp_timeout_seconds,
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
    relay = "organization" if own is not None else "process"
    return {"status": "sent", "message_id": message_id, "relay": relay}


outbox.register_handler("email", deliver_email, service.notify_email_failed)
