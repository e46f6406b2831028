"""Time helpers: the store keeps naive UTC, everything else passes aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def naive_utc(value: datetime | str) -> datetime:
    """Naive UTC for the database (SQLite may also hand back ISO strings)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value
