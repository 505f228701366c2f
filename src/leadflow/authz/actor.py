"""The authenticated caller, as every service and repository sees it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from leadflow.authz.errors import MissingPermission
from leadflow.authz.permissions import RowScope


@dataclass(frozen=True, slots=True)
class Actor:
    """A user (via session token or Supabase token) or an API key, inside one organisation."""

    organization_id: uuid.UUID
    user_id: uuid.UUID | None
    role: str
    permissions: frozenset[str]
    row_scope: RowScope
    team_id: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    email: str | None = None
    # An admin acting as this user (impersonation): audit rows name both.
    impersonator_id: uuid.UUID | None = None

    def can(self, permission: str) -> bool:
        """Whether the actor holds `permission`."""
        return permission in self.permissions

    def require(self, permission: str) -> None:
        """Raise 403 `missing_permission` (naming `permission`) unless the actor holds it."""
        if permission not in self.permissions:
            raise MissingPermission(f"Missing permission '{permission}'", permission=permission)

    @property
    def label(self) -> str:
        """How the actor is named in audit rows."""
        if self.api_key_id is not None:
            return f"api_key:{self.api_key_id}"
        return self.email or str(self.user_id)
