"""SMTP (and LMTP) intake: an aiosmtpd handler that spools, then answers 250.

Only the desk's own addresses (and their plus forms, `support+anything@`) are accepted at
RCPT; every other recipient gets 550, so maildesk can never be used as a relay. The message
is written to the spool (in a worker thread, so the event loop keeps serving other
sessions) and committed durably before the 250 goes out, as Mailman's LMTP runner does:
an acknowledged message is never lost, and one that was not acknowledged is resent by the
client and deduplicated by the spool.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, Envelope, Session

from maildesk.config import Config
from maildesk.errors import SpoolError
from maildesk.spool import Incoming, Spool, Spooled
from maildesk.tickets.store.db import lent_connection

log = logging.getLogger(__name__)

GROUP_COMMIT_MAX = 100  # messages made durable together at most


class SpoolHandler:
    """aiosmtpd handler: RCPT limited to the desk's addresses, DATA spooled before 250."""

    def __init__(
        self,
        config: Config,
        spool: Spool,
        now: Callable[[], datetime],
        on_spooled: Callable[[int], None] = lambda n: None,
        lmtp: bool = False,
    ) -> None:
        self.config = config
        self.spool = spool
        self.now = now
        self.on_spooled = on_spooled
        self.lmtp = lmtp
        self.active = 0  # DATA transactions in hand, so shutdown can wait for them
        self._queue: asyncio.Queue[tuple[Incoming, asyncio.Future[Spooled]]] | None = None
        self._committer: asyncio.Task[None] | None = None

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if not self.config.is_desk_address(address):
            log.info("refused RCPT %s from %s: not a desk address", address, session.peer)
            return f"550 5.7.1 <{address}>: relaying denied, not a mailbox of this help desk"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        limit = self.config.smtp.max_size
        recipients = len(envelope.rcpt_tos) if self.lmtp else 1
        if len(raw) > limit:
            return self._each(
                f"552 5.3.4 message is {len(raw)} bytes, over the {limit} byte limit", recipients
            )
        trace = self._trace(session, envelope)
        ref = (
            f"{session.peer[0] if session.peer else '?'}:{envelope.mail_from}->{','.join(envelope.rcpt_tos)}"
        )
        self.active += 1
        try:
            spooled = await self._spool(Incoming(trace + raw, "smtp", ref))
        except SpoolError as exc:
            log.error("could not spool mail from %s: %s", session.peer, exc)
            return self._each("451 4.3.0 cannot store the message now, try again later", recipients)
        finally:
            self.active -= 1
        if not spooled.duplicate:
            self.on_spooled(1)
        return self._each(f"250 2.0.0 OK queued as {spooled.id}", recipients)

    async def _spool(self, incoming: Incoming) -> Spooled:
        """Spool one message, sharing a commit with whatever else arrived meanwhile.

        Group commit: while one batch is being made durable, messages from other sessions
        queue up and go into the next transaction together, so twenty busy clients cost a
        few commits (fsyncs) per second rather than one each.
        """
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._committer = asyncio.create_task(self._commit_loop(self._queue))
        done: asyncio.Future[Spooled] = asyncio.get_running_loop().create_future()
        await self._queue.put((incoming, done))
        return await done

    async def _commit_loop(self, queue: asyncio.Queue[tuple[Incoming, asyncio.Future[Spooled]]]) -> None:
        while True:
            batch = [await queue.get()]
            while not queue.empty() and len(batch) < GROUP_COMMIT_MAX:
                batch.append(queue.get_nowait())
            try:
                results = await asyncio.to_thread(self._store, [i for i, _ in batch], self.now())
            except Exception as exc:  # every waiting session hears of it and answers 451
                error = exc if isinstance(exc, SpoolError) else SpoolError(str(exc))
                for _, done in batch:
                    if not done.done():
                        done.set_exception(error)
                continue
            for (_, done), result in zip(batch, results, strict=True):
                if not done.done():
                    done.set_result(result)

    def _store(self, batch: list[Incoming], now: datetime) -> list[Spooled]:
        with lent_connection(self.spool.database):
            return self.spool.accept_many(batch, now)

    @staticmethod
    def _each(status: str, recipients: int) -> str:
        # LMTP answers DATA once per recipient (RFC 2033 4.2)
        return "\r\n".join([status] * max(recipients, 1))

    def _trace(self, session: Session, envelope: Envelope) -> bytes:
        """Return-Path and Received, as RFC 5321 4.4 asks of the server that takes delivery."""
        peer = session.peer[0] if session.peer else "unknown"
        helo = (session.host_name or "unknown").replace("\r", "").replace("\n", "")[:200]
        mail_from = (envelope.mail_from or "").replace("\r", "").replace("\n", "")[:300]
        protocol = "LMTP" if self.lmtp else ("ESMTPS" if session.ssl else "ESMTP")
        received = (
            f"Received: from {helo} ([{peer}])\r\n\tby maildesk with {protocol};\r\n"
            f"\t{format_datetime(self.now())}\r\n"
        )
        return f"Return-Path: <{mail_from}>\r\n{received}".encode("utf-8", "replace")


def make_server(handler: SpoolHandler, config: Config, tls_context: ssl.SSLContext | None = None) -> Any:
    """A protocol factory for loop.create_server: SMTP with SIZE, 8BITMIME, SMTPUTF8 (or LMTP)."""
    protocol = LMTP if config.smtp.lmtp else SMTP
    options: dict[str, Any] = {
        "data_size_limit": config.smtp.max_size,
        "enable_SMTPUTF8": True,
        "hostname": "maildesk",
        "ident": "maildesk ESMTP",
        "timeout": 300,
    }
    if tls_context is None and config.smtp.tls_cert:
        tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls_context.load_cert_chain(config.smtp.tls_cert, config.smtp.tls_key)
    if tls_context is not None:
        options["tls_context"] = tls_context
        options["require_starttls"] = config.smtp.require_tls
    return lambda: protocol(handler, **options)
