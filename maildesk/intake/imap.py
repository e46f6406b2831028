"""IMAP intake: read configured mailbox folders into the spool, then flag or move the mail.

The order is the guarantee: a message is fetched (BODY.PEEK[], so reading it does not mark
it), spooled and committed, and only then flagged `\\Seen` or moved to the processed folder,
and only after that is its UID recorded as done. A crash anywhere in between leaves the
message to be fetched again on the next pass, where the spool recognises the same bytes and
does not store them twice.

Which messages are new: after the first pass, every UID above the last one recorded for the
folder under the same UIDVALIDITY, whatever its flags (a person may have opened it in
webmail first). On the first pass, or when the server changes UIDVALIDITY (the old UIDs mean
nothing any more), the server's own marks are all there is: unseen mail when flagging, all
mail when moving (what was processed has been moved away). Such a re-scan may fetch mail
again; the spool deduplicates it.

Waiting: IDLE where the server has it, re-issued well before the 30 minutes after which
RFC 2177 lets a server drop an idle client (NAT boxes drop quiet connections sooner, hence
the shorter default); polling otherwise. A dropped connection or refused login is retried
with exponential backoff. Each folder gets its own connection and thread, since IDLE
watches only the selected folder.
"""

from __future__ import annotations

import contextlib
import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import IMAPClientError, LoginError
from peewee import Database

from maildesk.config import ImapAccount
from maildesk.errors import MaildeskError, SpoolError
from maildesk.spool import Incoming, Spool
from maildesk.tickets.store.db import lent_connection
from maildesk.tickets.store.models import ImapState

log = logging.getLogger(__name__)

IDLE_RENEW = 9 * 60.0  # seconds an IDLE lasts before it is re-issued
IDLE_TICK = 1.0  # how often an IDLE wait looks at the stop event
BATCH_COUNT = 100  # messages per FETCH
BATCH_BYTES = 16 * 1024 * 1024  # and at most this much mail held in memory (one larger message alone)
SOCKET_TIMEOUT = 60.0
BACKOFF_FIRST = 1.0
BACKOFF_MAX = 300.0
LOGIN_BACKOFF_MIN = 60.0  # a refused login is not retried quickly: servers lock out accounts


class ImapError(MaildeskError):
    """An IMAP server could not be used: connection, login or a refused command."""


class ImapLoginError(ImapError):
    """The server refused the configured username and password."""


class _Dropped(ImapError):
    """The server ended the connection (BYE or end of stream) while we waited."""


@dataclass(frozen=True)
class FolderPass:
    """What one pass over a folder did."""

    folder: str
    uidvalidity: int
    fetched: int  # messages downloaded
    spooled: int  # of those, new to the spool
    last_uid: int
    rescan: bool  # a first pass or a UIDVALIDITY change


class Backoff:
    """Exponential backoff with jitter, so many intakes do not reconnect in step."""

    def __init__(self, first: float = BACKOFF_FIRST, most: float = BACKOFF_MAX) -> None:
        self.first, self.most = first, most
        self.failures = 0

    def next(self, at_least: float = 0.0) -> float:
        delay = min(self.most, self.first * 2**self.failures)
        self.failures += 1
        return max(at_least, delay * random.uniform(0.5, 1.0))

    def reset(self) -> None:
        self.failures = 0


def batches(sizes: Iterable[tuple[int, int]], count: int, size: int) -> Iterator[list[int]]:
    """Group (uid, bytes) pairs, in order, into lists of at most `count` UIDs and about `size` bytes."""
    batch: list[int] = []
    held = 0
    for uid, length in sizes:
        if batch and (len(batch) >= count or held + length > size):
            yield batch
            batch, held = [], 0
        batch.append(uid)
        held += length
    if batch:
        yield batch


class ImapIntake:
    """Reads one account's folders into the spool; `run` until stopped, or `sync_once`."""

    def __init__(
        self,
        account: ImapAccount,
        name: str,
        spool: Spool,
        database: Database,
        clock: Callable[[], datetime],
        on_spooled: Callable[[int], None] | None = None,
        *,
        batch_count: int = BATCH_COUNT,
        batch_bytes: int = BATCH_BYTES,
        idle_renew: float = IDLE_RENEW,
    ) -> None:
        self.account = account
        self.name = name
        self.spool = spool
        self.database = database
        self.clock = clock
        self.on_spooled = on_spooled
        self.batch_count = batch_count
        self.batch_bytes = batch_bytes
        self.idle_renew = idle_renew
        self.connections = 0  # how many logins succeeded: tests and logs see reconnects

    # -- connecting -------------------------------------------------------------------------

    def _ssl_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.account.ca_file or None)

    def connect(self) -> IMAPClient:
        """A logged-in client, over TLS or STARTTLS as configured."""
        account = self.account
        try:
            client = IMAPClient(
                account.host,
                port=account.port,
                ssl=account.tls == "ssl",
                ssl_context=self._ssl_context() if account.tls == "ssl" else None,
                timeout=SOCKET_TIMEOUT,
            )
        except (OSError, IMAPClientError) as exc:
            raise ImapError(f"{self.name}: cannot connect: {exc}") from exc
        try:
            if account.tls == "starttls":
                client.starttls(self._ssl_context())
            client.login(account.username, account.password.reveal())
        except LoginError as exc:
            _close(client)
            raise ImapLoginError(f"{self.name}: login refused: {_text(exc)}") from exc
        except (OSError, IMAPClientError) as exc:
            _close(client)
            raise ImapError(f"{self.name}: cannot log in: {exc}") from exc
        except BaseException:
            _close(client)
            raise
        self.connections += 1
        return client

    # -- one pass ---------------------------------------------------------------------------

    def sync_once(self) -> list[FolderPass]:
        """Connect, read every configured folder once, log out."""
        client = self.connect()
        try:
            return [self.sync_folder(client, folder) for folder in self.account.folders]
        finally:
            _close(client)

    def sync_folder(self, client: IMAPClient, folder: str) -> FolderPass:
        """Select `folder` and spool what is new in it, in batches."""
        try:
            status = client.select_folder(folder)
        except IMAPClientError as exc:
            raise ImapError(f"{self.name}: cannot open folder {folder!r}: {_text(exc)}") from exc
        uidvalidity = int(status[b"UIDVALIDITY"])
        uidnext = int(status.get(b"UIDNEXT", 0))
        state = ImapState.get_or_none(account=self.name, folder=folder)
        rescan = state is None or int(state.uidvalidity) != uidvalidity
        last_uid = 0 if rescan or state is None else int(state.last_uid)
        if rescan:
            if state is not None:
                log.warning(
                    "%s %s: UIDVALIDITY changed %s -> %s; re-scanning (the spool skips mail it holds)",
                    self.name,
                    folder,
                    state.uidvalidity,
                    uidvalidity,
                )
            # the server's marks are all we have: unseen mail, or everything when mail is moved out
            uids = client.search("ALL" if self.account.processed_folder else "UNSEEN")
        elif uidnext and uidnext <= last_uid + 1:
            uids = []  # nothing arrived since the last pass: no SEARCH needed
        else:
            uids = [u for u in client.search(["UID", f"{last_uid + 1}:*"]) if u > last_uid]
        uids = sorted(uids)
        fetched = spooled = 0
        if uids:
            info = client.fetch(uids, ["RFC822.SIZE", "FLAGS"])
            sizes = [
                (uid, int(info[uid].get(b"RFC822.SIZE", 0)))
                for uid in uids
                if uid in info and b"\\Deleted" not in info[uid].get(b"FLAGS", ())
            ]
            target = (
                self._ensure_folder(client, self.account.processed_folder)
                if self.account.processed_folder
                else ""
            )
            for batch in batches(sizes, self.batch_count, self.batch_bytes):
                got, new = self._take(client, folder, uidvalidity, batch, target)
                fetched += got
                spooled += new
                last_uid = max(last_uid, batch[-1])
                self._record(folder, uidvalidity, last_uid)
        if rescan:
            # everything present at SELECT has now been considered, read mail included
            last_uid = max(last_uid, uidnext - 1)
        if rescan or uids:
            self._record(folder, uidvalidity, last_uid)
        return FolderPass(folder, uidvalidity, fetched, spooled, last_uid, rescan)

    def _take(
        self, client: IMAPClient, folder: str, uidvalidity: int, uids: list[int], target: str
    ) -> tuple[int, int]:
        """Fetch, spool (committed), then acknowledge one batch; returns (fetched, new)."""
        data = client.fetch(uids, ["BODY.PEEK[]"])
        present = [uid for uid in uids if uid in data and data[uid].get(b"BODY[]") is not None]
        base = f"imap://{self.name}/{folder};UIDVALIDITY={uidvalidity}"
        incoming = [Incoming(bytes(data[uid][b"BODY[]"]), "imap", f"{base}/;UID={uid}") for uid in present]
        results = self.spool.accept_many(incoming, self.clock()) if incoming else []
        new = sum(not r.duplicate for r in results)
        if new and self.on_spooled is not None:
            self.on_spooled(new)
        if present:
            self._acknowledge(client, present, target)
        for uid, result in zip(present, results, strict=True):
            log.debug(
                "imap %s %s uid %d: spool #%d%s",
                self.name,
                folder,
                uid,
                result.id,
                " (already held)" if result.duplicate else "",
            )
        return len(present), new

    def _acknowledge(self, client: IMAPClient, uids: list[int], target: str) -> None:
        """Flag the spooled messages \\Seen, or move them to `target` when it is set."""
        if not target:
            client.add_flags(uids, [b"\\Seen"], silent=True)
        elif client.has_capability("MOVE"):
            client.move(uids, target)
        else:
            # RFC 6851's fallback: copy, mark deleted, expunge just these UIDs where UIDPLUS allows
            client.copy(uids, target)
            client.add_flags(uids, [b"\\Deleted"], silent=True)
            if client.has_capability("UIDPLUS"):
                client.uid_expunge(uids)
            else:
                client.expunge()

    def _ensure_folder(self, client: IMAPClient, folder: str) -> str:
        """The processed folder's name on this server, created if it is missing."""
        name = self._server_name(client, folder)
        if not client.folder_exists(name):
            log.info("%s: creating folder %r for processed mail", self.name, name)
            try:
                client.create_folder(name)
            except IMAPClientError as exc:
                raise ImapError(f"{self.name}: cannot create folder {name!r}: {_text(exc)}") from exc
        return name

    def _server_name(self, client: IMAPClient, folder: str) -> str:
        """`folder` with "/" as the hierarchy separator, spelt with this server's separator.

        Configs are written once for any server, but Gmail separates levels with "/" and
        Dovecot or Exchange often with ".": "maildesk/done" must work on both.
        """
        if "/" not in folder or client.folder_exists(folder):
            return folder
        listed = client.list_folders("", "")
        separator = listed[0][1] if listed and listed[0][1] else b"/"
        return folder.replace("/", separator.decode() if isinstance(separator, bytes) else separator)

    def _record(self, folder: str, uidvalidity: int, last_uid: int) -> None:
        with self.database.atomic():
            updated = (
                ImapState.update(uidvalidity=uidvalidity, last_uid=last_uid)
                .where((ImapState.account == self.name) & (ImapState.folder == folder))
                .execute()
            )
            if not updated:
                ImapState.create(account=self.name, folder=folder, uidvalidity=uidvalidity, last_uid=last_uid)

    # -- running ----------------------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Watch every folder until `stop` is set; one connection and thread per folder."""
        folders = self.account.folders
        if len(folders) == 1:
            self.watch(folders[0], stop)
            return
        threads = [
            threading.Thread(target=self.watch, args=(f, stop), name=f"imap {self.name} {f}", daemon=True)
            for f in folders
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    def watch(self, folder: str, stop: threading.Event) -> None:
        """Sync `folder`, wait for news (IDLE or poll), repeat; reconnect with backoff on failure."""
        backoff = Backoff()
        while not stop.is_set():
            client = None
            delay = 0.0
            try:
                client = self.connect()
                while not stop.is_set():
                    with lent_connection(self.database):
                        done = self.sync_folder(client, folder)
                    backoff.reset()
                    if done.fetched:
                        log.info(
                            "imap %s %s: %d fetched, %d new", self.name, folder, done.fetched, done.spooled
                        )
                    self._wait(client, stop)
            except ImapLoginError as exc:
                delay = backoff.next(at_least=LOGIN_BACKOFF_MIN)
                log.error("%s; retrying in %.0f s", exc, delay)
            except ImapError as exc:
                delay = backoff.next()
                log.warning("%s; retrying in %.1f s", exc, delay)
            except (OSError, IMAPClientError) as exc:
                delay = backoff.next()
                log.warning(
                    "imap %s %s: connection lost (%s); retrying in %.1f s", self.name, folder, exc, delay
                )
            except SpoolError as exc:
                # the mail stays on the server, unflagged, to be fetched once the spool works
                delay = backoff.next()
                log.error("imap %s %s: %s; retrying in %.1f s", self.name, folder, exc, delay)
            except Exception:  # a bug must not end the intake for good; the mail stays on the server
                delay = backoff.next()
                log.exception("imap %s %s: unexpected failure; retrying in %.1f s", self.name, folder, delay)
            finally:
                if client is not None:
                    _close(client)
            if delay:
                stop.wait(delay)

    def _wait(self, client: IMAPClient, stop: threading.Event) -> None:
        """Return when the folder may have news, the stop event is set, or it is time to poll."""
        if not (self.account.idle and client.has_capability("IDLE")):
            stop.wait(self.account.poll_interval.total_seconds())
            return
        client.idle()
        started = time.monotonic()
        hollow = 0
        try:
            while not stop.is_set() and time.monotonic() - started < self.idle_renew:
                tick = time.monotonic()
                responses = client.idle_check(timeout=IDLE_TICK)
                if any(_is_bye(r) for r in responses):
                    raise _Dropped(f"{self.name}: the server closed the connection")
                if any(_is_news(r) for r in responses):
                    return
                # at end of stream idle_check returns at once, empty, every time: the connection is gone
                hollow = hollow + 1 if not responses and time.monotonic() - tick < IDLE_TICK / 2 else 0
                if hollow >= 3:
                    raise _Dropped(f"{self.name}: the connection was closed")
        finally:
            # on a dead connection the caller's next command reports it
            with contextlib.suppress(OSError, IMAPClientError):
                client.idle_done()


def _is_news(response: Any) -> bool:
    return isinstance(response, tuple) and len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT")


def _is_bye(response: Any) -> bool:
    return isinstance(response, tuple) and bool(response) and response[0] == b"BYE"


def _text(exc: BaseException) -> str:
    text = str(exc)
    return text[2:-1] if text.startswith(("b'", 'b"')) else text


def _close(client: IMAPClient) -> None:
    """Log out politely if the connection still works, and close the socket either way."""
    try:
        client.logout()
    except (OSError, IMAPClientError, AttributeError):
        with contextlib.suppress(OSError, IMAPClientError, AttributeError):
            client.shutdown()
