"""Business-time arithmetic across nights, weekends, holidays and DST changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maildesk.config import HoursConfig
from maildesk.sla.calendar import BusinessCalendar

ZURICH = ZoneInfo("Europe/Zurich")
SEED_003 = HoursConfig(
    holidays=("2026-12-25", "2026-12-26", "2027-01-01")
)  # Mon-Fri 10:00-17:40, Sat 9:30-13:30


def local(*args: int, zone: ZoneInfo = ZURICH) -> datetime:
    return datetime(*args, tzinfo=zone).astimezone(UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("start", "hours", "due"),
    [
        (local(2026, 11, 2, 9, 0), 2, local(2026, 11, 2, 12, 0)),  # Monday before opening
        (local(2026, 11, 6, 17, 0), 2, local(2026, 11, 7, 10, 50)),  # Friday evening into Saturday
        (local(2026, 11, 7, 13, 0), 2, local(2026, 11, 9, 11, 30)),  # Saturday over Sunday
        (local(2026, 11, 7, 20, 0), 1, local(2026, 11, 9, 11, 0)),  # Saturday night
        (local(2026, 12, 24, 17, 0), 2, local(2026, 12, 28, 11, 20)),  # Christmas Eve over two holidays
        (local(2026, 3, 28, 13, 0), 1, local(2026, 3, 30, 10, 30)),  # over the spring DST change
        (local(2026, 10, 24, 13, 0), 1, local(2026, 10, 26, 10, 30)),  # over the autumn DST change
        (local(2026, 11, 2, 10, 0), 7 + 40 / 60, local(2026, 11, 2, 17, 40)),  # exactly one day
    ],
)
def test_deadlines_count_only_business_time(start: datetime, hours: float, due: datetime) -> None:
    calendar = BusinessCalendar(SEED_003)
    assert calendar.add(start, timedelta(hours=hours)) == due
    assert calendar.between(start, due) == timedelta(hours=hours)


def test_the_spring_change_shifts_utc_not_the_opening_hour() -> None:
    calendar = BusinessCalendar(SEED_003)
    before = calendar.next_open(datetime(2026, 3, 28, 0, 0, tzinfo=UTC))
    after = calendar.next_open(datetime(2026, 3, 30, 0, 0, tzinfo=UTC))
    assert (before.hour, before.minute) == (8, 30)  # Sat 09:30 CET is 08:30 UTC
    assert (after.hour, after.minute) == (8, 0)  # Mon 10:00 CEST is 08:00 UTC


def test_open_and_closed() -> None:
    calendar = BusinessCalendar(SEED_003)
    assert calendar.is_open(local(2026, 11, 4, 12, 0))
    assert not calendar.is_open(local(2026, 11, 8, 12, 0))  # Sunday
    assert not calendar.is_open(local(2026, 12, 25, 12, 0))  # a holiday
    assert not calendar.is_open(local(2026, 11, 4, 17, 40))  # closing time itself is closed
    assert calendar.next_open(local(2026, 11, 4, 12, 0)) == local(2026, 11, 4, 12, 0)


def test_a_desk_that_is_never_open_is_refused() -> None:
    with pytest.raises(ValueError, match="never open"):
        BusinessCalendar(HoursConfig(week={}))


ZONES = ["Europe/Zurich", "America/New_York", "Australia/Sydney", "Asia/Kolkata", "UTC"]
instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)
amounts = st.integers(min_value=0, max_value=60 * 80).map(lambda m: timedelta(minutes=m))


@settings(max_examples=300, deadline=None)
@given(zone=st.sampled_from(ZONES), start=instants, amount=amounts)
def test_adding_business_time_and_measuring_it_agree(zone: str, start: datetime, amount: timedelta) -> None:
    calendar = BusinessCalendar(HoursConfig(timezone=zone, holidays=("2026-12-25", "2027-12-25")))
    due = calendar.add(start, amount)
    assert due >= start
    assert calendar.between(start, due) == amount
    if amount > timedelta(0):
        # the deadline falls inside opening hours (or at a closing time), never at night
        assert calendar.is_open(due - timedelta(microseconds=1))


@settings(max_examples=200, deadline=None)
@given(zone=st.sampled_from(ZONES), a=instants, b=instants, c=instants)
def test_business_time_is_additive_and_never_more_than_wall_time(
    zone: str, a: datetime, b: datetime, c: datetime
) -> None:
    calendar = BusinessCalendar(HoursConfig(timezone=zone))
    first, middle, last = sorted((a, b, c))
    total = calendar.between(first, last)
    assert total == calendar.between(first, middle) + calendar.between(middle, last)
    assert timedelta(0) <= total <= last - first


def test_business_days_keep_the_local_time_within_the_days_hours() -> None:
    calendar = BusinessCalendar(SEED_003)
    assert calendar.add_days(local(2026, 11, 4, 15, 0), 1) == local(2026, 11, 5, 15, 0)
    assert calendar.add_days(local(2026, 11, 6, 15, 0), 1) == local(2026, 11, 7, 13, 30)  # Sat closes early
    assert calendar.add_days(local(2026, 11, 7, 11, 0), 1) == local(2026, 11, 9, 11, 0)  # over Sunday
    assert calendar.add_days(local(2026, 12, 24, 12, 0), 1) == local(2026, 12, 28, 12, 0)  # over the holidays
    assert calendar.add_days(local(2026, 11, 4, 20, 0), 1) == local(2026, 11, 5, 17, 40)
    assert calendar.add_days(local(2026, 3, 27, 12, 0), 2) == local(2026, 3, 30, 12, 0)  # over the DST change


@settings(max_examples=200, deadline=None)
@given(zone=st.sampled_from(ZONES), start=instants, days=st.integers(min_value=1, max_value=10))
def test_business_days_land_on_open_days_after_the_start(zone: str, start: datetime, days: int) -> None:
    calendar = BusinessCalendar(HoursConfig(timezone=zone, holidays=("2026-12-25",)))
    due = calendar.add_days(start, days)
    assert due > start
    assert calendar.is_open(due) or calendar.is_open(due - timedelta(microseconds=1))
