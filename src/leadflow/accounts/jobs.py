"""Delivery of invitation emails: the outbox handler for rows of kind `invitation_email`.

The row holds the email's context without the link; the token is derived here from the
secret key (`invitations.invitation_token`), so no readable link is ever stored.
"""

from __future__ import annotations

import uuid
from typing import Any

from leadflow.accounts.invitations import (
    INVITATION_KIND,
    accept_url,
    invitation_token,
)
from leadflow.models.outbox import OutboxMessage
from leadflow.notifications import service as notifications
from leadflow.notifications.email import DELIVERY_KEY_HEADER, render
from leadflow.notifications.jobs import deliver_email
from leadflow.worker import outbox
from leadflow.worker.jobs import JobContext


async def deliver_invitation(ctx: JobContext, row: OutboxMessage) -> dict[str, Any]:
    """Render the invitation with its link and send it as any notification email."""
    p = row.payload
    token = invitation_token(ctx.settings.resolved_secret_key(), uuid.UUID(p["invitation_id"]))
    email = render(
        "invitation",
        p["language"],
        {**p["context"], "login_url": accept_url(ctx.settings, token)},
        to=p["to"],
    )
    # An unsaved row: the email handler reads its payload and its organisation (whose own
    # SMTP relay, when connected, sends the email).
    rendered = OutboxMessage(
        organization_id=row.organization_id,
        payload={
            "to": email.to,
            "subject": email.subject,
            "text": email.text,
            "html": email.html,
            "headers": {**email.headers, DELIVERY_KEY_HEADER: row.delivery_key},
        },
    )
    return await deliver_email(ctx, rendered)


outbox.register_handler(INVITATION_KIND, deliver_invitation, notifications.notify_email_failed)
