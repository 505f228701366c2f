"""Business calendar: opening hours, holidays, DST and business-minute arithmetic."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leadflow.calendar import DEFAULT_HOURS, BusinessCalendar

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
CAL = BusinessCalendar()
LUNCH = BusinessCalendar(
    hours=tuple(w for wd in range(5) for w in ((wd, "08:00", "12:00"), (wd, "13:00", "17:00")))
)


def berlin(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=BERLIN)


def utc(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=UTC)


# -- opening hours ---------------------------------------------------------------------


def test_defaults() -> None:
    assert CAL.timezone == "Europe/Berlin"
    assert CAL.country == "DE"
    assert CAL.subdivision is None
    assert CAL.hours == tuple((wd, "08:00", "18:00") for wd in (0, 1, 2, 3, 4))
    assert CAL.hours == DEFAULT_HOURS


def test_friday_evening_window_end_is_exclusive() -> None:
    # 2025-06-13 is an ordinary Friday.
    assert CAL.is_open(berlin(2025, 6, 13, 17, 59))
    assert CAL.is_open(berlin(2025, 6, 13, 17, 59, 59))
    assert not CAL.is_open(berlin(2025, 6, 13, 18, 0))
    assert CAL.next_open(berlin(2025, 6, 13, 18, 0)) == berlin(2025, 6, 16, 8, 0)


def test_window_start_is_inclusive() -> None:
    assert not CAL.is_open(berlin(2025, 6, 16, 7, 59, 59))
    assert CAL.is_open(berlin(2025, 6, 16, 8, 0))
    assert CAL.next_open(berlin(2025, 6, 16, 7, 0)) == berlin(2025, 6, 16, 8, 0)


def test_next_open_returns_at_itself_in_utc_when_open() -> None:
    at = berlin(2025, 6, 17, 10, 15, 30)
    result = CAL.next_open(at)
    assert result == at
    assert result.tzinfo is UTC
    assert result == utc(2025, 6, 17, 8, 15) + timedelta(seconds=30)


def test_saturday_is_closed() -> None:
    saturday_noon = berlin(2025, 6, 14, 12, 0)
    assert not CAL.is_open(saturday_noon)
    result = CAL.next_open(saturday_noon)
    assert result == berlin(2025, 6, 16, 8, 0)
    assert result.tzinfo is UTC
    assert result == utc(2025, 6, 16, 6, 0)


def test_is_open_accepts_any_timezone() -> None:
    # 12:00 in New York on a Monday in June is 18:00 in Berlin: just closed.
    assert not CAL.is_open(datetime(2025, 6, 16, 12, 0, tzinfo=NEW_YORK))
    assert CAL.is_open(datetime(2025, 6, 16, 11, 59, tzinfo=NEW_YORK))


def test_local_day_differs_from_utc_day() -> None:
    # 23:00 on Monday in New York is already Tuesday in UTC; the Monday window must count.
    late = BusinessCalendar(
        timezone="America/New_York", hours=((0, "20:00", "24:00"),), country="US"
    )
    monday_late = datetime(2025, 6, 16, 23, 0, tzinfo=NEW_YORK)
    assert late.is_open(monday_late)
    assert late.next_open(monday_late) == utc(2025, 6, 17, 3, 0)
    assert late.add_business_minutes(monday_late, 60) == utc(2025, 6, 17, 4, 0)
    assert late.add_business_minutes(monday_late, 61) == datetime(
        2025, 6, 23, 20, 1, tzinfo=NEW_YORK
    )


# -- holidays --------------------------------------------------------------------------


def test_german_unity_day_is_a_national_holiday() -> None:
    # Friday, 3 October 2025.
    assert CAL.is_holiday(date(2025, 10, 3))
    assert CAL.holiday_name(date(2025, 10, 3)) == "Tag der Deutschen Einheit"
    assert not CAL.is_holiday(date(2025, 10, 2))
    assert CAL.holiday_name(date(2025, 10, 2)) is None
    assert not CAL.is_open(berlin(2025, 10, 3, 10, 0))
    assert CAL.next_open(berlin(2025, 10, 3, 10, 0)) == berlin(2025, 10, 6, 8, 0)
    assert CAL.next_open(berlin(2025, 10, 2, 18, 0)) == berlin(2025, 10, 6, 8, 0)


def test_holiday_of_an_aware_datetime_uses_the_calendar_day_in_its_zone() -> None:
    # 23:30 UTC on 2 October is already 01:30 on 3 October in Berlin.
    assert CAL.is_holiday(utc(2025, 10, 2, 23, 30))
    assert not CAL.is_holiday(utc(2025, 10, 2, 21, 30))


def test_epiphany_is_a_holiday_in_bavaria_only() -> None:
    # Tuesday, 6 January 2026.
    bavaria = BusinessCalendar(subdivision="BY")
    nrw = BusinessCalendar(subdivision="NW")
    epiphany = date(2026, 1, 6)
    assert bavaria.is_holiday(epiphany)
    assert bavaria.holiday_name(epiphany) == "Heilige Drei Könige"
    assert not nrw.is_holiday(epiphany)
    assert not CAL.is_holiday(epiphany)

    monday_evening = berlin(2026, 1, 5, 18, 0)
    assert bavaria.next_open(monday_evening) == berlin(2026, 1, 7, 8, 0)
    assert nrw.next_open(monday_evening) == berlin(2026, 1, 6, 8, 0)
    assert CAL.next_open(monday_evening) == berlin(2026, 1, 6, 8, 0)
    assert bavaria.business_minutes_between(berlin(2026, 1, 5, 8), berlin(2026, 1, 8, 8)) == 1200
    assert nrw.business_minutes_between(berlin(2026, 1, 5, 8), berlin(2026, 1, 8, 8)) == 1800


def test_christmas_and_new_year() -> None:
    # 2025: 24 Dec (Wed) and 31 Dec (Wed) are working days; 25/26 Dec and 1 Jan are not.
    assert CAL.holiday_name(date(2025, 12, 25)) == "Erster Weihnachtstag"
    assert CAL.holiday_name(date(2025, 12, 26)) == "Zweiter Weihnachtstag"
    assert CAL.holiday_name(date(2026, 1, 1)) == "Neujahr"
    assert not CAL.is_holiday(date(2025, 12, 24))
    assert not CAL.is_holiday(date(2025, 12, 31))

    assert CAL.next_open(berlin(2025, 12, 24, 18, 0)) == berlin(2025, 12, 29, 8, 0)
    assert CAL.next_open(berlin(2025, 12, 31, 18, 0)) == berlin(2026, 1, 2, 8, 0)
    assert CAL.add_business_minutes(berlin(2025, 12, 24, 17, 0), 120) == berlin(2025, 12, 29, 9)
    # Working days in between: 24, 29, 30, 31 December.
    assert CAL.business_minutes_between(berlin(2025, 12, 24, 8), berlin(2026, 1, 2, 8)) == 2400
    # 31 Dec 17:00 + 3 h: one hour on New Year's Eve, two on Friday 2 January.
    assert CAL.add_business_minutes(berlin(2025, 12, 31, 17, 0), 180) == berlin(2026, 1, 2, 10)


# -- DST -------------------------------------------------------------------------------


def test_spring_forward_weekend() -> None:
    # Clocks go from 02:00 CET to 03:00 CEST on Sunday 29 March 2026.
    start = berlin(2026, 3, 27, 17, 0)
    assert start.utcoffset() == timedelta(hours=1)
    result = CAL.add_business_minutes(start, 120)
    assert result.tzinfo is UTC
    assert result == utc(2026, 3, 30, 7, 0)
    local = result.astimezone(BERLIN)
    assert (local.date(), local.hour, local.minute) == (date(2026, 3, 30), 9, 0)
    assert local.utcoffset() == timedelta(hours=2)
    assert CAL.next_open(berlin(2026, 3, 27, 18)) == utc(2026, 3, 30, 6, 0)
    assert CAL.business_minutes_between(start, result) == 120


def test_fall_back_weekend() -> None:
    # Clocks go from 03:00 CEST back to 02:00 CET on Sunday 25 October 2026.
    start = berlin(2026, 10, 23, 17, 0)
    assert start.utcoffset() == timedelta(hours=2)
    result = CAL.add_business_minutes(start, 120)
    assert result.tzinfo is UTC
    assert result == utc(2026, 10, 26, 8, 0)
    local = result.astimezone(BERLIN)
    assert (local.date(), local.hour, local.minute) == (date(2026, 10, 26), 9, 0)
    assert local.utcoffset() == timedelta(hours=1)
    assert CAL.next_open(berlin(2026, 10, 23, 18)) == utc(2026, 10, 26, 7, 0)
    assert CAL.business_minutes_between(start, result) == 120


def test_windows_spanning_a_dst_change_count_real_minutes() -> None:
    always = BusinessCalendar(hours=tuple((wd, "00:00", "24:00") for wd in range(7)))
    # The spring-forward Sunday has 23 hours, the fall-back Sunday 25.
    assert always.business_minutes_between(berlin(2026, 3, 29), berlin(2026, 3, 30)) == 23 * 60
    assert always.business_minutes_between(berlin(2026, 10, 25), berlin(2026, 10, 26)) == 25 * 60
    assert always.add_business_minutes(berlin(2026, 3, 29), 23 * 60) == berlin(2026, 3, 30)
    assert always.is_open(berlin(2026, 3, 29, 3, 30))


# -- arithmetic ------------------------------------------------------------------------


def test_add_business_minutes_over_several_days() -> None:
    # Monday 16 June 2025, 08:00 + 1500 min = Mon 600 + Tue 600 + Wed 300 → Wed 13:00.
    result = CAL.add_business_minutes(berlin(2025, 6, 16, 8, 0), 1500)
    assert result == berlin(2025, 6, 18, 13, 0)
    assert result.tzinfo is UTC


def test_add_business_minutes_that_exactly_fill_a_window_end_at_its_close() -> None:
    # Wed 11 June 2025 13:00: 300 + Thu 600 + Fri 600 = 1500 → Friday 18:00, not Monday.
    assert CAL.add_business_minutes(berlin(2025, 6, 11, 13), 1500) == berlin(2025, 6, 13, 18)
    assert CAL.add_business_minutes(berlin(2025, 6, 11, 13), 1501) == berlin(2025, 6, 16, 8, 1)


def test_add_business_minutes_from_outside_hours_starts_at_next_open() -> None:
    assert CAL.add_business_minutes(berlin(2025, 6, 16, 6, 0), 30) == berlin(2025, 6, 16, 8, 30)
    assert CAL.add_business_minutes(berlin(2025, 6, 14, 12, 0), 0) == berlin(2025, 6, 16, 8, 0)
    assert CAL.add_business_minutes(berlin(2025, 6, 16, 9, 0), 0) == berlin(2025, 6, 16, 9, 0)


def test_add_business_minutes_far_ahead() -> None:
    # 250 working days later; walking window by window keeps this fast.
    result = CAL.add_business_minutes(berlin(2025, 1, 2, 8, 0), 250 * 600)
    assert CAL.business_minutes_between(berlin(2025, 1, 2, 8, 0), result) == 250 * 600
    # 2025 has 261 weekdays, 9 of them national holidays: the 250th working day is 29 Dec.
    assert result == berlin(2025, 12, 29, 18, 0)


def test_business_minutes_between() -> None:
    assert CAL.business_minutes_between(berlin(2025, 6, 13, 17), berlin(2025, 6, 16, 9)) == 120
    assert CAL.business_minutes_between(berlin(2025, 6, 16, 9), berlin(2025, 6, 13, 17)) == 0
    assert CAL.business_minutes_between(berlin(2025, 6, 16, 9), berlin(2025, 6, 16, 9)) == 0
    assert CAL.business_minutes_between(berlin(2025, 6, 14, 0), berlin(2025, 6, 15, 23)) == 0
    # Partial minutes are rounded down.
    assert CAL.business_minutes_between(berlin(2025, 6, 16, 9), berlin(2025, 6, 16, 9, 0, 59)) == 0
    assert CAL.business_minutes_between(berlin(2025, 6, 16, 9), berlin(2025, 6, 16, 9, 2, 30)) == 2
    # A whole ordinary week.
    assert CAL.business_minutes_between(berlin(2025, 6, 16), berlin(2025, 6, 23)) == 3000


START_TIMES = st.datetimes(
    min_value=datetime(2025, 1, 1),
    max_value=datetime(2027, 12, 31, 23, 59, 59),
    timezones=st.sampled_from([UTC, BERLIN, NEW_YORK]),
)
CALENDARS = st.sampled_from([CAL, LUNCH, BusinessCalendar(subdivision="BY")])


@settings(max_examples=200, deadline=None, database=None)
@given(calendar=CALENDARS, start=START_TIMES, minutes=st.integers(0, 20_000))
def test_business_minutes_between_inverts_add(
    calendar: BusinessCalendar, start: datetime, minutes: int
) -> None:
    end = calendar.add_business_minutes(start, minutes)
    assert end.tzinfo is UTC
    assert end >= calendar.next_open(start)
    assert calendar.business_minutes_between(calendar.next_open(start), end) == minutes
    # Nothing is counted before the opening.
    assert calendar.business_minutes_between(start, end) == minutes


@settings(max_examples=100, deadline=None, database=None)
@given(start=START_TIMES)
def test_next_open_is_open_and_nothing_earlier_counts(start: datetime) -> None:
    opened = CAL.next_open(start)
    assert opened >= start
    assert CAL.is_open(opened)
    assert CAL.business_minutes_between(start, opened) == 0


# -- lunch break -----------------------------------------------------------------------


def test_lunch_break_windows() -> None:
    assert LUNCH.is_open(berlin(2025, 6, 16, 11, 59))
    assert not LUNCH.is_open(berlin(2025, 6, 16, 12, 0))
    assert not LUNCH.is_open(berlin(2025, 6, 16, 12, 59))
    assert LUNCH.is_open(berlin(2025, 6, 16, 13, 0))
    assert not LUNCH.is_open(berlin(2025, 6, 16, 17, 0))
    assert LUNCH.next_open(berlin(2025, 6, 16, 12, 15)) == berlin(2025, 6, 16, 13, 0)
    assert LUNCH.add_business_minutes(berlin(2025, 6, 16, 11, 30), 60) == berlin(
        2025, 6, 16, 13, 30
    )
    assert LUNCH.add_business_minutes(berlin(2025, 6, 16, 11, 30), 30) == berlin(2025, 6, 16, 12, 0)
    assert LUNCH.business_minutes_between(berlin(2025, 6, 16, 8), berlin(2025, 6, 16, 17)) == 480
    assert LUNCH.business_minutes_between(berlin(2025, 6, 16, 11), berlin(2025, 6, 16, 14)) == 120


# -- serialisation ---------------------------------------------------------------------


def test_to_dict_of_default_calendar() -> None:
    day = [["08:00", "18:00"]]
    assert CAL.to_dict() == {
        "timezone": "Europe/Berlin",
        "country": "DE",
        "subdivision": None,
        "hours": {"mon": day, "tue": day, "wed": day, "thu": day, "fri": day, "sat": [], "sun": []},
    }


def test_from_dict_to_dict_round_trip_through_json() -> None:
    calendar = BusinessCalendar(
        timezone="America/New_York",
        hours=(
            (5, "09:00", "13:00"),
            (0, "13:00", "17:30"),
            (0, "07:30", "12:00"),
            (6, "00:00", "24:00"),
        ),
        country="US",
        subdivision="NY",
    )
    data = json.loads(json.dumps(calendar.to_dict()))
    assert data["hours"]["mon"] == [["07:30", "12:00"], ["13:00", "17:30"]]
    assert data["hours"]["sun"] == [["00:00", "24:00"]]
    restored = BusinessCalendar.from_dict(data)
    assert restored == calendar
    assert restored.to_dict() == data
    assert restored.hours == (
        (0, "07:30", "12:00"),
        (0, "13:00", "17:30"),
        (5, "09:00", "13:00"),
        (6, "00:00", "24:00"),
    )


def test_from_dict_missing_keys_use_defaults() -> None:
    assert BusinessCalendar.from_dict(None) == CAL
    assert BusinessCalendar.from_dict({}) == CAL
    assert BusinessCalendar.from_dict({"timezone": None, "hours": None}) == CAL
    bavaria = BusinessCalendar.from_dict({"subdivision": "BY"})
    assert bavaria == BusinessCalendar(subdivision="BY")
    assert bavaria.hours == DEFAULT_HOURS
    # Given hours replace the defaults entirely: unlisted days are closed.
    short = BusinessCalendar.from_dict({"hours": {"tue": [["10:00", "12:00"]]}})
    assert short.hours == ((1, "10:00", "12:00"),)
    assert not short.is_open(berlin(2025, 6, 16, 10, 30))
    assert short.is_open(berlin(2025, 6, 17, 10, 30))


def test_equal_calendars_compare_equal_regardless_of_window_order() -> None:
    a = BusinessCalendar(
        hours=((1, "13:00", "17:00"), (0, "08:00", "12:00"), (1, "08:00", "12:00"))
    )
    b = BusinessCalendar(
        hours=((0, "08:00", "12:00"), (1, "08:00", "12:00"), (1, "13:00", "17:00"))
    )
    assert a == b
    assert hash(a) == hash(b)


# -- invalid input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone 'Mars/Olympus_Mons'"),
        ({"timezone": ""}, "unknown time zone ''"),
        ({"hours": ()}, "at least one working window"),
        ({"hours": ((0, "18:00", "08:00"),)}, "mon window 18:00-08:00: start must be before end"),
        ({"hours": ((2, "09:00", "09:00"),)}, "wed window 09:00-09:00: start must be before end"),
        (
            {"hours": ((7, "08:00", "18:00"),)},
            "weekday must be an integer 0 .Mon. to 6 .Sun., got 7",
        ),
        ({"hours": ((-1, "08:00", "18:00"),)}, "got -1"),
        ({"hours": ((0, "8:00", "18:00"),)}, "mon window start: expected a time 'HH:MM'"),
        ({"hours": ((0, "08:00", "24:01"),)}, "mon window end: expected a time 'HH:MM'"),
        ({"hours": ((0, "24:00", "24:00"),)}, "start must be before end"),
        ({"hours": ((0, "08:00"),)}, "hours entry must be"),
        ({"hours": ((4, "08:00", "12:00"), (4, "11:00", "18:00"))}, "fri windows overlap"),
        ({"country": "XX"}, "unknown holiday country 'XX'"),
        ({"subdivision": "ZZ"}, "unknown subdivision 'ZZ' for DE; known: BB, BE"),
    ],
)
def test_invalid_calendar_raises(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar(**kwargs)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"timezon": "Europe/Berlin"}, "unknown business calendar keys: timezon"),
        ({"hours": {"monday": [["08:00", "18:00"]]}}, "unknown day 'monday'"),
        ({"hours": [[0, "08:00", "18:00"]]}, "hours must be a mapping"),
        ({"hours": {"mon": "08:00-18:00"}}, r"hours\['mon'\] must be a list"),
        ({"hours": {"mon": [["08:00"]]}}, r"hours\['mon'\] entries must be \[start, end\]"),
        ({"hours": {"mon": []}}, "at least one working window"),
        ({"timezone": 1}, "timezone must be an IANA name"),
        ({"hours": {"mon": [["18:00", "08:00"]]}}, "start must be before end"),
    ],
)
def test_invalid_dict_raises(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BusinessCalendar.from_dict(data)


def test_naive_datetimes_are_rejected() -> None:
    naive = datetime(2025, 6, 16, 9, 0)
    aware = berlin(2025, 6, 16, 9, 0)
    with pytest.raises(ValueError, match="at must be timezone-aware"):
        CAL.is_open(naive)
    with pytest.raises(ValueError, match="at must be timezone-aware"):
        CAL.next_open(naive)
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        CAL.add_business_minutes(naive, 10)
    with pytest.raises(ValueError, match="a must be timezone-aware"):
        CAL.business_minutes_between(naive, aware)
    with pytest.raises(ValueError, match="b must be timezone-aware"):
        CAL.business_minutes_between(aware, naive)
    with pytest.raises(ValueError, match="must be timezone-aware"):
        CAL.is_holiday(naive)


def test_negative_minutes_are_rejected() -> None:
    with pytest.raises(ValueError, match="non-negative integer, got -1"):
        CAL.add_business_minutes(berlin(2025, 6, 16, 9), -1)


def test_search_gives_up_instead_of_looping_forever(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every day a holiday: there is never any working time.
    monkeypatch.setattr(BusinessCalendar, "is_holiday", lambda self, d: True)
    with pytest.raises(ValueError, match="no working time within 400 days"):
        CAL.next_open(berlin(2025, 6, 16, 9))
    with pytest.raises(ValueError, match="no working time within 400 days"):
        CAL.add_business_minutes(berlin(2025, 6, 16, 9), 60)
    # A bounded range needs no search beyond its end.
    assert CAL.business_minutes_between(berlin(2025, 6, 16), berlin(2025, 6, 23)) == 0
