"""The assembled application: config, database, spool and worker, built once and passed down.

Commands and servers get a `Desk` from `open_desk` instead of reaching for globals.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from itertools import islice

from peewee import Database

from maildesk.clock import naive_utc
from maildesk.config import Config
from maildesk.errors import NotFound
from maildesk.pipeline import Outcome, Tally, Worker
from maildesk.spool import QUARANTINED, Incoming, Spool
from maildesk.tickets.directory import sync_directory
from maildesk.tickets.store.db import close_database, open_database
from maildesk.tickets.store.models import InboundMail, Label

log = logging.getLogger(__name__)

SPOOL_BATCH = 200


class Desk:
    def __init__(self, config: Config, database: Database) -> None:
        self.config = config
        self.database = database
        self.spool = Spool(database)
        self.worker = Worker(config, database, self.spool)

    def ingest(
        self,
        sources: Iterable[Incoming],
        now: datetime,
        progress: Callable[[int], None] | None = None,
    ) -> Tally:
        """Spool the messages batch by batch, each durably before it is processed.

        A run first finishes what an earlier, crashed run left spooled and unprocessed,
        so nothing is lost, and the spool's deduplication means nothing is processed twice.
        """
        started = time.perf_counter()
        summary = Tally()

        def count(outcome: Outcome) -> None:
            summary.add(outcome)
            if progress:
                progress(1)

        self.worker.process_pending(now, on_outcome=count)  # what a crashed run left spooled
        iterator = iter(sources)

        def spooled() -> Iterator[list[tuple[InboundMail, bytes]]]:
            # each batch is durably spooled before it is handed on, and parsed while the
            # next one is read and spooled
            while batch := list(islice(iterator, SPOOL_BATCH)):
                results = self.spool.accept_many(batch, now)
                summary.received += len(batch)
                summary.duplicates += sum(1 for s in results if s.duplicate)
                if summary.received == SPOOL_BATCH:
                    self.worker.parser.warm()  # a big import: start the parser processes now
                yield [
                    (InboundMail(id=s.id, sha256=s.sha256, source=item.source), item.raw)
                    for item, s in zip(batch, results, strict=True)
                    if not s.duplicate
                ]

        self.worker.process_batches(spooled(), now, count)
        summary.seconds = time.perf_counter() - started
        return summary

    def close(self) -> None:
        self.worker.close()
        close_database(self.database)

    def quarantined(self) -> list[InboundMail]:
        return list(InboundMail.select().where(InboundMail.state == QUARANTINED).order_by(InboundMail.id))

    def release(self, spool_id: int, now: datetime) -> Outcome:
        """Put one quarantined message back through the pipeline and say what became of it."""
        row = InboundMail.get_or_none(InboundMail.id == spool_id)
        if row is None or row.state != QUARANTINED:
            raise NotFound(f"no quarantined message with id {spool_id}")
        was_spam = row.reason.startswith("spam:")
        with self.database.atomic():
            self.spool.release(row)
            row = InboundMail.get_by_id(spool_id)
            if was_spam:
                # a person says it is not spam: kept as a label for `maildesk train spam`
                Label.create(
                    inbound=row, kind="spam", value="ham", source="release", created_at=naive_utc(now)
                )
            return self.worker.process_one(row, now, released=True)


def open_desk(config: Config, database_url: str | None = None, *, sync: bool = True) -> Desk:
    """The desk on its database; `sync=False` leaves the directory as it is (read-only commands)."""
    database = open_database(database_url or config.database_url, pool_size=config.database_pool)
    if sync:
        with database.atomic():
            sync_directory(config)
    return Desk(config, database)


def utcnow() -> datetime:
    """The real clock, for the CLI to use when no --now is given (stages use ctx.now)."""
    return datetime.now(UTC)
