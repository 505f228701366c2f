"""Notifications: in-app notifications and email (`notifications.email`: rendering, SMTP)."""
