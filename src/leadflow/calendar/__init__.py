"""Business calendar: working hours, public holidays and business-time arithmetic.

`business` is pure Python (no database, no FastAPI); an organisation stores its calendar as
the JSON dict produced by `BusinessCalendar.to_dict()`, and `organization.calendar_of` reads it.
"""

from leadflow.calendar.business import (
    DAY_NAMES,
    DEFAULT_HOURS,
    MAX_SEARCH_DAYS,
    BusinessCalendar,
)

__all__ = ["DAY_NAMES", "DEFAULT_HOURS", "MAX_SEARCH_DAYS", "BusinessCalendar"]
