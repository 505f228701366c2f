"""Error codes of the webhooks."""

from __future__ import annotations

from leadflow.exceptions import Conflict, Forbidden, ServiceUnavailable, ValidationFailed


class WebhookTargetRefused(ValidationFailed):
    """The endpoint URL does not resolve, or resolves to a private, loopback or link-local
    address (allowed only with LEADFLOW_WEBHOOKS_ALLOW_PRIVATE)."""

    code = "webhook_target_refused"
    title = "Webhook target not allowed"


class WebhookLimitReached(Conflict):
    """The organisation has as many endpoints as allowed (LEADFLOW_WEBHOOKS_MAX_ENDPOINTS)."""

    code = "webhook_limit_reached"
    title = "Too many webhook endpoints"


class WebhookScopeTooNarrow(Forbidden):
    """Endpoints receive every event of the organisation: only a role that sees every row of
    it (row scope `org`) may subscribe one."""

    code = "webhook_scope_too_narrow"
    title = "Row scope too narrow for webhooks"


class WebhookEndpointDisabled(Conflict):
    """The delivery's endpoint is disabled; enable it first."""

    code = "webhook_endpoint_disabled"
    title = "Webhook endpoint disabled"


class WebhookDeliveryPending(Conflict):
    """The delivery is still queued or being retried; it cannot be replayed yet."""

    code = "webhook_delivery_pending"
    title = "Webhook delivery still pending"


class WebhookSecretUnreadable(ServiceUnavailable):
    """The endpoint's signing secret cannot be decrypted (the secret key changed without
    rotation): nothing can be signed for it."""

    code = "webhook_secret_unreadable"
    title = "Webhook secret unreadable"
