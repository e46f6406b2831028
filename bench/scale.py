"""Scale on one PostgreSQL: workers sharing a queue, and threading on a database of a million messages.

Both parts use a throwaway PostgreSQL cluster (Debian's postgresql, started as the tests start
it, with fsync=off, synchronous_commit=off and full_page_writes=off: the numbers are for the
database's work, not the disk's) and a fresh database per run.

Part 1, workers (the default):

    python3 bench/scale.py [--messages 2000] [--workers 1 2 4]

N messages (conversations of a first message and a reply, interleaved in the spool) are
spooled, then k `process_pending` worker processes start at once and share the queue (FOR
UPDATE SKIP LOCKED claims, a commit per message). Printed per k: seconds, messages per second,
and the ratio to one worker in the same run; and the check that every message was stored once
and every conversation is one ticket. On a 2-core machine the workers compete with PostgreSQL
for the cores, so read the ratios with that in mind.

Part 2, a big database (threading must stay an index lookup as the history grows):

    python3 bench/scale.py --million          # 1,000,000 messages in 200,000 tickets, then 1,000,000 tickets
    python3 bench/scale.py --tickets 300000   # the same, stopping at 300,000 tickets
    python3 bench/scale.py --quick            # a smoke run: checkpoints at 1k, 5k and 10k tickets, ~20 s

The pipeline does 100-200 messages a second here, hours for a million, so the history is
bulk-loaded with COPY in exactly the shape the pipeline writes it: ticket, contact (and a Cc'd
colleague as ticket_participant on every 4th ticket), inbound_mail and raw_mail (the spool),
message, message_reference, the acknowledgement (in message and outbound_mail) and the events.
That shape is checked first: one 5-message and one 1-message conversation go through the real
pipeline into one scratch database and through the loader into another, and their rows must be
equal. Tickets 1-200,000 are conversations of 5 messages (a first message and 4 replies whose
In-Reply-To and References point into the thread); 1-message tickets follow up to the total.

At each checkpoint (10k, 100k and 200k tickets, and the total) the load so far is VACUUM
ANALYZEd, then the real worker (`process_pending`, batches of 50) threads 300 replies to random
loaded tickets (half by In-Reply-To/References, a quarter only by the subject tag [MD-n], a quarter
only by the subject) and 50 new conversations, after 20 warm-up replies. Printed per checkpoint:
load time and rows/s, database size, p50 and p99 of the threading stage (threader.run, timed by
wrapping it in the worker's stages), p99 of the whole message (process_one: every stage after
parsing, and the commit) and whether every message landed on the right ticket. At the end: the
ratio of p99 at the largest checkpoint to the first, EXPLAIN ANALYZE of every statement threading
ran (a Seq Scan is flagged), plain EXPLAIN of the worker's other statements, and the biggest
tables and indexes. The machine's load average is printed because p99 of a few hundred messages
on 2 shared cores is noisy.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import itertools
import json
import math
import os
import queue
import random
import sys
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402

from maildesk.config import Config, load_config  # noqa: E402
from maildesk.pipeline import MailContext, Outcome, Verdict, Worker  # noqa: E402
from maildesk.spool import Incoming, dedupe_key  # noqa: E402
from maildesk.subjects import subject_key  # noqa: E402
from maildesk.tickets.store.models import InboundMail  # noqa: E402
from tests.conftest import postgres_admin, postgres_server  # noqa: E402
from tests.test_scale import CONFIG, rows, spool, start_workers, taken_by  # noqa: E402


def run(server: dict, n: int, workers: int) -> float:
    name = f"bench_{workers}_{time.monotonic_ns()}"
    url = _create_database(server, name)
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = Path(folder) / "maildesk.toml"
            config.write_text(CONFIG.format(root=folder))
            total = spool(url, config, conversations=n // 2, replies=1)
            started = time.perf_counter()
            taken_by(start_workers(config, url, workers, batch=50), timeout=3600)
            seconds = time.perf_counter() - started
            stored = rows(
                url, "SELECT count(*), count(DISTINCT inbound_id) FROM message WHERE direction = 'in'"
            )
            split = rows(
                url,
                "SELECT split_part(message_id, '.', 1) FROM message WHERE direction = 'in' "
                "GROUP BY 1 HAVING count(DISTINCT ticket_id) > 1",
            )
            ok = stored == [(total, total)] and not split
            rate = total / seconds
            verdict = "yes" if ok else "NO"
            print(f"{workers} worker(s): {total:,} messages in {seconds:6.2f} s = {rate:6.0f} msg/s"
                  f"  (each once, threads whole: {verdict})")  # fmt: skip
            return total / seconds
    finally:
        _drop_database(server, name)


# ---------------------------------------------------------------------------------------- part 2

DESK = "support@helpdesk.example"
T_BASE = datetime(2025, 1, 1, 8, 0)  # naive UTC, as the store keeps times
STEP = timedelta(seconds=30)  # conversation c starts at T_BASE + c * STEP: 1M tickets span a year
REPLY_AFTER = (timedelta(0), timedelta(hours=2), timedelta(hours=5), timedelta(days=1), timedelta(days=2))
THREADED = 200_000  # tickets that are 5-message conversations; later ones have one message
CHUNK = 5_000  # conversations per COPY round (about 50k message-table rows for 5-message ones)

TOPICS = (
    "printer on floor {f}", "VPN drops every {m} minutes", "laptop battery swollen",
    "shared drive S: not mapped on floor {f}", "Outlook asks for the password again",
    "badge reader at door {f} rejects cards", "monitor flickers in room {r}",
    "calls cut off after {m} minutes", "invoice {r} missing in the portal",
    "phone extension {r} has no dial tone", "Wi-Fi weak in meeting room {r}",
    "scanner on floor {f} saves blank pages", "password reset link expired",
    "projector in room {r} shows no picture", "licence for the CAD software expired",
    "docking station on desk {r} not charging",
)  # fmt: skip
FIRST = ("Uma", "Ben", "Carla", "Dev", "Elif", "Frank", "Grete", "Hiro", "Ines", "Jonas", "Kemal", "Lea")
LAST = ("Customer", "Novak", "Okafor", "Petersen", "Quinn", "Rossi", "Sato", "Tanaka", "Varga", "Weber")
COMPANIES = ("Acme Ltd", "Globex GmbH", "Initech BV", "Umbrella SA", "Hooli Inc", "Stark Logistics")
UPDATES = (
    "update {r}: still the same error after the restart this morning.",
    "update {r}: it worked for an hour, then the same error came back.",
    "update {r}: a colleague on the same floor sees it as well now.",
    "update {r}: we tried the steps from your knowledge base, no change.",
    "update {r}: it happens every time someone logs in before nine.",
)
ACK_TEXT = """Dear {name},

thank you for writing to Example Support. This message confirms that we have received your
request "{subject}" and opened ticket {ref} for it.

What happens next: a member of our team will answer you within 2 business hours. If you have more
to tell us in the meantime, simply reply to this message and keep [{ref}] in the
subject, so that everything stays together in one place.

If there is anything else we can help you with, please let us know.

Thank you for your patience.

Kind regards,
Example Support
"""
# the acknowledgement as the outbox keeps it (its size matters here; its bytes are never read back)
ACK_WIRE = """From: Example Support <{desk}>
To: {name} <{email}>
Reply-To: Example Support <{desk}>
Subject: [{ref}] {subject}
Date: {date}
Message-ID: <{message_id}>
In-Reply-To: <{root}>
References: <{root}>
Auto-Submitted: auto-replied
X-Auto-Response-Suppress: All
Precedence: auto_reply
X-Loop: {desk}
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="=_{boundary}"

--=_{boundary}
Content-Type: text/plain; charset="utf-8"
Content-Transfer-Encoding: 8bit

{text}
--=_{boundary}
Content-Type: text/html; charset="utf-8"
Content-Transfer-Encoding: 8bit

<!DOCTYPE html>
<html><body style="font-family: sans-serif; font-size: 14px;">
<p>Dear {name},</p>
<p>thank you for writing to Example Support. This message confirms that we have received your
request &ldquo;{subject}&rdquo; and opened ticket <strong>{ref}</strong> for it.</p>
<p>What happens next: a member of our team will answer you within 2 business hours. If you have more
to tell us in the meantime, simply reply to this message and keep [{ref}] in the
subject, so that everything stays together in one place.</p>
<p>If there is anything else we can help you with, please let us know.</p>
<p>Thank you for your patience.</p>
<p>Kind regards,<br>Example Support</p>
</body></html>

--=_{boundary}--
"""


@dataclass(frozen=True)
class Mail:
    """One customer message: its raw bytes and what the parser and record.py make of them."""

    message_id: str
    subject: str
    date: datetime  # the Date header, naive UTC
    raw: bytes
    text: str  # the new text (quotes stripped), as record.py stores it in message.text
    body: str  # the whole text part, message.body
    refs: tuple[str, ...]  # In-Reply-To then References, deduplicated, as message_reference holds them


@dataclass(frozen=True)
class Conversation:
    c: int
    name: str
    email: str
    subject: str
    mails: tuple[Mail, ...]
    cc: tuple[str, str] | None = None  # a colleague copied on every message: (name, address)

    @property
    def last(self) -> Mail:
        return self.mails[-1]


def _raw(
    name: str,
    email: str,
    subject: str,
    date: datetime,
    message_id: str,
    refs: tuple[str, ...],
    body: str,
    cc: tuple[str, str] | None = None,
) -> bytes:
    """The bytes a mail client sends (the header set tests/mail.py's make_mail writes)."""
    head = [f"From: {name} <{email}>", f"To: {DESK}", *([f"Cc: {cc[0]} <{cc[1]}>"] if cc else [])]
    head += [
        f"Subject: {subject}",
        f"Date: {format_datetime(date.replace(tzinfo=UTC))}",
        f"Message-ID: <{message_id}>",
    ]
    if refs:
        # refs[0] is the parent; References lists the thread from its root, folded one per line
        head.append(f"In-Reply-To: <{refs[0]}>")
        head.append("References: " + "\n ".join(f"<{r}>" for r in (*refs[1:], refs[0])))
    head += [
        'Content-Type: text/plain; charset="utf-8"',
        "Content-Transfer-Encoding: 7bit",
        "MIME-Version: 1.0",
    ]
    return ("\n".join(head) + "\n\n" + body).encode()


def _quote_header(date: datetime, name: str) -> str:
    return f"On {date:%a}, {date.day} {date:%b %Y}, {name} wrote:"


def conversation(c: int, messages: int) -> Conversation:
    """Conversation number c: distinct subject, sender and Message-IDs (c123456.2@customer.example)."""
    first, last = FIRST[c % len(FIRST)], LAST[(c // len(FIRST)) % len(LAST)]
    name, email = f"{first} {last}", f"{first.lower()}.{last.lower()}.{c}@customer.example"
    # every 4th customer copies a colleague, who becomes a participant of the ticket
    mate = FIRST[(c + 5) % len(FIRST)]
    cc = (f"{mate} {last}", f"{mate.lower()}.{last.lower()}.{c}@customer.example") if c % 4 == 0 else None
    floor, minutes, room = c % 9 + 1, c % 50 + 5, c % 400 + 100
    topic = TOPICS[c % len(TOPICS)].format(f=floor, m=minutes, r=room)
    subject = f"Case {c:06d} {topic}"
    start = T_BASE + c * STEP
    body = (
        f"Hello,\n\nsince this morning the {topic} is not working.\n"
        f"The screen shows error E-{c % 90 + 10} and switching it off and on again\n"
        f"did not help. It started after the update on Monday.\n\n"
        f"Could someone please have a look when you have a moment?\n\n"
        f"Kind regards,\n{name}\n{COMPANIES[c % len(COMPANIES)]}, phone +44 20 7946 {c % 10_000:04d}\n"
    )
    root = f"c{c}.0@customer.example"
    mails = [
        Mail(
            root,
            subject,
            start,
            _raw(name, email, subject, start, root, (), body, cc),
            body.rstrip(),
            body,
            (),
        )
    ]
    for r in range(1, messages):
        date, parent = start + REPLY_AFTER[r], mails[-1]
        message_id = f"c{c}.{r}@customer.example"
        refs = (parent.message_id, *(m.message_id for m in mails[:-1]))
        text = f"Hi again,\n\n{UPDATES[(c + r) % len(UPDATES)].format(r=r)}\n\n{first}"
        quoted = "\n".join(f"> {line}" for line in parent.text.splitlines()[:4])
        body = f"{text}\n\n{_quote_header(parent.date, name)}\n{quoted}\n"
        reply_subject = f"Re: {subject}"
        raw = _raw(name, email, reply_subject, date, message_id, refs, body, cc)  # a reply to all
        mails.append(Mail(message_id, reply_subject, date, raw, text, body, refs))
    return Conversation(c, name, email, subject, tuple(mails), cc)


def _batches(items: Iterable[Conversation], size: int) -> Iterator[list[Conversation]]:
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


def _arrived(date: datetime) -> datetime:
    return date + timedelta(minutes=1)  # the worker stores a message a minute after it was written


def _t(value: str) -> str:
    """A text value for COPY's text format (chained replace: several times faster than translate)."""
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def _d(value: datetime) -> str:
    return value.isoformat(" ")


COLUMNS = {
    "contact": "id, email, name, undeliverable, created_at",
    "ticket": "id, number, subject, subject_key, status, issue_type, request_type, issue_record, "
    "type_confidence, priority, team, requester_id, created_at, updated_at, tier, sla_next_at",
    "raw_mail": "sha256, data",
    "inbound_mail": "id, sha256, dedupe_key, message_id, size, source, source_ref, received_at, state, "
    "reason, attempts, processed_at, claimed_until",
    "message": "id, ticket_id, inbound_id, message_id, direction, visibility, kind, from_addr, from_name, "
    '"to", cc, date, arrived_at, subject, text, body, defects',
    "message_reference": "id, message_id, ref",
    "outbound_mail": "id, ticket_id, message_id, recipients, recipient, kind, automatic, sender, data, path, "
    "state, tries, next_try_at, last_error, created_at, sent_at",
    "event": "id, ticket_id, at, kind, detail, actor",
    "ticket_participant": "id, ticket_id, contact_id, role",
}
SERIAL = (
    "contact", "ticket", "inbound_mail", "message", "message_reference", "outbound_mail", "event",
    "ticket_participant",
)  # fmt: skip


class Loader:
    """Writes conversations with COPY, with the rows (and ids, in order) the pipeline would write."""

    def __init__(self, conn: Any, prefix: str) -> None:
        self.conn = conn
        self.prefix = prefix
        self.next: dict[str, int] = {}
        self.number = 1
        self.rows = 0

    def _refresh(self) -> None:
        # the worker inserts between loads (the measured mail), so ids continue after its rows
        with self.conn.cursor() as cur:
            for table in SERIAL:
                cur.execute(f"SELECT COALESCE(max(id), 0) + 1 FROM {table}")
                self.next[table] = cur.fetchone()[0]
            cur.execute("SELECT COALESCE(max(number), 0) + 1 FROM ticket")
            self.number = cur.fetchone()[0]

    def _id(self, table: str) -> int:
        value = self.next[table]
        self.next[table] = value + 1
        return value

    def load(self, conversations: Iterable[Conversation], chunk: int = CHUNK) -> int:
        """COPY the conversations in rounds of `chunk`; returns the rows written.

        A thread renders the next round's rows while PostgreSQL takes this one: psycopg2 lets go
        of the GIL while it waits on the server, so the two cores both work.
        """
        self._refresh()
        rounds: queue.Queue[dict[str, list[str]] | BaseException | None] = queue.Queue(maxsize=2)

        def render() -> None:
            try:
                for batch in _batches(conversations, chunk):
                    lines: dict[str, list[str]] = {table: [] for table in COLUMNS}
                    for conv in batch:
                        self._add(conv, lines)
                    rounds.put(lines)
                rounds.put(None)
            except BaseException as exc:  # handed to the main thread, which raises it
                rounds.put(exc)

        threading.Thread(target=render, daemon=True).start()
        written = 0
        while (lines := rounds.get()) is not None:
            if isinstance(lines, BaseException):
                raise lines
            written += self._copy(lines)
        with self.conn.cursor() as cur:
            # so the worker's own inserts continue after the loaded ids
            for table in SERIAL:
                cur.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT COALESCE(max(id), 1) FROM {table}))"
                )
        self.conn.commit()
        return written

    def _copy(self, lines: dict[str, list[str]]) -> int:
        with self.conn.cursor() as cur:
            # the foreign-key triggers only check what this loader builds consistent by construction;
            # replica mode skips them for this session (the worker's own inserts are checked as usual)
            cur.execute("SET session_replication_role = replica")
            for table, found in lines.items():
                if found:
                    data = io.BytesIO("".join(found).encode())
                    cur.copy_expert(f"COPY {table} ({COLUMNS[table]}) FROM STDIN", data)
        self.conn.commit()
        return sum(len(found) for found in lines.values())

    def _add(self, conv: Conversation, out: dict[str, list[str]]) -> None:
        """One conversation's rows, in the order and shape the stages write them (see check_shape)."""
        ticket_id, contact_id, number = self._id("ticket"), self._id("contact"), self.number
        self.number += 1
        ref = f"{self.prefix}-{number}"
        who = f"{conv.name} <{conv.email}>"
        first_at, last_at = _arrived(conv.mails[0].date), _arrived(conv.last.date)
        out["contact"].append(f"{contact_id}\t{conv.email}\t{conv.name}\tf\t{_d(first_at)}\n")
        if conv.cc:  # the colleague copied: a contact right after the sender's, and a participant
            mate_id = self._id("contact")
            out["contact"].append(f"{mate_id}\t{conv.cc[1]}\t{conv.cc[0]}\tf\t{_d(first_at)}\n")
            out["ticket_participant"].append(
                f"{self._id('ticket_participant')}\t{ticket_id}\t{mate_id}\tcc\n"
            )
        issue = json.dumps({
            "occurred": "since this morning", "phone": f"+44 20 7946 {conv.c % 10_000:04d}",
            "location": "", "resource": conv.subject, "errors": [f"error E-{conv.c % 90 + 10}"],
            "first_time": None,
        })  # fmt: skip
        out["ticket"].append(
            f"{ticket_id}\t{number}\t{conv.subject}\t{_t(subject_key(conv.subject))}\tnew\tIncident\t"
            f"technical issue\t{_t(issue)}\t0.51\turgent\t\t{contact_id}\t{_d(first_at)}\t{_d(last_at)}\t1\t"
            f"{_d(last_at)}\n"
        )
        to, cc = json.dumps([DESK]), json.dumps([conv.cc[1]] if conv.cc else [])
        for i, mail in enumerate(conv.mails):
            at = _arrived(mail.date)
            sha = hashlib.sha256(mail.raw).hexdigest()
            inbound_id = self._id("inbound_mail")
            out["raw_mail"].append(f"{sha}\t\\\\x{mail.raw.hex()}\n")
            out["inbound_mail"].append(
                f"{inbound_id}\t{sha}\t{dedupe_key(mail.raw, sha)}\t{mail.message_id}\t{len(mail.raw)}\t"
                f"imap\t{DESK}/INBOX/{inbound_id}\t{_d(mail.date + timedelta(seconds=30))}\tprocessed\t\t0\t"
                f"{_d(at)}\t{_d(at + timedelta(minutes=5))}\n"
            )
            message_pk = self._id("message")
            out["message"].append(
                f"{message_pk}\t{ticket_id}\t{inbound_id}\t{mail.message_id}\tin\tpublic\tcustomer\t{conv.email}\t"
                f"{conv.name}\t{to}\t{cc}\t{_d(mail.date)}\t{_d(at)}\t{mail.subject}\t{_t(mail.text)}\t"
                f"{_t(mail.body)}\t[]\n"
            )
            for target in mail.refs:
                out["message_reference"].append(f"{self._id('message_reference')}\t{message_pk}\t{target}\n")
            if i:
                out["event"].append(
                    f"{self._id('event')}\t{ticket_id}\t{_d(at)}\tmessage\t"
                    f"reply from {who} joined by in-reply-to\tmaildesk\n"
                )
                continue
            self._acknowledge(conv, ticket_id, ref, at, out)

    def _acknowledge(
        self, conv: Conversation, ticket_id: int, ref: str, at: datetime, out: dict[str, list[str]]
    ) -> None:
        """What a first message adds: the events of the record, routing and respond stages, and the
        acknowledgement (a message row and the outbox's copy)."""
        who = f"{conv.name} <{conv.email}>"
        for kind, detail in (
            ("created", f"from {who} via imap"),
            *([("participant_added", conv.cc[1])] if conv.cc else []),
            ("issue_record", "learned occurred, phone, resource, errors"),
            ("classified", "Incident (0.51)"),
            ("priority", "urgent: issue type Incident"),
            ("request_type", 'technical issue: reports trouble ("not working")'),
            ("alert_skipped", "no team address"),  # the urgent alert goes to a team address; there is none
            ("acknowledged", f"to {conv.email}"),
        ):
            out["event"].append(f"{self._id('event')}\t{ticket_id}\t{_d(at)}\t{kind}\t{detail}\tmaildesk\n")
        ack_id = f"{at:%Y%m%d%H%M%S}.{(conv.c * 2_654_435_761) & 0xFFFFFF:06x}.{ref.lower()}@helpdesk.example"
        text = ACK_TEXT.format(name=conv.name, subject=conv.subject, ref=ref)
        recipients = json.dumps([conv.email])
        out["message"].append(
            f"{self._id('message')}\t{ticket_id}\t\\N\t{ack_id}\tout\tpublic\tsystem\t{DESK}\t"
            f"Example Support\t{recipients}\t[]\t{_d(at)}\t{_d(at)}\t[{ref}] {conv.subject}\t"
            f"{_t(text)}\t\t[]\n"
        )
        wire = ACK_WIRE.format(
            desk=DESK, name=conv.name, email=conv.email, ref=ref, subject=conv.subject, text=text,
            date=format_datetime(at.replace(tzinfo=UTC)), message_id=ack_id, root=conv.mails[0].message_id,
            boundary=hashlib.md5(ack_id.encode()).hexdigest()[:24],
        ).replace("\n", "\r\n")  # fmt: skip
        # acknowledgements of history have long been sent: the outbox's state says so
        out["outbound_mail"].append(
            f"{self._id('outbound_mail')}\t{ticket_id}\t{ack_id}\t{recipients}\t{conv.email}\tacknowledgement\t"
            f"t\t{DESK}\t\\\\x{wire.encode().hex()}\t\tsent\t1\t{_d(at)}\t\t{_d(at)}\t"
            f"{_d(at + timedelta(seconds=5))}\n"
        )


def _create_database(server: dict, name: str) -> str:
    postgres_admin(server, f'CREATE DATABASE "{name}"')
    return f"postgresql://postgres@127.0.0.1:{server['port']}/{name}"


def _drop_database(server: dict, name: str) -> None:
    postgres_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _schema(url: str) -> None:
    """Every migration applied, indexes included, by the product's own code."""
    from maildesk.tickets.store.db import open_database

    database = open_database(url)
    database.close_all()  # type: ignore[attr-defined]


# what must be equal between the pipeline's rows and the loader's; times of arrival, the
# classifier's verdicts and the outbox's random Message-IDs and state legitimately differ
SHAPE = {
    "contact": "SELECT id, email, name, organization_id, undeliverable FROM contact ORDER BY id",
    "ticket": "SELECT id, number, subject, subject_key, status, team, requester_id, organization_id, tier, "
    "merged_into_id, closed_at FROM ticket ORDER BY id",
    "inbound_mail": "SELECT id, sha256, dedupe_key, message_id, size, state, reason, attempts, spam_score "
    "FROM inbound_mail ORDER BY id",
    "raw_mail": "SELECT sha256, md5(data) FROM raw_mail ORDER BY sha256",
    "message": "SELECT id, ticket_id, inbound_id, CASE WHEN direction = 'in' THEN message_id END, direction, "
    "visibility, kind, from_addr, from_name, \"to\", cc, CASE WHEN direction = 'in' THEN date END, subject, "
    "CASE WHEN direction = 'in' THEN text END, body, defects FROM message ORDER BY id",
    "message_reference": "SELECT id, message_id, ref FROM message_reference ORDER BY id",
    "outbound_mail": "SELECT id, ticket_id, recipients, recipient, kind, automatic, sender "
    "FROM outbound_mail ORDER BY id",
    "event": "SELECT ticket_id, kind FROM event ORDER BY id",
    "ticket_participant": "SELECT ticket_id, contact_id FROM ticket_participant ORDER BY id",
}


def check_shape(server: dict, config: Path) -> bool:
    """One 5-message and one 1-message conversation through the real pipeline and through the
    loader, into two scratch databases; their rows must be the same."""
    from maildesk.desk import open_desk

    convs = [conversation(123456, 5), conversation(654321, 1)]
    tag = time.monotonic_ns()
    names = (f"shape_pipeline_{tag}", f"shape_loader_{tag}")
    try:
        by_pipeline, by_loader = (_create_database(server, name) for name in names)
        desk = open_desk(load_config(config), by_pipeline)
        items = [Incoming(mail.raw, "imap") for conv in convs for mail in conv.mails]
        desk.spool.accept_many(items, datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
        desk.worker.process_pending(datetime(2026, 11, 2, 10, 0, tzinfo=UTC), batch_size=50)
        prefix = desk.config.desk.ticket_prefix
        desk.close()
        _schema(by_loader)
        conn = psycopg2.connect(by_loader)
        Loader(conn, prefix).load(convs)
        conn.close()
        differs = [table for table, sql in SHAPE.items() if rows(by_pipeline, sql) != rows(by_loader, sql)]
    finally:
        for name in names:
            _drop_database(server, name)
    print(
        "shape: the loader's rows equal the pipeline's for a 5-message and a 1-message conversation "
        f"({', '.join(SHAPE)}): {'yes' if not differs else 'NO, they differ in ' + ', '.join(differs)}"
    )
    return not differs


@dataclass
class Timings:
    """What the instrumented worker measured, by spool id; and the SQL threading ran."""

    thread: dict[int, float] = field(default_factory=dict)
    how: dict[int, str] = field(default_factory=dict)
    whole: dict[int, float] = field(default_factory=dict)
    # first parameters seen, by SQL: of the threading stage, and of everything else the worker ran
    statements: dict[str, list[Any]] = field(default_factory=dict)
    others: dict[str, list[Any]] = field(default_factory=dict)
    threading: bool = False

    def clear(self) -> None:
        self.thread.clear()
        self.how.clear()
        self.whole.clear()


class TimedWorker(Worker):
    """The real worker, timing process_one (every stage after parsing, and the commit)."""

    timings: Timings

    def process_one(self, row: InboundMail, now: datetime, *args: Any, **kwargs: Any) -> Outcome:
        started = time.perf_counter()
        try:
            return super().process_one(row, now, *args, **kwargs)
        finally:
            self.timings.whole[row.id] = time.perf_counter() - started


def timed_worker(config: Config, database: Any, spool_: Any, timings: Timings) -> TimedWorker:
    """The pipeline's own stages, threader.run timed; the SQL it runs captured for EXPLAIN."""
    from maildesk import threader
    from maildesk.pipeline import _stages

    @functools.wraps(threader.run)  # the worker names a failing stage by its module and name
    def thread(ctx: MailContext) -> Verdict:
        timings.threading = True
        started = time.perf_counter()
        try:
            return threader.run(ctx)
        finally:
            timings.thread[ctx.spool_id] = time.perf_counter() - started
            timings.threading = False
            timings.how[ctx.spool_id] = ctx.thread.how if ctx.thread else "?"

    execute_sql = database.execute_sql

    def capture(sql: str, params: Any = None) -> Any:
        seen = timings.statements if timings.threading else timings.others
        if sql not in seen:
            seen[sql] = list(params or [])
        return execute_sql(sql, params)

    setattr(database, "execute_sql", capture)  # noqa: B010 (an instance attribute over the method)
    stages = tuple(thread if stage is threader.run else stage for stage in _stages())
    worker = TimedWorker(config, database, spool_, stages=stages)
    worker.timings = timings
    return worker


@dataclass(frozen=True)
class Expected:
    ticket: int | None  # the ticket number it belongs to; None: a new ticket
    how: str


def _reply(conv: Conversation, serial: int, mode: str, number: int, prefix: str) -> Mail:
    """A new reply to conversation c: threaded by its headers, by the subject tag only, or by the
    subject only, within the subject window of the thread's last message. The requester writes it,
    except a tagged reply on a ticket with a participant: the colleague does (the participant check)."""
    message_id = f"c{conv.c}.x{serial}@customer.example"
    date = conv.last.date + timedelta(days=1)
    subject = f"Re: [{prefix}-{number}] {conv.subject}" if mode == "tag" else f"Re: {conv.subject}"
    refs = (conv.last.message_id, *(m.message_id for m in conv.mails[:-1])) if mode == "headers" else ()
    name, email = conv.cc if mode == "tag" and conv.cc else (conv.name, conv.email)
    text = f"Hello again,\n\nany news on this? {UPDATES[serial % len(UPDATES)].format(r=serial)}"
    body = f"{text}\n\n{name.split()[0]}\n"
    return Mail(
        message_id, subject, date, _raw(name, email, subject, date, message_id, refs, body), text, body, refs
    )


def percentile(values: list[float], p: float) -> float:
    """Nearest rank: the smallest value with at least p of the values at or below it."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


@dataclass
class Measured:
    tickets: int
    messages: int  # inbound messages stored
    load_seconds: float
    load_rows: int
    vacuum_seconds: float
    size: int
    thread_p50: float
    thread_p99: float
    whole_p99: float
    by_how: dict[str, float]  # threading p99 by how the message was threaded
    right: int
    total: int
    load: float  # the machine's 1-minute load average while measuring


def _numbers(conn: Any, convs: list[Conversation]) -> dict[int, int]:
    """Ticket number by conversation, found by each conversation's first Message-ID."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT m.message_id, t.number FROM message m JOIN ticket t ON t.id = m.ticket_id "
            "WHERE m.message_id = ANY(%s)",
            ([conv.mails[0].message_id for conv in convs],),
        )
        by_root = dict(cur.fetchall())
    conn.commit()
    return {conv.c: by_root[conv.mails[0].message_id] for conv in convs}


def _run_batch(
    worker: TimedWorker, desk: Any, conn: Any, items: list[tuple[Mail, Expected]], now: datetime
) -> tuple[int, dict[int, Expected]]:
    """Spool the mail, let the worker process it, and count what landed on the expected ticket."""
    with conn.cursor() as cur:
        cur.execute("SELECT max(number) FROM ticket")
        highest = cur.fetchone()[0]
    conn.commit()
    spooled = desk.spool.accept_many([Incoming(mail.raw, "imap") for mail, _ in items], now)
    expected = {s.id: want for s, (_, want) in zip(spooled, items, strict=True)}
    worker.process_pending(now, batch_size=50)
    with conn.cursor() as cur:
        cur.execute(
            "SELECT m.inbound_id, t.number FROM message m JOIN ticket t ON t.id = m.ticket_id "
            "WHERE m.inbound_id = ANY(%s)",
            (list(expected),),
        )
        landed = dict(cur.fetchall())
    conn.commit()
    new = [landed.get(spool_id) for spool_id, want in expected.items() if want.ticket is None]
    right = sum(
        1
        for spool_id, want in expected.items()
        if worker.timings.how.get(spool_id) == want.how
        and (
            landed.get(spool_id) == want.ticket
            if want.ticket is not None
            else (landed.get(spool_id) or 0) > highest
        )
    )
    if len(set(new)) != len(new):
        right -= len(new) - len(set(new))  # two new conversations must not share a ticket
    return right, expected


def measure(
    conn: Any, desk: Any, loaded: int, threaded: int, tag: int, replies: int, new: int, warmup: int
) -> tuple[Timings, int, int]:
    """Thread `replies` replies to random loaded tickets and `new` new conversations with the real worker."""
    rng = random.Random(tag)
    prefix = desk.config.desk.ticket_prefix
    timings = Timings()
    desk.worker.close()
    worker = desk.worker = timed_worker(desk.config, desk.database, desk.spool, timings)
    picked = [
        conversation(c, 5 if c <= threaded else 1) for c in rng.sample(range(1, loaded + 1), warmup + replies)
    ]
    numbers = _numbers(conn, picked)
    # "now" is just after the last loaded conversation; a reply is dated a day after its thread's last message
    now = (T_BASE + (loaded + 1) * STEP + timedelta(days=3)).replace(tzinfo=UTC)
    modes = ["headers"] * (replies // 2) + ["tag"] * (replies // 4)
    modes += ["subject"] * (replies - len(modes))
    how = {"headers": "in-reply-to", "tag": "tag", "subject": "subject"}
    serial = tag * 10_000
    warm = [
        (
            _reply(conv, serial + i, "headers", numbers[conv.c], prefix),
            Expected(numbers[conv.c], "in-reply-to"),
        )
        for i, conv in enumerate(picked[:warmup])
    ]
    # warm-up: the worker's first messages render its statements and start its parser processes
    warm_right, _ = _run_batch(worker, desk, conn, warm, now)
    timings.clear()
    items = [
        (
            _reply(conv, serial + warmup + i, mode, numbers[conv.c], prefix),
            Expected(numbers[conv.c], how[mode]),
        )
        for i, (conv, mode) in enumerate(zip(picked[warmup:], modes, strict=True))
    ]
    for k in range(new):
        fresh = conversation(9_000_000 + tag * 1_000 + k, 1)
        items.append((fresh.mails[0], Expected(None, "new")))
    rng.shuffle(items)
    right, _ = _run_batch(worker, desk, conn, items, now)
    return timings, right + warm_right, len(items) + len(warm)


def _vacuum(url: str) -> float:
    conn = psycopg2.connect(url)
    conn.autocommit = True
    started = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    conn.close()
    return time.perf_counter() - started


def _scalar(conn: Any, sql: str) -> Any:
    with conn.cursor() as cur:
        cur.execute(sql)
        value = cur.fetchone()[0]
    conn.commit()
    return value


def _mb(size: float) -> str:
    return f"{size / 1e9:.2f} GB" if size >= 1e9 else f"{size / 1e6:.1f} MB"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:6.2f} ms"


def _plan(node: dict[str, Any]) -> str:
    """A plan's node types, nested: Unique(Append(Index Scan using x on message, ...))."""
    text = node["Node Type"]
    if "Index Name" in node:
        text += f" using {node['Index Name']}"
    if "Relation Name" in node:
        text += f" on {node['Relation Name']}"
    children = node.get("Plans", [])
    return text + (f"({', '.join(_plan(child) for child in children)})" if children else "")


def _label(sql: str, names: dict[str, str]) -> str:
    """The Statements name of a pre-rendered statement, else the ORM query's table and condition."""
    if sql in names:
        return names[sql]
    table = sql.split(" FROM ", 1)[1].split()[0].strip('"') if " FROM " in sql else sql.split()[1]
    where = sql.split(" WHERE ", 1)[1] if " WHERE " in sql else ""
    return f"ORM {table} WHERE {where}".replace('"', "")[:90]


def _explain(conn: Any, sql: str, params: list[Any], analyze: bool) -> tuple[str, float | None]:
    with conn.cursor() as cur:
        cur.execute(f"EXPLAIN ({'ANALYZE, ' if analyze else ''}FORMAT JSON) {sql}", params)
        ((plan,),) = cur.fetchall()
    conn.rollback()  # EXPLAIN ANALYZE only ever runs SELECTs here, but nothing is kept anyway
    return _plan(plan[0]["Plan"]), plan[0].get("Execution Time")


def explain(conn: Any, worker: TimedWorker) -> tuple[list[str], list[str]]:
    """EXPLAIN ANALYZE each statement threading ran, with parameters it ran with, and EXPLAIN (without
    ANALYZE: some write) every other SELECT, UPDATE and DELETE the worker ran; returns the Seq Scans."""
    names = {
        (cached[0] if key[0] == "query" else cached): "/".join(map(str, key[1:]))
        for key, cached in worker.sql._sql.items()
        if key[0] in ("query", "execute")
    }
    scans = []
    print("EXPLAIN ANALYZE of each statement the threading stage ran (largest checkpoint, real parameters):")
    for sql, params in worker.timings.statements.items():
        if " FROM " not in sql:
            print(f"  {sql[:60]}: no table")
            continue
        shape, ms = _explain(conn, sql, params, analyze=True)
        flag = "  <-- SEQ SCAN" if "Seq Scan" in shape else ""
        label = _label(sql, names)
        print(f"  {label[:40]:40} {ms or 0:6.3f} ms  {shape}{flag}")
        if flag:
            scans.append(f"{label}: {sql}")
    others = [
        (sql, params)
        for sql, params in worker.timings.others.items()
        if sql.split()[0] in ("SELECT", "UPDATE", "DELETE") and (" FROM " in sql or " WHERE " in sql)
    ]
    with conn.cursor() as cur:
        cur.execute("SELECT relname, reltuples FROM pg_class WHERE relnamespace = 'public'::regnamespace")
        counts = dict(cur.fetchall())
    conn.rollback()
    slow, small = [], []
    for sql, params in others:
        shape, _ = _explain(conn, sql, params, analyze=False)
        scanned = [part.split(" on ")[1].split(")")[0].split(",")[0] for part in shape.split("Seq Scan")[1:]]
        # a Seq Scan of a table of a few configured rows (teams, agents) is the right plan
        if any(counts.get(table, 0) > 1_000 for table in scanned):
            slow.append(f"{_label(sql, names)}: {shape}")
        elif scanned:
            small.append(
                ", ".join(f"{table} ({max(0, int(counts.get(table, 0)))} rows)" for table in scanned)
            )
    print(
        f"the other {len(others)} SELECT/UPDATE/DELETE statements the worker ran (claims, screen, record, "
        f"routing, respond), plain EXPLAIN: {len(slow)} Seq Scan(s) of a big table"
        + (f"; Seq Scans of small tables: {'; '.join(sorted(set(small)))}" if small else "")
    )
    for line in slow:
        print(f"  {line}  <-- SEQ SCAN")
    return scans, slow


def sizes(conn: Any) -> None:
    print(f"database size: {_mb(_scalar(conn, 'SELECT pg_database_size(current_database())'))}")
    with conn.cursor() as cur:
        cur.execute(
            "SELECT c.relname, pg_total_relation_size(c.oid), pg_relation_size(c.oid), c.reltuples::bigint "
            "FROM pg_class c WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace "
            "ORDER BY 2 DESC LIMIT 8"
        )
        tables = cur.fetchall()
        cur.execute(
            "SELECT c.relname, t.relname, pg_relation_size(c.oid) FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid "
            "WHERE c.relnamespace = 'public'::regnamespace ORDER BY 3 DESC LIMIT 10"
        )
        indexes = cur.fetchall()
    conn.commit()
    print("  biggest tables (total with indexes and TOAST / the table alone / rows):")
    for name, total, alone, count in tables:
        print(f"    {name:20} {_mb(total):>9} {_mb(alone):>9} {count:>12,}")
    print("  biggest indexes:")
    for name, table, size in indexes:
        print(f"    {name:36} on {table:18} {_mb(size):>9}")


@dataclass(frozen=True)
class Plan:
    checkpoints: tuple[int, ...]
    threaded: int  # tickets 1..threaded are 5-message conversations, later ones 1-message
    replies: int = 300
    new: int = 50
    warmup: int = 20


def _conversations(start: int, end: int, threaded: int) -> Iterator[Conversation]:
    for c in range(start, end + 1):
        yield conversation(c, 5 if c <= threaded else 1)


def big(server: dict, plan: Plan) -> None:
    with tempfile.TemporaryDirectory(prefix="maildesk-bench-") as folder:
        _big(server, plan, folder)


def _big(server: dict, plan: Plan, folder: str) -> None:
    from maildesk.desk import open_desk

    config = Path(folder) / "maildesk.toml"
    config.write_text(CONFIG.format(root=folder))
    print(f"PostgreSQL {server['bindir']}: fsync=off, synchronous_commit=off, full_page_writes=off (the "
          f"tests' throwaway cluster), default shared_buffers; {os.cpu_count()} cores")  # fmt: skip
    if not check_shape(server, config):
        raise SystemExit("the loader no longer writes what the pipeline writes: update Loader._add")
    name = f"bench_big_{time.monotonic_ns()}"
    url = _create_database(server, name)
    results: list[Measured] = []
    scans: list[str] = []
    slow: list[str] = []
    try:
        _schema(url)
        conn = psycopg2.connect(url)
        settings = {name: _scalar(conn, f"SHOW {name}") for name in ("shared_buffers", "work_mem")}
        print(", ".join(f"{name} {value}" for name, value in settings.items()))
        loader = Loader(conn, load_config(config).desk.ticket_prefix)
        loaded = 0
        for tag, checkpoint in enumerate(plan.checkpoints, start=1):
            started = time.perf_counter()
            written = loader.load(_conversations(loaded + 1, checkpoint, plan.threaded))
            seconds = time.perf_counter() - started
            loaded = checkpoint
            vacuum = _vacuum(url)
            desk = open_desk(load_config(config), url)
            timings, right, total = measure(
                conn, desk, loaded, plan.threaded, tag, plan.replies, plan.new, plan.warmup
            )
            thread = list(timings.thread.values())
            by_how: dict[str, list[float]] = {}
            for spool_id, how in timings.how.items():
                by_how.setdefault(how, []).append(timings.thread[spool_id])
            result = Measured(
                tickets=_scalar(conn, "SELECT count(*) FROM ticket"),
                messages=_scalar(conn, "SELECT count(*) FROM message WHERE direction = 'in'"),
                load_seconds=seconds,
                load_rows=written,
                vacuum_seconds=vacuum,
                size=_scalar(conn, "SELECT pg_database_size(current_database())"),
                thread_p50=percentile(thread, 0.5),
                thread_p99=percentile(thread, 0.99),
                whole_p99=percentile(list(timings.whole.values()), 0.99),
                by_how={how: percentile(values, 0.99) for how, values in sorted(by_how.items())},
                right=right,
                total=total,
                load=os.getloadavg()[0],
            )
            results.append(result)
            report(checkpoint, result)
            if checkpoint == plan.checkpoints[-1]:
                assert isinstance(desk.worker, TimedWorker)
                scans, slow = explain(conn, desk.worker)
            desk.close()
        summary(results, scans, slow)
        sizes(conn)
        conn.close()
        if any(r.right != r.total for r in results):
            raise SystemExit("some messages landed on the wrong ticket (see above)")
    finally:
        _drop_database(server, name)


def report(checkpoint: int, r: Measured) -> None:
    print(
        f"checkpoint {checkpoint:,} loaded tickets ({r.tickets:,} tickets, {r.messages:,} messages in): "
        f"loaded {r.load_rows:,} rows in {r.load_seconds:.1f} s "
        f"({r.load_rows / r.load_seconds:,.0f} rows/s), "
        f"VACUUM ANALYZE {r.vacuum_seconds:.1f} s, database {_mb(r.size)}"
    )
    how = ", ".join(f"{name} {_ms(value).strip()}" for name, value in r.by_how.items())
    verdict = "yes" if r.right == r.total else f"NO ({r.total - r.right} wrong)"
    print(
        f"  threading p50 {_ms(r.thread_p50)}  p99 {_ms(r.thread_p99)}  (p99 by how: {how});  "
        f"whole message p99 {_ms(r.whole_p99)};  "
        f"{r.total} (with the warm-up) on the right ticket: {verdict};  "
        f"load average {r.load:.1f}",
        flush=True,
    )


def summary(results: list[Measured], scans: list[str], slow: list[str]) -> None:
    print()
    print(f"{'tickets':>10} {'messages':>10} {'database':>9} {'thread p50':>11} {'thread p99':>11} "
          f"{'whole p99':>10}  right")  # fmt: skip
    for r in results:
        print(
            f"{r.tickets:>10,} {r.messages:>10,} {_mb(r.size):>9} {_ms(r.thread_p50):>11} "
            f"{_ms(r.thread_p99):>11} {_ms(r.whole_p99):>10}  {r.right}/{r.total}"
        )
    first, last = results[0], results[-1]
    seconds = sum(r.load_seconds for r in results)
    written = sum(r.load_rows for r in results)
    print(
        f"load: {written:,} rows in {seconds:.0f} s ({written / seconds:,.0f} rows/s, "
        f"{last.messages / seconds:,.0f} messages/s) with every index in place, plus "
        f"{sum(r.vacuum_seconds for r in results):.0f} s of VACUUM ANALYZE"
    )
    print(
        f"threading p99 at {last.tickets:,} tickets / at {first.tickets:,}: "
        f"{last.thread_p99 / first.thread_p99:.2f}x;  whole message: {last.whole_p99 / first.whole_p99:.2f}x"
    )
    right = all(r.right == r.total for r in results)
    print(f"every reply on its ticket, every new conversation a new ticket: {'yes' if right else 'NO'}")
    print("Seq Scans in threading: " + ("none" if not scans else "YES: " + "; ".join(scans)))
    print(
        "Seq Scans of a big table elsewhere in the worker: "
        + ("none" if not slow else "YES: " + "; ".join(slow))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--million", action="store_true", help="part 2: up to 1,000,000 tickets")
    parser.add_argument("--tickets", type=int, help="part 2: up to this many tickets")
    parser.add_argument(
        "--quick", action="store_true", help="part 2, small: checkpoints at 1k, 5k, 10k tickets"
    )
    args = parser.parse_args()
    plan = None
    if args.quick:
        plan = Plan(checkpoints=(1_000, 5_000, 10_000), threaded=5_000)
    elif args.million or args.tickets:
        total = args.tickets or 1_000_000
        steps = sorted({n for n in (10_000, 100_000, THREADED) if n < total} | {total})
        plan = Plan(checkpoints=tuple(steps), threaded=min(total, THREADED))
    servers = postgres_server.__wrapped__()  # type: ignore[attr-defined]
    server = next(servers)
    try:
        if plan is not None:
            big(server, plan)
            return
        rates = {k: run(server, args.messages, k) for k in args.workers}
    finally:
        servers.close()
    base = rates[min(rates)]
    for k, rate in rates.items():
        print(f"  {k} worker(s): {rate / base:4.2f}x one worker's throughput")
    print(f"cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
