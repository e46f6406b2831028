"""`maildesk serve`: one asyncio process running intake, workers and the clock until stopped.

Roles (DESIGN.md "Scale"): `intake` runs the SMTP listener and the IMAP readers and only
writes the spool; `worker` runs spooled mail through the pipeline; `clock` runs the outbox
sender and the SLA clock (hooks until their issues land); `all` runs everything in one
process, the embedded default. SIGTERM or SIGINT stops accepting, lets the messages in hand
finish, processes what was spooled, and exits with 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import peewee

from maildesk.config import Config
from maildesk.desk import Desk, open_desk
from maildesk.errors import UserError
from maildesk.intake.smtp import SpoolHandler, make_server
from maildesk.outbox import Delivery, send_due
from maildesk.pipeline import Outcome
from maildesk.tickets.store.db import lent_connection
from maildesk.tickets.store.locks import is_postgres

log = logging.getLogger(__name__)

ROLES = ("all", "intake", "worker", "clock")
# SQLite: a worker's batch is one transaction, which the SMTP intake waits behind before it may
# answer 250; two messages (about 12 ms) per turn gave 436 accepted/s on bench/smtp_load.py,
# against 291 with 5 and 162 with 50. PostgreSQL commits per message, so a batch is one claim.
SQLITE_WORKER_BATCH = 2
WORKER_BATCH = 50
IDLE_WAKE = 5.0  # seconds: the worker also looks for spooled mail this often (other hosts spool too)
SUMMARY_EVERY = 60.0
OUTBOX_BATCH = 200  # messages per outbox pass
STANDBY_RETRY = 10.0  # seconds between a standby clock's attempts to become the active one
OUTBOX_EVERY = 2.0  # seconds between outbox passes
DB_RETRY_MAX = 8.0  # seconds: the longest a worker waits between tries while the database is away


def make_clock(start: datetime | None) -> Callable[[], datetime]:
    """The real clock, or one that starts at --now and runs on in real time."""
    if start is None:
        from maildesk.desk import utcnow

        return utcnow
    began = time.monotonic()
    return lambda: start + timedelta(seconds=time.monotonic() - began)


@dataclass
class Counters:
    spooled: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: Outcome) -> None:
        self.outcomes[outcome.status] = self.outcomes.get(outcome.status, 0) + 1


class Server:
    def __init__(
        self,
        config: Config,
        database_url: str | None,
        role: str = "all",
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        if role not in ROLES:
            raise UserError(f"unknown role {role!r}: use one of {', '.join(ROLES)}")
        self.config = config
        self.database_url = database_url
        self.role = role
        self.clock = clock or make_clock(None)
        self.counters = Counters()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._threads_stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def stop(self) -> None:
        self._stop.set()

    def wake(self, count: int = 1) -> None:
        """Tell the worker that mail was spooled; safe to call from any thread."""
        self.counters.spooled += count
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            self._loop.add_signal_handler(sig, self.stop)
        desk = open_desk(self.config, self.database_url)
        # the threads below borrow pooled connections for each unit of work; this one needs none
        desk.database.close()
        # parsing holds the GIL; in the pool it cannot starve the SMTP sessions' event loop
        desk.worker.parser.min_parallel = 1
        tasks: list[asyncio.Task[None]] = []  # stopped by cancelling
        finishing: list[asyncio.Task[None]] = []  # stopped by the stop events, then awaited
        smtp_server = None
        handler = None
        try:
            if self.role in ("all", "intake"):
                handler = SpoolHandler(
                    self.config, desk.spool, self.clock, on_spooled=self.wake, lmtp=self.config.smtp.lmtp
                )
                host, _, port = self.config.smtp.listen.rpartition(":")
                try:
                    smtp_server = await self._loop.create_server(
                        make_server(handler, self.config), host.strip("[]"), int(port)
                    )
                except OSError as exc:
                    raise UserError(f"cannot listen on {self.config.smtp.listen}: {exc.strerror}") from None
                log.info(
                    "listening for %s on %s",
                    "LMTP" if self.config.smtp.lmtp else "SMTP",
                    self.config.smtp.listen,
                )
                finishing += [asyncio.create_task(self._imap(desk, i)) for i in range(len(self.config.imap))]
            if self.role in ("all", "worker"):
                finishing.append(asyncio.create_task(self._worker(desk)))
            if self.role in ("all", "clock"):
                finishing.append(asyncio.create_task(self._clock(desk)))
            tasks.append(asyncio.create_task(self._summary()))
            print(f"maildesk serve ({self.role}) ready", flush=True)
            await self._stop.wait()
            log.info("stopping: no new connections, finishing the messages in hand")
            if smtp_server is not None:
                smtp_server.close()
                deadline = time.monotonic() + 30
                while handler is not None and handler.active and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
            self._threads_stop.set()
            self._wake.set()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, *finishing, return_exceptions=True)
            if self.role in ("all", "worker"):
                # what was spooled before the stop is processed before exit
                await asyncio.to_thread(self._process, desk)
        finally:
            desk.close()
            log.info("stopped")

    def _process(self, desk: Desk) -> int:
        with lent_connection(desk.database):
            batch = WORKER_BATCH if is_postgres(desk.database) else SQLITE_WORKER_BATCH
            return desk.worker.process_pending(self.clock(), batch_size=batch, on_outcome=self.counters.add)

    async def _worker(self, desk: Desk) -> None:
        delay = 0.0
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay or IDLE_WAKE)
            self._wake.clear()
            try:
                await asyncio.to_thread(self._process, desk)
                if delay:
                    log.info("worker: the database is back; carrying on")
                delay = 0.0
            except (peewee.OperationalError, peewee.InterfaceError) as exc:
                # the database is restarting or failing over: the spool keeps the mail, and
                # this worker takes up what it had claimed on its next pass
                delay = min(max(delay * 2, 1.0), DB_RETRY_MAX)
                log.warning("worker: database unavailable (%s); retrying in %.0f s", _first_line(exc), delay)
            except Exception:  # a bug in one pass must not end the worker
                delay = min(max(delay * 2, 1.0), DB_RETRY_MAX)
                log.exception("worker pass failed; retrying in %.0f s", delay)

    async def _imap(self, desk: Desk, index: int) -> None:
        from maildesk.intake.imap import ImapIntake

        account = self.config.imap[index]
        name = f"{account.username}@{account.host}:{account.port}"
        intake = ImapIntake(account, name, desk.spool, desk.database, self.clock, on_spooled=self.wake)
        # its own thread, not the event loop's default pool: an intake runs for the life of the
        # process, and a few accounts would otherwise take every slot the worker needs
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def watch() -> None:
            try:
                intake.run(self._threads_stop)
            finally:
                loop.call_soon_threadsafe(done.set_result, None)

        threading.Thread(target=watch, name=f"imap {name}", daemon=True).start()
        await done

    async def _clock(self, desk: Desk) -> None:
        # the SLA clock every minute (what it queues goes out at once), the outbox every few seconds

        every = self.config.sla.every.total_seconds()
        last_sla = -every
        holder = ClockLock(self.database_url or self.config.database_url)
        try:
            await self._tick(desk, holder, every, last_sla)
        finally:
            holder.close()

    async def _tick(self, desk: Desk, holder: ClockLock, every: float, last_sla: float) -> None:
        while True:
            if not await asyncio.to_thread(holder.active):
                # PostgreSQL: another host's clock is active; stand by and try again shortly
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), timeout=STANDBY_RETRY)
                if self._stop.is_set():
                    break
                continue
            if time.monotonic() - last_sla >= every:
                last_sla = time.monotonic()
                try:
                    await asyncio.to_thread(self._sla_pass, desk)
                except Exception:  # the clock goes on; the next pass picks up what this one missed
                    log.exception("SLA pass failed; retrying in a minute")
            full = False
            try:
                done = await asyncio.to_thread(self._send, desk)
                if done.sent or done.failed:
                    log.info("outbox: %d sent, %d to retry, %d failed", done.sent, done.retrying, done.failed)
                # a full pass means more is waiting: go on at once rather than cap sending at a pass per tick
                full = done.sent + done.retrying + done.failed >= OUTBOX_BATCH
            except Exception:  # a relay or database hiccup must not end the clock; rows stay queued
                log.exception("outbox pass failed; retrying")
            if self._stop.is_set():
                break  # one last pass after the stop sends what the last messages queued
            if full:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=OUTBOX_EVERY)

    def _send(self, desk: Desk) -> Delivery:
        with lent_connection(desk.database):
            return send_due(self.config, desk.database, self.clock(), OUTBOX_BATCH)

    def _sla_pass(self, desk: Desk) -> None:
        from maildesk.sla.clock import run_pass
        from maildesk.sla.digest import send_digest

        now = self.clock()
        with lent_connection(desk.database):
            result = run_pass(self.config, desk.database, now)
            if result.actions:
                log.info("SLA pass: %s", ", ".join(f"{n} {k}" for k, n in sorted(result.actions.items())))
            lead = send_digest(self.config, desk.database, now)
        if lead:
            log.info("SLA digest queued for %s", lead)

    async def _summary(self) -> None:
        while not self._stop.is_set():
            await asyncio.sleep(SUMMARY_EVERY)
            log.info("summary: %d spooled, outcomes %s", self.counters.spooled, self.counters.outcomes)


class ClockLock:
    """Exactly one active clock (SLA and outbox) per PostgreSQL database, the others standing by.

    The advisory lock lives on a connection of its own, so which worker thread runs a pass
    does not matter; if that connection drops (the database restarted) the lock is gone with
    it, and the next attempt takes it again, or finds another host's clock active.
    """

    def __init__(self, url: str) -> None:
        from maildesk.tickets.store.db import make_database
        from maildesk.tickets.store.locks import is_postgres

        database = make_database(url, pooled=False)
        self.database = database if is_postgres(database) else None
        self.held = False

    def active(self) -> bool:
        if self.database is None:
            return True  # SQLite: one process, one clock
        from maildesk.tickets.store.locks import try_clock_lock

        try:
            self.database.connect(reuse_if_open=True)
            if self.held:
                self.database.execute_sql("SELECT 1")  # still our session, so still our lock
                held = True
            else:
                held = try_clock_lock(self.database)
        except Exception:
            log.warning("clock: cannot reach the database for the clock lock; standing by")
            self.close()
            held = False
        if held != self.held:
            log.info("clock: %s", "active" if held else "standing by: another clock is active")
        self.held = held
        return held

    def close(self) -> None:
        if self.database is not None and not self.database.is_closed():
            with contextlib.suppress(Exception):
                self.database.close()


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def serve(config: Config, database_url: str | None, role: str, start: datetime | None) -> int:
    server = Server(config, database_url, role, make_clock(start))
    asyncio.run(server.run())
    return 0
