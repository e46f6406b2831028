"""The spool: every intake path stores raw mail here, durably and once, before anything else.

Like Mailman's switchboard, a message is written to a temporary file, fsync'd and renamed
into place, then recorded in the `InboundMail` table; only after that commit may an intake
acknowledge the message (SMTP 250, IMAP flag/move). Files are content-addressed by the
sha256 of the raw bytes, so writing the same message twice is harmless, and a crash between
the rename and the commit leaves at worst an unreferenced file, never a lost message.

Deduplication: the same bytes (sha256), or the same Message-ID with the same body (the
same message delivered twice by different routes, whose trace headers differ), is a no-op.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from peewee import Database

from maildesk.clock import naive_utc
from maildesk.errors import SpoolError
from maildesk.tickets.store.models import InboundMail

log = logging.getLogger(__name__)

RECEIVED = "received"
PROCESSED = "processed"
QUARANTINED = "quarantined"

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(
    rb"^message-id:[ \t]*((?:[^\r\n]|\r?\n[ \t])*)", re.IGNORECASE | re.MULTILINE
)
_ANGLE = re.compile(r"<([^<>\s]{1,990})>")
# only this much of a header block is searched for the Message-ID: a 10,000-header
# message must not make the spool slow
_HEADER_SCAN = 256 * 1024


@dataclass(frozen=True)
class Incoming:
    """Raw bytes as an intake received them, with where they came from."""

    raw: bytes
    source: str  # smtp, lmtp, imap, file, mbox, stdin
    source_ref: str = ""


@dataclass(frozen=True)
class Spooled:
    """The outcome of spooling one message."""

    id: int
    sha256: str
    duplicate: bool


def header_message_id(raw: bytes) -> str:
    """The Message-ID from the raw header block without a full parse ("" when absent)."""
    head = raw[:_HEADER_SCAN]
    end = _HEADER_END.search(head)
    if end:
        head = head[: end.start()]
    match = _MESSAGE_ID.search(head)
    if not match:
        return ""
    value = match.group(1).decode("ascii", "replace")
    value = re.sub(r"\s+", "", value)
    angle = _ANGLE.search(value)
    return (angle.group(1) if angle else value.strip("<>"))[:990]


def dedupe_key(raw: bytes, sha256: str) -> str:
    """Message-ID plus normalised body, so a re-delivery with new Received: lines is a duplicate."""
    message_id = header_message_id(raw)
    if not message_id:
        return sha256
    end = _HEADER_END.search(raw)
    body = raw[end.end() :] if end else b""
    body = body.replace(b"\r\n", b"\n").rstrip()
    digest = hashlib.sha256(message_id.encode("utf-8", "replace") + b"\0" + body)
    return digest.hexdigest()


class Spool:
    """Content-addressed raw mail under `<storage>/spool`, indexed by `InboundMail` rows."""

    def __init__(self, root: Path, database: Database) -> None:
        self.root = Path(root) / "spool"
        self.database = database
        self._tmp = self.root / "tmp"

    def path_for(self, sha256: str, day: datetime) -> Path:
        # one folder per day: a batch's renames are made durable by one folder fsync
        return self.root / day.strftime("%Y-%m-%d") / f"{sha256}.eml"

    def read(self, row: InboundMail) -> bytes:
        path = Path(row.path)
        if not path.is_absolute():
            path = self.root / path
        return path.read_bytes()

    def accept(self, incoming: Incoming, now: datetime) -> Spooled:
        """Store one message durably and record it; committed when this returns."""
        return self.accept_many([incoming], now)[0]

    def accept_many(self, batch: Iterable[Incoming], now: datetime) -> list[Spooled]:
        """Store a batch: every file fsync'd, then one commit; committed when this returns."""
        items = [(item, hashlib.sha256(item.raw).hexdigest()) for item in batch]
        known = self._known([sha for _, sha in items])
        fresh: dict[str, dict[str, object]] = {}
        writes: dict[str, bytes] = {}
        for item, sha in items:
            if sha in known or sha in fresh:
                continue
            writes[sha] = item.raw
            fresh[sha] = {
                "sha256": sha,
                "dedupe_key": dedupe_key(item.raw, sha),
                "message_id": header_message_id(item.raw),
                "path": str(self.path_for(sha, now).relative_to(self.root)),
                "size": len(item.raw),
                "source": item.source,
                "source_ref": item.source_ref[:2000],
                "received_at": naive_utc(now),
                "state": RECEIVED,
            }
        # fsync releases the GIL: several files reach the disk at once
        if len(writes) > 1:
            with ThreadPoolExecutor(max_workers=8) as pool:
                folders = set(
                    pool.map(
                        lambda kv: self._write(self.path_for(kv[0], now), kv[1]), writes.items()
                    )
                )
        else:
            folders = {self._write(self.path_for(sha, now), raw) for sha, raw in writes.items()}
        for folder in folders:  # renames are durable once their folders are
            _fsync_dir(folder)
        duplicates_by_key: set[str] = set()
        with self.database.atomic():
            if fresh:
                rows = list(fresh.values())
                for start in range(0, len(rows), 100):
                    InboundMail.insert_many(
                        rows[start : start + 100]
                    ).on_conflict_ignore().execute()
            known.update(self._known(list(fresh)))
            # rows ignored for their dedupe_key: a re-delivery of a message we already hold
            for sha, row in fresh.items():
                if sha not in known:
                    twin = InboundMail.get_or_none(InboundMail.dedupe_key == row["dedupe_key"])
                    if twin is None:
                        raise SpoolError(f"message {sha[:12]} was neither stored nor found")
                    known[sha] = twin.id
                    duplicates_by_key.add(sha)
                    self.path_for(sha, now).unlink(missing_ok=True)
        results = []
        for _item, sha in items:
            duplicate = sha not in fresh or sha in duplicates_by_key
            results.append(Spooled(known[sha], sha, duplicate=duplicate))
            fresh.pop(sha, None)  # a second copy within the batch is a duplicate
        return results

    def _known(self, shas: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(shas), 500):
            chunk = shas[start : start + 500]
            query = InboundMail.select(InboundMail.id, InboundMail.sha256).where(
                InboundMail.sha256.in_(chunk)
            )
            found.update({row.sha256: row.id for row in query})
        return found

    def _write(self, final: Path, raw: bytes) -> Path:
        """Write the file and fsync it; the caller fsyncs the returned folder."""
        if final.exists() and final.stat().st_size == len(raw):
            return final.parent
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
            tmp = self._tmp / f"{final.stem}.{os.getpid()}.{threading.get_ident()}.tmp"
            with open(tmp, "wb") as handle:
                handle.write(raw)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
        except OSError as exc:
            raise SpoolError(
                f"cannot store message {final.stem[:12]} in {self.root}: {exc}"
            ) from exc
        return final.parent

    # ------------------------------------------------------------------ state changes

    def pending(self, limit: int = 500, after_id: int = 0) -> list[InboundMail]:
        """Spooled mail not yet processed, oldest first."""
        return list(
            InboundMail.select()
            .where((InboundMail.state == RECEIVED) & (InboundMail.id > after_id))
            .order_by(InboundMail.id)
            .limit(limit)
        )

    def mark_processed(self, row: InboundMail, now: datetime) -> None:
        InboundMail.update(state=PROCESSED, processed_at=naive_utc(now), reason="").where(
            InboundMail.id == row.id
        ).execute()

    def quarantine(self, row: InboundMail, reason: str, now: datetime) -> None:
        """Park a message for a person: raw bytes stay, the reason says why."""
        InboundMail.update(
            state=QUARANTINED,
            reason=reason[:4000],
            processed_at=naive_utc(now),
            attempts=InboundMail.attempts + 1,
        ).where(InboundMail.id == row.id).execute()

    def release(self, row: InboundMail) -> None:
        """Put a quarantined message back in line for processing."""
        InboundMail.update(state=RECEIVED, reason="").where(InboundMail.id == row.id).execute()


def _fsync_dir(path: Path) -> None:
    # the rename is durable only once the directory entry is
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
