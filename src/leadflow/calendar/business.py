"""Business hours and public holidays: is an organisation open, and when is something due.

Working windows are wall-clock times in the calendar's time zone, so 08:00-18:00 stays
08:00-18:00 local on both sides of a DST change. All arithmetic walks whole windows as
aware-UTC intervals; nothing loops minute by minute.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property, lru_cache
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

DAY_NAMES: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_HOURS: tuple[tuple[int, str, str], ...] = tuple((wd, "08:00", "18:00") for wd in range(5))
# Longest stretch without any working time we are willing to scan before calling the
# calendar broken; comfortably more than a year, so real closures never hit it.
MAX_SEARCH_DAYS = 400

_KEYS = frozenset({"timezone", "hours", "country", "subdivision"})
_TIME_RE = re.compile(r"(?:[01]\d|2[0-3]):[0-5]\d|24:00")
_ONE_MINUTE = timedelta(minutes=1)

# Windows per weekday (index 0=Mon), each as (start, end) minutes after local midnight.
_Week = tuple[tuple[tuple[int, int], ...], ...]


@lru_cache(maxsize=1)
def _supported_countries() -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType(
        {c: tuple(subs) for c, subs in holidays.list_supported_countries().items()}
    )


@lru_cache(maxsize=512)
def _holiday_table(country: str, subdivision: str | None, year: int) -> Mapping[date, str]:
    # Pin the names to the country's own language: left alone, `holidays` picks the
    # language from the process locale, so the same data would read differently
    # depending on how the server was started.
    probe = holidays.country_holidays(country, subdiv=subdivision, years=())
    table = holidays.country_holidays(
        country, subdiv=subdivision, years=year, language=probe.default_language
    )
    # Read-only copy: the cached object is shared between callers and threads.
    return MappingProxyType(dict(table))


def _fmt(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _parse_time(value: object, what: str) -> int:
    if not isinstance(value, str) or not _TIME_RE.fullmatch(value):
        raise ValueError(f"{what}: expected a time 'HH:MM' between 00:00 and 24:00, got {value!r}")
    hh, mm = value.split(":")
    return int(hh) * 60 + int(mm)


def _parse_hours(hours: object) -> _Week:
    if not isinstance(hours, tuple | list) or not hours:
        raise ValueError("business hours are empty: at least one working window is required")
    days: list[list[tuple[int, int]]] = [[] for _ in DAY_NAMES]
    for entry in hours:
        if not isinstance(entry, tuple | list) or len(entry) != 3:
            raise ValueError(f"hours entry must be (weekday, 'HH:MM', 'HH:MM'), got {entry!r}")
        weekday, start_text, end_text = entry
        if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise ValueError(f"weekday must be an integer 0 (Mon) to 6 (Sun), got {weekday!r}")
        day = DAY_NAMES[weekday]
        start = _parse_time(start_text, f"{day} window start")
        end = _parse_time(end_text, f"{day} window end")
        if start >= end:
            raise ValueError(
                f"{day} window {start_text}-{end_text}: start must be before end "
                "(windows cannot cross midnight; split them at 24:00/00:00)"
            )
        days[weekday].append((start, end))
    for weekday, windows in enumerate(days):
        windows.sort()
        for (_, first_end), (second_start, second_end) in itertools.pairwise(windows):
            if second_start < first_end:
                raise ValueError(
                    f"{DAY_NAMES[weekday]} windows overlap: ..-{_fmt(first_end)} and "
                    f"{_fmt(second_start)}-{_fmt(second_end)}"
                )
    return tuple(tuple(w) for w in days)


def _hours_from_dict(raw: object) -> tuple[tuple[int, str, str], ...]:
    if not isinstance(raw, Mapping):
        raise ValueError(
            f"hours must be a mapping like {{'mon': [['08:00', '18:00']]}}, got {raw!r}"
        )
    entries: list[tuple[int, str, str]] = []
    for name, windows in raw.items():
        if name not in DAY_NAMES:
            raise ValueError(
                f"unknown day {name!r} in hours; expected one of {', '.join(DAY_NAMES)}"
            )
        if windows is None:
            continue
        if not isinstance(windows, list | tuple):
            raise ValueError(
                f"hours[{name!r}] must be a list of [start, end] pairs, got {windows!r}"
            )
        for window in windows:
            if not isinstance(window, list | tuple) or len(window) != 2:
                raise ValueError(f"hours[{name!r}] entries must be [start, end], got {window!r}")
            entries.append((DAY_NAMES.index(name), window[0], window[1]))
    return tuple(entries)


def _as_utc(value: datetime, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class BusinessCalendar:
    """Weekly working windows in a local time zone, minus the public holidays of a region.

    `hours` holds (weekday 0=Mon..6=Sun, "HH:MM" start, "HH:MM" end) windows; the end is
    exclusive and may be "24:00". A weekday may have several windows (lunch breaks).
    """

    timezone: str = "Europe/Berlin"
    hours: tuple[tuple[int, str, str], ...] = DEFAULT_HOURS
    country: str = "DE"
    subdivision: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.timezone, str):
            raise ValueError(
                f"timezone must be an IANA name like 'Europe/Berlin', got {self.timezone!r}"
            )
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        # Validates as a side effect; the parsed form is cached for the arithmetic.
        self._week  # noqa: B018
        # Canonical order, so equal calendars compare (and hash) equal however they were written.
        object.__setattr__(self, "hours", tuple(sorted(tuple(e) for e in self.hours)))
        supported = _supported_countries()
        if not isinstance(self.country, str) or self.country not in supported:
            raise ValueError(
                f"unknown holiday country {self.country!r}; expected an ISO 3166-1 alpha-2 code "
                "supported by the holidays package, such as 'DE'"
            )
        if self.subdivision is not None and self.subdivision not in supported[self.country]:
            known = ", ".join(supported[self.country]) or "none"
            raise ValueError(
                f"unknown subdivision {self.subdivision!r} for {self.country}; known: {known}"
            )

    @cached_property
    def _week(self) -> _Week:
        return _parse_hours(self.hours)

    @property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    # -- serialisation -------------------------------------------------------------------

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> BusinessCalendar:
        """Build from the JSON settings form (see `to_dict`); missing or null keys → defaults.

        With an `hours` mapping present, weekdays missing from it are closed.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ValueError(f"business calendar settings must be a mapping, got {data!r}")
        unknown = set(data) - _KEYS
        if unknown:
            raise ValueError(
                f"unknown business calendar keys: {', '.join(sorted(map(str, unknown)))}"
            )
        kwargs: dict[str, Any] = {}
        for key in ("timezone", "country"):
            if data.get(key) is not None:
                kwargs[key] = data[key]
        if "subdivision" in data:
            kwargs["subdivision"] = data["subdivision"]
        if data.get("hours") is not None:
            kwargs["hours"] = _hours_from_dict(data["hours"])
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: {"timezone", "country", "subdivision", "hours": {"mon": [[s, e]]}}."""
        return {
            "timezone": self.timezone,
            "country": self.country,
            "subdivision": self.subdivision,
            "hours": {
                name: [[_fmt(start), _fmt(end)] for start, end in self._week[i]]
                for i, name in enumerate(DAY_NAMES)
            },
        }

    # -- holidays --------------------------------------------------------------------------

    def _local_date(self, d: date) -> date:
        # A datetime is also a date; take its calendar day in *our* zone, not its own.
        if isinstance(d, datetime):
            return _as_utc(d, "d").astimezone(self._zone).date()
        return d

    def holiday_name(self, d: date) -> str | None:
        """Name of the public holiday on `d` (in the country's language), or None."""
        day = self._local_date(d)
        return _holiday_table(self.country, self.subdivision, day.year).get(day)

    def is_holiday(self, d: date) -> bool:
        """Whether `d` is a public holiday for this country/subdivision."""
        return self.holiday_name(d) is not None

    # -- open / closed ---------------------------------------------------------------------

    def _windows(
        self, since: datetime, until: datetime | None = None
    ) -> Iterator[tuple[datetime, datetime]]:
        """Remaining working time from `since` (aware UTC) as ordered, disjoint UTC intervals.

        The first interval starts at `since` itself if it is inside a window. Stops once
        past `until`; raises ValueError after MAX_SEARCH_DAYS days without working time.
        """
        zone = self._zone
        # Begin one local day early: a window belongs to its local date, but a wall time
        # inside a DST gap is shifted forward, which can carry a late end past midnight.
        day = since.astimezone(zone).date() - timedelta(days=1)
        last_end = since
        idle_days = 0
        while True:
            midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
            if until is not None and midnight.astimezone(UTC) >= until:
                return
            found = False
            if not self.is_holiday(day):
                for start_min, end_min in self._week[day.weekday()]:
                    # Adding to an aware datetime is wall-clock arithmetic, which is what
                    # "08:00 local" means; astimezone then resolves the real instant.
                    start = (midnight + timedelta(minutes=start_min)).astimezone(UTC)
                    end = (midnight + timedelta(minutes=end_min)).astimezone(UTC)
                    # Clamping keeps intervals disjoint even when a wall time falls into a
                    # DST gap and gets shifted, and trims the first one to `since`.
                    start = max(start, last_end)
                    if end <= start:
                        continue
                    found = True
                    last_end = end
                    yield start, end
            idle_days = 0 if found else idle_days + 1
            if idle_days > MAX_SEARCH_DAYS:
                raise ValueError(
                    f"no working time within {MAX_SEARCH_DAYS} days after {since.isoformat()}"
                )
            day += timedelta(days=1)

    def is_open(self, at: datetime) -> bool:
        """Whether `at` (timezone-aware) falls in a working window; window ends are exclusive."""
        moment = _as_utc(at, "at")
        start, _ = next(self._windows(moment))
        return start == moment

    def next_open(self, at: datetime) -> datetime:
        """`at` if open, else the start of the next working window; aware UTC."""
        start, _ = next(self._windows(_as_utc(at, "at")))
        return start

    def add_business_minutes(self, start: datetime, minutes: int) -> datetime:
        """The moment `minutes` of working time after `start` (counted from next_open(start)).

        Aware UTC. Work that exactly fills a window ends at that window's close (Friday
        18:00), not at the next opening.
        """
        if isinstance(minutes, bool) or not isinstance(minutes, int) or minutes < 0:
            raise ValueError(f"minutes must be a non-negative integer, got {minutes!r}")
        remaining = timedelta(minutes=minutes)
        for window_start, window_end in self._windows(_as_utc(start, "start")):
            length = window_end - window_start
            if remaining <= length:
                return window_start + remaining
            remaining -= length
        raise AssertionError("unreachable: _windows() without `until` never ends")

    def business_minutes_between(self, a: datetime, b: datetime) -> int:
        """Whole working minutes (rounded down) in [a, b); 0 if b <= a."""
        begin, finish = _as_utc(a, "a"), _as_utc(b, "b")
        if finish <= begin:
            return 0
        total = timedelta()
        for window_start, window_end in self._windows(begin, until=finish):
            if window_start >= finish:
                break
            total += min(window_end, finish) - window_start
        return total // _ONE_MINUTE
