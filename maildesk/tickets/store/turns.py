"""Write transactions of one process take turns in arrival order (SQLite).

SQLite has one writer at a time. A thread that finds the write lock taken waits in SQLite's
busy handler, which sleeps and polls with growing pauses (up to 100 ms). A worker that
commits a batch and at once begins the next wins that race nearly every time, so the SMTP
intake, whose sender waits for its 250, starved: 131 messages a second on `bench/smtp_load.py`
against 1,188 with no worker running. Inside one process the threads therefore queue here,
first come first served, before they ask SQLite; between processes (a CLI command beside
`serve`) the busy handler still decides.
"""

from __future__ import annotations

import threading
from collections import deque


class Turns:
    """A lock handed to its waiters in the order they asked for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: deque[tuple[threading.Event, int]] = deque()
        self._owner: int | None = None

    def acquire(self) -> None:
        """Wait for this thread's turn; a thread that holds the lock has it already (a
        transaction rolled back and begun again in one `atomic` block asks twice)."""
        me = threading.get_ident()
        with self._guard:
            if self._owner in (None, me):
                self._owner = me
                return
            turn = threading.Event()
            self._waiting.append((turn, me))
        turn.wait()  # release() made this thread the owner before setting the event

    def release(self) -> None:
        """Hand the lock to the longest waiter; a thread that does not hold it releases nothing."""
        with self._guard:
            if self._owner != threading.get_ident():
                return
            if self._waiting:
                turn, self._owner = self._waiting.popleft()
                turn.set()
            else:
                self._owner = None
