"""The spool: every intake path stores raw mail here, durably and once, before anything else.

The raw bytes go into the `raw_mail` table (keyed by their sha256) in the same transaction
as the `inbound_mail` row that records where they came from, so a message is either
spooled whole or not at all: there is no window in which a file exists without its row.
The commit is durable (SQLite `synchronous=FULL`, PostgreSQL's WAL) before any intake
acknowledges a message (SMTP 250, IMAP flag/move). A batch of messages costs one
commit, where one fsync'd file each would cost one fsync each.

Deduplication: the same bytes (sha256), or the same Message-ID with the same body (the
same message delivered twice by different routes, whose trace headers differ), is a no-op.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from peewee import Database, DatabaseError

from maildesk.clock import naive_utc
from maildesk.errors import SpoolError
from maildesk.tickets.store.fast import Statements
from maildesk.tickets.store.models import InboundMail, RawMail

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
    body = raw[end.end() :] if end else b""
    body = body.replace(b"\r\n", b"\n").rstrip()
    digest = hashlib.sha256(message_id.encode("utf-8", "replace") + b"\0" + body)
    return digest.hexdigest()


def _by_sha(arity: int) -> Any:
    return InboundMail.select(InboundMail.sha256, InboundMail.id).where(InboundMail.sha256.in_([""] * arity))


def _by_key(arity: int) -> Any:
    return InboundMail.select(InboundMail.dedupe_key, InboundMail.id).where(
        InboundMail.dedupe_key.in_([""] * arity)
    )


def _mark_processed() -> Any:
    return InboundMail.update(state=PROCESSED, processed_at=datetime(2000, 1, 1), reason="").where(
        InboundMail.id == 0
    )


class Spool:
    """Raw mail in `raw_mail`, indexed and tracked by `inbound_mail` rows."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.sql = Statements(database)

    def read(self, row: InboundMail) -> bytes:
        raw = RawMail.select(RawMail.data).where(RawMail.sha256 == row.sha256).scalar()
        if raw is None:
            raise SpoolError(f"spooled message {row.id} has lost its raw bytes")
        return bytes(raw)

    def read_many(self, rows: list[InboundMail]) -> dict[str, bytes]:
        """Raw bytes by sha256 for a batch of rows, in one query."""
        shas = [row.sha256 for row in rows]
        query = RawMail.select(RawMail.sha256, RawMail.data).where(RawMail.sha256.in_(shas))
        # tuples() makes the query yield (sha256, data) rows; peewee's stubs keep it yielding RawMail
        pairs = cast("Iterable[tuple[str, bytes | memoryview]]", query.tuples())
        return {sha: bytes(data) for sha, data in pairs}

    def accept(self, incoming: Incoming, now: datetime) -> Spooled:
        """Store one message durably and record it; committed when this returns."""
        return self.accept_many([incoming], now)[0]

    def accept_many(self, batch: Iterable[Incoming], now: datetime) -> list[Spooled]:
        """Store a batch in one transaction; durably committed when this returns."""
        items = [(item, hashlib.sha256(item.raw).hexdigest()) for item in batch]
        received_at = naive_utc(now)
        try:
            with self.database.atomic():
                known = self._known([sha for _, sha in items])
                fresh: dict[str, tuple[Incoming, str]] = {}
                for item, sha in items:
                    if sha not in known and sha not in fresh:
                        fresh[sha] = (item, dedupe_key(item.raw, sha))
                # a re-delivery of a message we hold (same Message-ID and body) is not stored again
                twins = self._by_dedupe_key([key for _, key in fresh.values()])
                stored: dict[str, str] = {}
                rows: list[dict[str, Any]] = []
                blobs: list[dict[str, Any]] = []
                for sha, (item, key) in fresh.items():
                    if key in twins or key in stored:
                        continue
                    stored[key] = sha
                    blobs.append({"sha256": sha, "data": item.raw})
                    rows.append(
                        {
                            "sha256": sha,
                            "dedupe_key": key,
                            "message_id": header_message_id(item.raw),
                            "size": len(item.raw),
                            "source": item.source,
                            "source_ref": item.source_ref[:2000],
                            "received_at": received_at,
                            "state": RECEIVED,
                        }
                    )
                new_ids: dict[str, int] = {}
                for blob, row in zip(blobs, rows, strict=True):
                    # one cached statement per row: rendering a multi-row INSERT costs more
                    self.sql.insert(RawMail, blob)
                    new_ids[row["sha256"]] = self.sql.insert(InboundMail, row)
                known.update(new_ids)
                twins.update({key: new_ids[sha] for key, sha in stored.items()})
        except DatabaseError as exc:
            raise SpoolError(f"cannot store {len(items)} message(s) in the spool: {exc}") from exc
        inserted = set(stored.values())
        results = []
        for _item, sha in items:
            spool_id = known[sha] if sha in known else twins[fresh[sha][1]]
            results.append(Spooled(spool_id, sha, duplicate=sha not in inserted))
            inserted.discard(sha)  # a second copy in the same batch is a duplicate
        return results

    def _known(self, shas: list[str]) -> dict[str, int]:
        return self._lookup("spool-by-sha", _by_sha, shas)

    def _by_dedupe_key(self, keys: list[str]) -> dict[str, int]:
        return self._lookup("spool-by-dedupe-key", _by_key, keys)

    def _lookup(self, name: str, build: Callable[[int], Any], values: list[str]) -> dict[str, int]:
        found: dict[str, int] = {}
        for start in range(0, len(values), 100):
            chunk = values[start : start + 100]
            found.update(dict(self.sql.query(name, build, chunk, arity=len(chunk))))
        return found

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
        self.sql.execute("mark-processed", _mark_processed, [PROCESSED, "", naive_utc(now), row.id])

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
