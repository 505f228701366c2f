"""Roles, permissions and row scopes: the one place access is decided."""

from leadflow.authz.actor import Actor
from leadflow.authz.permissions import ALL_PERMISSIONS, SYSTEM_ROLES, RowScope

__all__ = ["ALL_PERMISSIONS", "SYSTEM_ROLES", "Actor", "RowScope"]
