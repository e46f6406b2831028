"""Row claims and advisory locks for several workers on one PostgreSQL (DESIGN.md, Scale).

On SQLite there is one writer at a time anyway (BEGIN IMMEDIATE), so every function here
does nothing there. On PostgreSQL:
- workers claim spooled mail with `FOR UPDATE SKIP LOCKED` and a lease (`claimed_until`): a
  worker that dies has its claim expire, and another takes the message;
- processing a message first locks its spool row and checks it is still unprocessed, so a
  message whose lease ran out while a slow worker still had it is done once;
- threading takes a transaction-scoped advisory lock on the conversation's root Message-ID
  (and on sender + subject for mail without headers), so two messages of one conversation
  processed at once by two workers cannot open two tickets;
- ticket numbers are handed out under an advisory lock, so two new tickets never race for one.
Each lock is held to the end of the message's own transaction; a transaction takes its
conversation locks in sorted order and the ticket-number lock after them, so no two can wait
on each other in a cycle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from datetime import datetime, timedelta

from peewee import Database, PostgresqlDatabase

from maildesk.tickets.store.models import InboundMail

_TICKET_NUMBERS = 7_011_042  # the advisory lock key for handing out ticket numbers
CLOCK_LOCK = 7_011_043  # the advisory lock key the one active SLA clock holds


def is_postgres(database: Database) -> bool:
    return isinstance(database, PostgresqlDatabase)


def _key(text: str) -> int:
    # a signed 64-bit key from the text, stable across processes (hash() is salted per process)
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "big", signed=True)


def claim(
    database: Database, limit: int, now: datetime, lease: timedelta, mine: Collection[int] = ()
) -> list[int]:
    """Take up to `limit` unclaimed (or expired) spooled messages for this worker; their ids.

    `mine` are messages this worker claimed before and has not finished (a pass cut short):
    they are taken again whatever their lease says.
    """
    table = InboundMail._meta.table_name
    sql = (
        f"UPDATE {table} SET claimed_until = %s WHERE id IN ("
        f" SELECT id FROM {table} WHERE state = 'received'"
        f" AND (claimed_until IS NULL OR claimed_until < %s OR id = ANY(%s))"
        f" ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id"
    )
    with database.atomic():
        rows = database.execute_sql(sql, (now + lease, now, sorted(mine), limit)).fetchall()
    return sorted(int(row[0]) for row in rows)


def still_unprocessed(database: Database, spool_id: int) -> bool:
    """Lock the spool row for this transaction; False when another worker has done it already."""
    if not is_postgres(database):
        return True
    table = InboundMail._meta.table_name
    row = database.execute_sql(f"SELECT state FROM {table} WHERE id = %s FOR UPDATE", (spool_id,)).fetchone()
    return row is not None and row[0] == "received"


def lock_conversation(database: Database, key: str) -> None:
    """Serialise the threading of one conversation until this transaction ends."""
    if is_postgres(database) and key:
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_key(key),))


def lock_ticket_numbers(database: Database) -> None:
    if is_postgres(database):
        database.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_TICKET_NUMBERS,))


def try_clock_lock(database: Database) -> bool:
    """Become the one active clock (a session lock, freed when the connection ends)."""
    if not is_postgres(database):
        return True
    row = database.execute_sql("SELECT pg_try_advisory_lock(%s)", (CLOCK_LOCK,)).fetchone()
    return bool(row and row[0])
