"""Business time: opening hours per weekday in the desk's time zone, closed on holidays.

Deadlines such as "first response within 2 business hours" count only the minutes the desk
is open. Hours are local wall-clock times, so each day's opening is turned into UTC on its
own date: a DST change moves the UTC instants, never the local ones, and a night, a weekend
or a holiday simply contributes no time. All instants in and out are aware UTC datetimes
(naive ones are read as UTC, as maildesk stores them).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from maildesk.config import HoursConfig

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class BusinessCalendar:
    def __init__(self, hours: HoursConfig) -> None:
        self.zone = ZoneInfo(hours.timezone)
        self.week = dict(hours.week)
        self.holidays = frozenset(date.fromisoformat(d) for d in hours.holidays)
        if not any(end > start for start, end in self.week.values()):
            raise ValueError("the desk is never open: give hours for at least one weekday")
        # a pass over many tickets asks about the same few hundred days again and again
        self._spans: dict[date, tuple[datetime, datetime] | None] = {}

    def _span(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's opening, in UTC, or None when the desk is closed that day."""
        try:
            return self._spans[day]
        except KeyError:
            span = self._spans[day] = self._work_out(day)
            return span

    def _work_out(self, day: date) -> tuple[datetime, datetime] | None:
        if day in self.holidays:
            return None
        hours = self.week.get(WEEKDAYS[day.weekday()])
        if hours is None or hours[1] <= hours[0]:
            return None
        start, end = (
            datetime.combine(day, time(m // 60, m % 60), tzinfo=self.zone).astimezone(UTC) for m in hours
        )
        return start, end

    def is_open_day(self, day: date) -> bool:
        """Does the desk open at all on this local date?"""
        return self._span(day) is not None

    def spans(self, since: datetime) -> Iterator[tuple[datetime, datetime]]:
        """Opening spans (UTC) that end after `since`, in order, starting on since's local day."""
        since = _utc(since)
        day = since.astimezone(self.zone).date() - timedelta(days=1)  # a span may straddle midnight UTC
        while True:  # ends: some weekday is open, and there are finitely many holidays
            span = self._span(day)
            if span is not None and span[1] > since:
                yield span
            day += timedelta(days=1)

    def is_open(self, at: datetime) -> bool:
        at = _utc(at)
        start, _ = next(self.spans(at))
        return start <= at

    def next_open(self, at: datetime) -> datetime:
        """`at` itself when open, else the next opening."""
        at = _utc(at)
        start, _ = next(self.spans(at))
        return max(start, at)

    def add(self, start: datetime, amount: timedelta) -> datetime:
        """The instant `amount` of business time after `start` (a deadline)."""
        start = _utc(start)
        if amount <= timedelta(0):
            return start
        left = amount
        for opens, closes in self.spans(start):
            begin = max(opens, start)
            available = closes - begin
            if left <= available:
                return begin + left
            left -= available
        raise AssertionError("unreachable: spans() never ends")

    def add_days(self, start: datetime, days: int) -> datetime:
        """The same local time on the `days`-th open day after start's, kept within that day's hours.

        "No answer within 1 business day" of a Friday 15:00 message means Saturday at 13:30
        (Saturday closes earlier), of a Saturday message Monday at the same time.
        """
        start = _utc(start)
        local = start.astimezone(self.zone)
        day = local.date()
        found = 0
        while found < days:
            day += timedelta(days=1)
            if self._span(day) is not None:
                found += 1
        span = self._span(day)
        assert span is not None
        wanted = datetime.combine(day, local.time().replace(tzinfo=None), tzinfo=self.zone).astimezone(UTC)
        return min(max(wanted, span[0]), span[1])

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Business time from `start` to `end` (zero when end is not after start)."""
        start, end = _utc(start), _utc(end)
        total = timedelta(0)
        if end <= start:
            return total
        for opens, closes in self.spans(start):
            if opens >= end:
                break
            total += min(closes, end) - max(opens, start)
        return total


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)
