"""The outbox: outgoing mail is a database row first and is sent later, with retries.

Stages only ever call `enqueue`, inside the transaction that records what caused the
mail, so a message is queued exactly when its cause is stored, and a crash can neither
lose it nor queue it twice. `send_due` delivers what is due through the configured relay:
`maildir:PATH` (a local Maildir, the embedded default, for a person or an MTA to pick up)
or `smtp://host:port` / `smtps://host:port` (with STARTTLS where offered, a login when
configured, and `outbound.ca_file` to trust a private CA). A failed delivery is retried with
growing delays; after MAX_TRIES, or at once for a permanent (5xx) refusal, the row is parked
as `failed` with the error (and an event on its ticket), never deleted.

Delivery is at least once: sent rows are marked in one UPDATE per MARK_EVERY messages, so a
crash after the relay's 250 and before that update sends up to MARK_EVERY messages again on
the next pass, with the same Message-ID (so a client that deduplicates shows it once).
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import socket
import ssl
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8
from pathlib import Path
from urllib.parse import urlsplit

from peewee import Database

from maildesk.clock import naive_utc
from maildesk.config import Config
from maildesk.tickets.store.fast import Statements
from maildesk.tickets.store.models import Event, OutboundMail, Ticket

log = logging.getLogger(__name__)

QUEUED, SENT, FAILED = "queued", "sent", "failed"
MAX_TRIES = 8
RETRY_DELAYS = (60, 300, 900, 1800, 3600, 7200, 14400)  # seconds after the 1st, 2nd, ... failure
SMTP_TIMEOUT = 60.0
MARK_EVERY = 100  # sent rows marked per UPDATE and commit; a crash may send at most these again


@dataclass(frozen=True)
class Delivery:
    """What one `send_due` pass did."""

    sent: int = 0
    retrying: int = 0
    failed: int = 0


def enqueue(
    message: EmailMessage,
    *,
    recipients: Sequence[str],
    sender: str,
    kind: str,
    automatic: bool,
    now: datetime,
    ticket: Ticket | int | None = None,
    sql: Statements | None = None,
) -> OutboundMail:
    """Queue a finished message for sending; committed with the caller's transaction.

    `sql` (the pipeline's pre-rendered statements) makes the INSERT several times cheaper.
    """
    # read as stored: parsing the header into a MessageIDHeader costs more than the rest
    message_id = next(
        ("".join(str(v).splitlines()) for k, v in message.raw_items() if k.lower() == "message-id"), ""
    )
    message_id = message_id.strip().strip("<>")
    if not message_id:
        raise ValueError("an outgoing message needs a Message-ID")
    # CRLF line ends, headers folded: as it goes on the wire; UTF-8 headers only where an
    # address needs them (RFC 6532), since the relay must then offer SMTPUTF8
    wide = not all(a.isascii() for a in [sender, *recipients])
    values = {
        "ticket": ticket,
        "message_id": message_id,
        "recipients": json.dumps(list(recipients)),
        "recipient": recipients[0].lower() if recipients else "",
        "kind": kind,
        "automatic": automatic,
        "sender": sender,
        "data": message.as_bytes(policy=SMTPUTF8 if wide else SMTP),
        "state": QUEUED,
        "next_try_at": naive_utc(now),
        "created_at": naive_utc(now),
    }
    if sql is None:
        return OutboundMail.create(**values)
    row = OutboundMail(**values)
    row.id = sql.insert(OutboundMail, values)
    row._dirty.clear()  # as stored
    return row


def automatic_sent_to(address: str, since: datetime) -> int:
    """How many automatic messages went (or are queued) to `address` since `since`."""
    return int(
        OutboundMail.select()
        .where(
            (OutboundMail.recipient == address.lower())
            & (OutboundMail.automatic == True)  # noqa: E712 - peewee builds SQL from ==
            & (OutboundMail.created_at >= naive_utc(since))
        )
        .count()
    )


def send_due(config: Config, database: Database, now: datetime, limit: int = 200) -> Delivery:
    """Send every queued message whose time has come; one connection to the relay per pass.

    A refused message is retried or parked on its own; when the relay itself cannot be
    reached or will not let us in (refused connection, TLS, a 535 login), every message still
    due in this pass waits for its next try: that is the desk's problem, not the messages'.
    """
    when = naive_utc(now)
    unmarked = _UNMARKED.setdefault(database, {})
    with database.connection_context():
        if unmarked:
            # sent in an earlier pass whose mark the database did not take (it went away):
            # marked before anything else goes, so they are not sent a second time
            _mark(database, unmarked, when)
        due = list(
            OutboundMail.select(
                OutboundMail.id,
                OutboundMail.ticket,
                OutboundMail.message_id,
                OutboundMail.kind,
                OutboundMail.sender,
                OutboundMail.recipients,
                OutboundMail.data,
                OutboundMail.tries,
            )
            .where((OutboundMail.state == QUEUED) & (OutboundMail.next_try_at <= when))
            .order_by(OutboundMail.id)
            .limit(limit)
        )
        if not due:
            return Delivery()
        sent = retrying = failed = 0
        delivered: list[tuple[int, str]] = []  # (id, maildir path) sent but not yet marked

        def mark_delivered() -> None:
            unmarked.update(delivered)
            delivered.clear()
            _mark(database, unmarked, when)

        with _Relay(config) as relay:
            try:
                for i, row in enumerate(due):
                    recipients = json.loads(row.recipients)
                    try:
                        path = relay.deliver(row.sender, recipients, bytes(row.data or b""))
                    except _Unavailable as exc:
                        log.error("outbox: %s; %d message(s) wait for their next try", exc, len(due) - i)
                        for waiting in due[i:]:
                            if _refused(waiting, str(exc), False, when, level=logging.INFO):
                                failed += 1
                            else:
                                retrying += 1
                        break
                    except _Refused as exc:
                        if _refused(row, str(exc), exc.permanent, when):
                            failed += 1
                        else:
                            retrying += 1
                    else:
                        delivered.append((row.id, path))
                        sent += 1
                        log.info(
                            "outbox %s sent (%s) to %s", row.id, row.kind, ", ".join(recipients),
                            extra={"message_id": row.message_id, "stage": "outbox"},
                        )  # fmt: skip
                        if len(delivered) >= MARK_EVERY:
                            mark_delivered()
            finally:
                if delivered:
                    mark_delivered()
        return Delivery(sent, retrying, failed)


# Rows the relay took whose "sent" mark has not been committed yet, per database. Marking many
# rows in one UPDATE is what makes the outbox fast; if the database goes away before that
# commit, the ids wait here and are marked first when it is back, so a database outage never
# sends a message twice. Only a crash of this process in that window can (the same Message-ID).
_UNMARKED: weakref.WeakKeyDictionary[Database, dict[int, str]] = weakref.WeakKeyDictionary()


def _mark(database: Database, unmarked: dict[int, str], when: datetime) -> None:
    """Mark the delivered rows sent, in one commit; on failure they stay in `unmarked`."""
    with database.atomic():
        OutboundMail.update(state=SENT, sent_at=when, last_error="", tries=OutboundMail.tries + 1).where(
            OutboundMail.id.in_(list(unmarked)) & (OutboundMail.state == QUEUED)
        ).execute()
        for row_id, path in unmarked.items():
            if path:
                OutboundMail.update(path=path).where(OutboundMail.id == row_id).execute()
    unmarked.clear()


def _refused(
    row: OutboundMail, error: str, permanent: bool, now: datetime, level: int = logging.WARNING
) -> bool:
    """Count a failed try on `row`: retry later, or park it (True) and say so on its ticket."""
    row.tries += 1
    row.last_error = error[:2000]
    extra = {"message_id": row.message_id, "stage": "outbox"}
    with row._meta.database.atomic():
        if permanent or row.tries >= MAX_TRIES:
            row.state = FAILED
            row.save(only=[OutboundMail.tries, OutboundMail.last_error, OutboundMail.state])
            if row.ticket_id is not None:
                detail = f"{row.kind} to {', '.join(json.loads(row.recipients))}: {error}"
                Event.create(ticket=row.ticket_id, at=now, kind="delivery_failed", detail=detail[:4000],
                             actor="maildesk")  # fmt: skip
            log.error("outbox %s to %s failed for good: %s", row.id, row.recipients, error, extra=extra)
            return True
        delay = RETRY_DELAYS[min(row.tries - 1, len(RETRY_DELAYS) - 1)]
        row.next_try_at = now + timedelta(seconds=delay)
        row.save(only=[OutboundMail.tries, OutboundMail.last_error, OutboundMail.next_try_at])
    log.log(level, "outbox %s: %s; retry in %d s", row.id, error, delay, extra=extra)
    return False


class _Refused(Exception):
    """The relay would not take this message: 4xx (try again later) or 5xx (`permanent`)."""

    def __init__(self, message: str, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent


class _Unavailable(Exception):
    """No session with the relay: cannot connect, TLS fails, or the login is refused."""


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = (
        exc.smtp_error.decode("utf-8", "replace")
        if isinstance(exc.smtp_error, bytes)
        else str(exc.smtp_error)
    )
    return f"{exc.smtp_code} {text}"


class _Relay:
    """One delivery session: a Maildir, or one SMTP connection opened on first use."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.url = config.outbound.relay
        self.smtp: smtplib.SMTP | None = None
        self.folder: Path | None = None

    def __enter__(self) -> _Relay:
        return self

    def __exit__(self, *_: object) -> None:
        if self.smtp is not None:
            try:
                self.smtp.quit()
            except (smtplib.SMTPException, OSError):
                self.smtp.close()

    def deliver(self, sender: str, recipients: list[str], data: bytes) -> str:
        if self.url.startswith("maildir:"):
            return self._maildir(data)
        self._smtp_send(sender, recipients, data)
        return ""

    def _maildir(self, data: bytes) -> str:
        folder = self.folder
        try:
            if folder is None:
                folder = Path(self.url[len("maildir:") :])
                if not folder.is_absolute() and self.config.source is not None:
                    folder = self.config.source.parent / folder
                for sub in ("tmp", "new", "cur"):
                    (folder / sub).mkdir(parents=True, exist_ok=True)
                self.folder = folder
            name = f"{time.time_ns()}.{os.getpid()}.{socket.gethostname()}"
            tmp = folder / "tmp" / name
            # Maildir delivery: write and fsync in tmp/, then rename into new/ so a reader
            # never sees half a message
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            final = folder / "new" / name
            os.rename(tmp, final)
        except OSError as exc:
            raise _Unavailable(f"cannot write to {folder}: {exc.strerror}") from exc
        return str(final)

    def _smtp_send(self, sender: str, recipients: list[str], data: bytes) -> None:
        if self.smtp is None:
            self.smtp = self._connect()
        try:
            # internationalised addresses need SMTPUTF8 (RFC 6531), which the relay must offer
            options = ["SMTPUTF8"] if not all(a.isascii() for a in [sender, *recipients]) else []
            refused = self.smtp.sendmail(sender, recipients, data, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            refusals = "; ".join(
                f"{address}: {code} {text.decode('utf-8', 'replace')}"
                for address, (code, text) in exc.recipients.items()
            )
            raise _Refused(f"recipients refused: {refusals}", all(c >= 500 for c in codes)) from exc
        except smtplib.SMTPResponseException as exc:
            self._drop()
            raise _Refused(_reply(exc), exc.smtp_code >= 500) from exc
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            raise _Refused(f"relay {self.url}: {exc}", permanent=False) from exc
        if refused:
            log.warning("relay refused some recipients: %s", refused)

    def _connect(self) -> smtplib.SMTP:
        parts = urlsplit(self.url)
        host, secure = parts.hostname or "localhost", parts.scheme == "smtps"
        port = parts.port or (465 if secure else 25)
        smtp: smtplib.SMTP | None = None
        try:
            if secure:
                smtp = smtplib.SMTP_SSL(host, port, timeout=SMTP_TIMEOUT, context=self._tls())
            else:
                smtp = smtplib.SMTP(host, port, timeout=SMTP_TIMEOUT)
                smtp.ehlo()
                if smtp.has_extn("starttls"):
                    smtp.starttls(context=self._tls())
                    smtp.ehlo()
            if self.config.outbound.username:
                # a refused login (535) is retried like a refused connection: a wrong password is
                # fixed in the config, and the mail must still be there when it is
                smtp.login(self.config.outbound.username, self.config.outbound.password.reveal())
        except smtplib.SMTPResponseException as exc:
            if smtp is not None:
                smtp.close()
            raise _Unavailable(f"relay {self.url}: {_reply(exc)}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            if smtp is not None:
                smtp.close()
            raise _Unavailable(f"relay {self.url}: {exc}") from exc
        return smtp

    def _tls(self) -> ssl.SSLContext:
        # made only when TLS is used: loading the system's CA certificates takes some 20 ms
        return ssl.create_default_context(cafile=self.config.outbound.ca_file or None)

    def _drop(self) -> None:
        if self.smtp is not None:
            self.smtp.close()
            self.smtp = None
