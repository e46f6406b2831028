"""The one ordered list of stages a spooled message goes through, and the worker that runs it.

As in Mailman's chains, every stage is a small function taking the `MailContext` and
returning a `Verdict`; the order lives here and nowhere else. A stage that raises sends
the message to quarantine with the exception as its reason (Mailman's "shunt") and the
worker goes on with the next message: one bad message never stops intake.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from peewee import Database

from maildesk.clock import naive_utc
from maildesk.config import Config
from maildesk.errors import ParseError, SpoolError
from maildesk.spool import Spool
from maildesk.tickets.store.db import connection_lost
from maildesk.tickets.store.locks import claim, is_postgres, still_unprocessed

if TYPE_CHECKING:
    from maildesk.agents.identity import AgentMail, VendorMail
    from maildesk.classifier.handle import CheckedSpamModel
    from maildesk.classifier.text import PlainTextModel, TextModel
    from maildesk.parse.message import Address, ParsedMail
    from maildesk.screen.bounce import Bounce
    from maildesk.threader import ThreadDecision
    from maildesk.tickets.store.fast import Statements
    from maildesk.tickets.store.models import Contact, InboundMail, Ticket

log = logging.getLogger(__name__)


class Action(Enum):
    CONTINUE = "continue"  # go on to the next stage
    RECORD_ONLY = "record-only"  # store on its ticket, never answer (auto-reply, bounce)
    QUARANTINE = "quarantine"  # park for a person (spam, unparseable)
    STOP = "stop"  # nothing more to do (a duplicate)


@dataclass(frozen=True)
class Verdict:
    """What a stage decided, with reasons a person can read."""

    action: Action = Action.CONTINUE
    kind: str = "normal"  # normal, spam, auto-reply, bounce, loop, duplicate, unparseable
    reasons: tuple[str, ...] = ()
    spam_score: float | None = None
    # False for automatic mail that only makes sense on an existing ticket (an out-of-office
    # answer, a bounce): when it threads nowhere it is quarantined rather than opening a ticket
    may_open: bool = True


CONTINUE: Final = Verdict()


@dataclass
class MailContext:
    """One message on its way through the stages; each stage fills in its part."""

    spool_id: int
    raw: bytes
    source: str
    now: datetime  # aware UTC; the command's clock, never datetime.now()
    config: Config
    storage: Path
    sql: Statements  # pre-rendered hot statements, which the thread and record stages run
    parsed: ParsedMail | None = None
    preparsed: ParsedMail | ParseError | None = None  # parsed ahead, in the worker's pool
    verdict: Verdict = CONTINUE
    thread: ThreadDecision | None = None
    ticket: Ticket | None = None
    message_pk: int | None = None  # the stored Message's id
    new_ticket: bool = False
    org_ids: dict[str, int] = field(default_factory=dict)  # organisation ids by name
    contacts: dict[str, Contact] | None = None  # the worker's contact cache
    bounce: Bounce | None = None  # what the bounce rule read from a delivery report
    spam_score: float | None = None  # the spam model's probability, when it ran
    spam_model: CheckedSpamModel | None = None  # the worker's loaded model, or None when it is off
    # the issue-type model, or None: tickets stay unclassified
    issue_model: TextModel | PlainTextModel | None = None
    team_model: TextModel | PlainTextModel | None = None
    request_model: TextModel | PlainTextModel | None = None  # trained from agents' #request corrections
    # a person released it from quarantine: the rules that parked it do not park it again
    released: bool = False
    agent_mail: AgentMail | None = None  # an agent's mail (or mail in an agent's name), and whether trusted
    vendor_mail: VendorMail | None = None  # mail from the vendor's domains
    confirmed: bool = False  # the customer confirmed a resolved ticket, which the record stage closed
    forwarded_by: Address | None = None  # the colleague who forwarded the customer's mail to the desk
    forward_note: str = ""  # what they wrote above it

    @property
    def log_extra(self) -> dict[str, object]:
        return {
            "spool_id": self.spool_id,
            "message_id": self.parsed.message_id if self.parsed else "",
            "ticket": self.ticket_ref,
        }

    @property
    def ticket_ref(self) -> str:
        if self.ticket is None:
            return ""
        return f"{self.config.desk.ticket_prefix}-{self.ticket.number}"


Stage = Callable[[MailContext], Verdict]


def _stages() -> tuple[Stage, ...]:
    # imported here so that `maildesk --help` does not pay for scikit-learn and mail-parser
    from maildesk import agents, parse, respond, routing, screen, threader, tickets
    from maildesk.agents import forwarding

    return (
        parse.run, screen.run, agents.identify_stage, forwarding.run, threader.run, tickets.record,
        routing.run, agents.run, respond.run,
    )  # fmt: skip


@dataclass
class Outcome:
    """What became of one message, for summaries and logs."""

    spool_id: int
    status: str  # new_ticket, reply, duplicate, quarantined, spam, auto-reply, bounce
    ticket_ref: str = ""
    reason: str = ""


@dataclass
class Tally:
    """What became of a run's messages: `ingest --json`, exactly the keys DESIGN.md promises."""

    received: int = 0
    new_tickets: int = 0
    replies: int = 0
    duplicates: int = 0
    spam: int = 0
    auto_replies: int = 0
    bounces: int = 0
    quarantined: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, float | int]:
        data = asdict(self)
        data["seconds"] = round(self.seconds, 3)
        return data

    def add(self, outcome: Outcome) -> None:
        field_name = {
            "new_ticket": "new_tickets",
            "reply": "replies",
            "duplicate": "duplicates",
            "spam": "spam",
            "auto-reply": "auto_replies",
            "bounce": "bounces",
            "quarantined": "quarantined",
        }.get(outcome.status)
        if field_name:
            setattr(self, field_name, getattr(self, field_name) + 1)


class Worker:
    """Runs spooled mail through the stages, one savepoint per message, one commit per batch."""

    def __init__(
        self,
        config: Config,
        database: Database,
        spool: Spool,
        stages: tuple[Stage, ...] | None = None,
        processes: int | None = None,
    ) -> None:
        from maildesk.parse.pool import ParsePool
        from maildesk.tickets.directory import organization_ids
        from maildesk.tickets.store.fast import Statements

        self.config = config
        self.database = database
        self.spool = spool
        self.stages = stages or _stages()
        self.parser = ParsePool(config.limits, processes)
        self.org_ids = organization_ids()
        self.sql = Statements(database)
        # PostgreSQL: messages this worker claimed and has not finished; after a failed pass
        # (the database went away) it takes them up again at once rather than after the lease
        self._held: set[int] = set()
        self.contacts: dict[str, Contact] = {}
        self._spam_model: CheckedSpamModel | None = None
        self._spam_loaded = False
        self._text_models: dict[str, TextModel | PlainTextModel | None] = {}

    def text_model(self, kind: str) -> TextModel | PlainTextModel | None:
        """The configured issue-type or team model, loaded on first use (None when off or absent)."""
        if kind not in self._text_models:
            from maildesk.classifier.loading import load_text_model

            self._text_models[kind] = load_text_model(self.config, kind)
        return self._text_models[kind]

    @property
    def spam_model(self) -> CheckedSpamModel | None:
        """The configured spam model, loaded on first use; a broken artifact raises ModelError.

        Loading happens before any message is touched (process_pending asks first), so a
        tampered or incompatible model stops the worker with a clear error instead of
        quarantining every message one by one; the mail waits in the spool.
        """
        if not self._spam_loaded:
            from maildesk.screen.spam import load_configured_model

            self._spam_model = load_configured_model(self.config)
            self._spam_loaded = True
            if self._spam_model is not None and self._spam_model.folder is not None:
                self.parser.spam_folder = str(self._spam_model.folder)
        return self._spam_model

    def close(self) -> None:
        self.parser.close()

    def process_pending(
        self,
        now: datetime,
        batch_size: int = 200,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> int:
        """Process everything spooled and not yet done (also what a crash left behind).

        Returns how many messages were taken; `on_outcome` hears what became of each.
        """
        report = _Reporter(on_outcome)
        # a broken model stops here, before any message is taken
        _ = self.spam_model, self.text_model("issue-type"), self.text_model("team")

        def batches() -> Iterator[list[tuple[InboundMail, bytes]]]:
            after = 0
            # what an earlier pass claimed and did not finish is taken up with the first claim;
            # later claims must not take back the batch that is still being processed
            retake = set(self._held)
            while rows := self._next_rows(batch_size, after, now, retake):
                after = rows[-1].id
                retake = set()
                raws = self.spool.read_many(rows)
                for row in rows:
                    if row.sha256 not in raws:
                        report(self._park(row, "the spool has lost this message's raw bytes", now))
                        self._held.discard(row.id)
                yield [(row, raws[row.sha256]) for row in rows if row.sha256 in raws]

        self.process_batches(batches(), now, report)
        return report.count

    def process_batches(
        self,
        batches: Iterable[list[tuple[InboundMail, bytes]]],
        now: datetime,
        on_outcome: Callable[[Outcome], None] | None = None,
    ) -> None:
        """Process batches of spooled messages in order: each batch is parsed in the pool while
        the one before it is stored, and each is committed once."""
        waiting: tuple[list[tuple[InboundMail, bytes]], Callable[[], list[Any]]] | None = None
        for batch in _with_end(batches):
            upcoming = (batch, self.parser.submit([raw for _, raw in batch], now)) if batch else None
            if waiting is not None:
                stored, results = waiting
                parsed = results()
                # SQLite: one commit per batch. PostgreSQL: one per message, so the advisory
                # locks each takes are held only as long as that message needs them
                shared = contextlib.nullcontext() if is_postgres(self.database) else self.database.atomic()
                with shared:
                    for (row, raw), result in zip(stored, parsed, strict=True):
                        outcome = self.process_one(row, now, raw=raw, parsed=result)
                        self._held.discard(row.id)
                        if on_outcome:
                            on_outcome(outcome)
            waiting = upcoming

    def _next_rows(self, limit: int, after: int, now: datetime, retake: set[int]) -> list[InboundMail]:
        """The next spooled messages: in order on SQLite; claimed with a lease on PostgreSQL."""
        if not is_postgres(self.database):
            return self.spool.pending(limit=limit, after_id=after)
        from maildesk.tickets.store.models import InboundMail

        # a lease is about real time (a worker that died), not the command's clock (--now)
        ids = claim(self.database, limit, naive_utc(datetime.now(UTC)), self.config.workers.lease, retake)
        self._held.update(ids)
        return (
            list(InboundMail.select().where(InboundMail.id.in_(ids)).order_by(InboundMail.id)) if ids else []
        )

    def _park(self, row: InboundMail, reason: str, now: datetime) -> Outcome:
        self.spool.quarantine(row, reason, now)
        log.warning("quarantined spool %s: %s", row.id, reason, extra={"spool_id": row.id})
        return Outcome(row.id, "quarantined", reason=reason)

    def process_one(
        self,
        row: InboundMail,
        now: datetime,
        raw: bytes | None = None,
        parsed: ParsedMail | ParseError | None = None,
        released: bool = False,
    ) -> Outcome:
        started = time.perf_counter()
        if raw is None:
            try:
                raw = self.spool.read(row)
            except SpoolError as exc:
                return self._park(row, str(exc), now)
        ctx = MailContext(
            spool_id=row.id,
            raw=raw,
            source=row.source,
            now=now,
            config=self.config,
            storage=self.config.storage.path,
            preparsed=parsed,
            released=released,
            org_ids=self.org_ids,
            contacts=self.contacts,
            spam_model=self.spam_model,
            issue_model=self.text_model("issue-type"),
            team_model=self.text_model("team"),
            request_model=self.text_model("request-type"),
            sql=self.sql,
        )
        stage_name = ""
        try:
            try:
                with self.database.atomic():
                    if not still_unprocessed(self.database, row.id):
                        # PostgreSQL: another worker took this message over when our lease ran out
                        return Outcome(row.id, "done-elsewhere")
                    for stage in self.stages:
                        stage_name = f"{stage.__module__}.{stage.__name__}"
                        verdict = stage(ctx)
                        if verdict is not CONTINUE:
                            ctx.verdict = verdict
                        if verdict.action in (Action.QUARANTINE, Action.STOP):
                            break
                    if ctx.verdict.action is Action.QUARANTINE:
                        raise _Quarantine(ctx.verdict)
                    self.spool.mark_processed(row, now)
            except BaseException:
                # the savepoint rolled back: contacts created in it are gone, so is their cache
                self.contacts.clear()
                raise
        except _Quarantine as parked:
            reason = "; ".join(parked.verdict.reasons) or parked.verdict.kind
            self.spool.quarantine(row, f"{parked.verdict.kind}: {reason}", now)
            status = "spam" if parked.verdict.kind == "spam" else "quarantined"
            log.info("quarantined spool %s: %s", row.id, reason, extra=ctx.log_extra)
            return Outcome(row.id, status, reason=reason)
        except ParseError as exc:
            return self._park(row, f"unparseable: {exc}", now)
        except Exception as exc:
            if connection_lost(self.database):
                # the database went away, not the message's fault: it stays spooled, unharmed
                raise
            reason = f"{stage_name} failed: {type(exc).__name__}: {exc}"[:2000]
            self.spool.quarantine(row, reason, now)
            log.exception("quarantined spool %s: %s", row.id, reason, extra=ctx.log_extra)
            return Outcome(row.id, "quarantined", reason=reason)
        status = _status(ctx)
        log.info(
            "spool %s -> %s %s (%.1f ms)",
            row.id,
            status,
            ctx.ticket_ref,
            (time.perf_counter() - started) * 1000,
            extra=ctx.log_extra,
        )
        return Outcome(row.id, status, ctx.ticket_ref)


class _Reporter:
    """Counts outcomes and passes them on."""

    def __init__(self, listener: Callable[[Outcome], None] | None) -> None:
        self.listener = listener
        self.count = 0

    def __call__(self, outcome: Outcome) -> None:
        self.count += 1
        if self.listener:
            self.listener(outcome)


def _with_end(
    batches: Iterable[list[tuple[InboundMail, bytes]]],
) -> Iterator[list[tuple[InboundMail, bytes]]]:
    # an empty batch at the end flushes the last one waiting in the pool
    yield from (batch for batch in batches if batch)
    yield []


class _Quarantine(Exception):
    """Raised inside the savepoint so a quarantined message leaves no half-written ticket."""

    def __init__(self, verdict: Verdict) -> None:
        super().__init__(verdict.kind)
        self.verdict = verdict


def _status(ctx: MailContext) -> str:
    if ctx.verdict.kind in ("duplicate", "auto-reply", "bounce"):
        return ctx.verdict.kind
    return "new_ticket" if ctx.new_ticket else "reply"
