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
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from peewee import Database, IntegrityError

from maildesk.errors import SpoolError
from maildesk.tickets.store.models import InboundMail

log = logging.getLogger(__name__)

RECEIVED = "received"
PROCESSED = "processed"
QUARANTINED = "quarantined"

_HEADER_END = re.compile(rb"\r?\n\r?\n")
_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*((?:[^\r\n]|\r?\n[ \t])*)", re.IGNORECASE | re.MULTILINE)
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
    body = raw[end.end():] if end else b""
    body = body.replace(b"\r\n", b"\n").rstrip()
    digest = hashlib.sha256(message_id.encode("utf-8", "replace") + b"\0" + body)
    return digest.hexdigest()


class Spool:
    """Content-addressed raw mail under `<storage>/spool`, indexed by `InboundMail` rows."""

    def __init__(self, root: Path, database: Database) -> None:
        self.root = Path(root) / "spool"
        self.database = database
        self._tmp = self.root / "tmp"

    def path_for(self, sha256: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}.eml"

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
        results: list[Spooled | None] = [None] * len(items)
        with self.database.atomic():
            known = self._known([sha for _, sha in items])
            for index, (item, sha) in enumerate(items):
                if sha in known:
                    results[index] = Spooled(known[sha], sha, duplicate=True)
                    continue
                self._write(sha, item.raw)
                key = dedupe_key(item.raw, sha)
                try:
                    with self.database.atomic():
                        row = InboundMail.create(
                            sha256=sha, dedupe_key=key, message_id=header_message_id(item.raw),
                            path=str(self.path_for(sha).relative_to(self.root)), size=len(item.raw),
                            source=item.source, source_ref=item.source_ref[:2000],
                            received_at=now, state=RECEIVED,
                        )
                except IntegrityError:
                    twin = InboundMail.get_or_none(
                        (InboundMail.dedupe_key == key) | (InboundMail.sha256 == sha)
                    )
                    if twin is None:
                        raise
                    if twin.sha256 != sha:
                        # a re-delivery of a message we hold: its own bytes are not needed
                        self.path_for(sha).unlink(missing_ok=True)
                    results[index] = Spooled(twin.id, twin.sha256, duplicate=True)
                    known[sha] = twin.id
                    continue
                known[sha] = row.id
                results[index] = Spooled(row.id, sha, duplicate=False)
        return [r for r in results if r is not None]

    def _known(self, shas: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(shas), 500):
            chunk = shas[start:start + 500]
            query = InboundMail.select(InboundMail.id, InboundMail.sha256).where(
                InboundMail.sha256.in_(chunk)
            )
            found.update({row.sha256: row.id for row in query})
        return found

    def _write(self, sha256: str, raw: bytes) -> None:
        final = self.path_for(sha256)
        if final.exists() and final.stat().st_size == len(raw):
            return
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            self._tmp.mkdir(parents=True, exist_ok=True)
            tmp = self._tmp / f"{sha256}.{os.getpid()}.tmp"
            with open(tmp, "wb") as handle:
                handle.write(raw)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, final)
            _fsync_dir(final.parent)
        except OSError as exc:
            raise SpoolError(f"cannot store message {sha256[:12]} in {self.root}: {exc}") from exc

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
        InboundMail.update(state=PROCESSED, processed_at=now, reason="").where(
            InboundMail.id == row.id
        ).execute()

    def quarantine(self, row: InboundMail, reason: str, now: datetime) -> None:
        """Park a message for a person: raw bytes stay, the reason says why."""
        InboundMail.update(
            state=QUARANTINED, reason=reason[:4000], processed_at=now,
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
