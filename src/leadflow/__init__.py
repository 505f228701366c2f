"""Leadflow: lead-management and sales CRM backend."""

__version__ = "0.1.0"
