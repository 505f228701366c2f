"""Leads: the core record."""
