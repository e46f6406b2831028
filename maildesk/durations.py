"""Parsing of the human units in maildesk.toml: durations ("90s", "2h", "2d") and sizes ("25MB")."""

from __future__ import annotations

import re
from datetime import timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|k|mb|m|gb|g|kib|mib|gib)?\s*$", re.IGNORECASE)
_BYTES = {
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "m": 1000**2,
    "mb": 1000**2,
    "g": 1000**3,
    "gb": 1000**3,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
}


def parse_duration(text: str) -> timedelta:
    """ "45m" -> 45 minutes. Raises ValueError with the accepted forms on anything else."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration like '90s', '45m', '2h' or '2d'")
    return timedelta(seconds=float(match.group(1)) * _SECONDS[match.group(2).lower()])


def describe_duration(span: timedelta) -> str:
    """A duration for people: "1 d", "1 h", "45 min" (the largest whole unit)."""
    seconds = int(span.total_seconds())
    if seconds and seconds % 86400 == 0:
        return f"{seconds // 86400} d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    return f"{seconds / 60:g} min"


def parse_size(text: str | int) -> int:
    """ "25MB" -> 25,000,000 bytes (SI units, as mail servers advertise SIZE); ints pass through."""
    if isinstance(text, int):
        if text < 0:
            raise ValueError("a size cannot be negative")
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a size like '25MB' or '512KB'")
    return int(float(match.group(1)) * _BYTES[(match.group(2) or "b").lower()])
