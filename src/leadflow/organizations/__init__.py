"""Organisations, their roles and teams."""
