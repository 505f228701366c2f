"""Error codes of the integrations."""

from __future__ import annotations

from leadflow.exceptions import NotFound, ServiceUnavailable, ValidationFailed


class IntegrationConnectionFailed(ValidationFailed):
    """The connection test with the given credentials failed; `detail` says why."""

    code = "integration_connection_failed"
    title = "Connection test failed"


class IntegrationNotConnectable(ValidationFailed):
    """This integration type is not connected with credentials (webhooks have their own
    endpoints)."""

    code = "integration_not_connectable"
    title = "Integration cannot be connected"


class IntegrationTargetForbidden(ValidationFailed):
    """The host of the integration resolves to a private, loopback or link-local address."""

    code = "integration_target_forbidden"
    title = "Target address not allowed"


class IntegrationNotConnected(NotFound):
    """The organisation has no connected integration of this type."""

    code = "integration_not_connected"
    title = "Integration not connected"


class IntegrationCredentialsUnreadable(ServiceUnavailable):
    """Stored credentials cannot be decrypted (the secret key changed without rotation)."""

    code = "integration_credentials_unreadable"
    title = "Integration credentials unreadable"
