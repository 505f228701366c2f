"""Audit trail: writing rows in the caller's transaction and reading them back."""
