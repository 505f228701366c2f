"""Response-time SLAs on business hours: deadlines, reminders, breaches."""
