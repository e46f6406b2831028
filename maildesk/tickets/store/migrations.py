"""Explicit, numbered schema migrations; each runs once, in order, in a transaction.

A new migration is appended to MIGRATIONS and never edited afterwards, so a database
created by any release can be brought up to date by `migrate`.

They run against a live database (`maildesk db upgrade` while workers run, DESIGN.md
Scale): on PostgreSQL one process migrates at a time (an advisory lock; the others wait,
then find nothing left to do), columns are added nullable or with a default (no table
rewrite), and indexes are built CONCURRENTLY, outside a transaction, so writers are not
blocked while a big table is indexed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

from peewee import Database, SqliteDatabase

from maildesk.tickets.store import models

Migration = tuple[int, str, Callable[[Database], None]]

_MIGRATION_LOCK = 7_011_044  # the advisory lock key held while a process migrates


def _initial(database: Database) -> None:
    database.create_tables(models.ALL_MODELS, safe=True)


def _add_missing_columns(database: Database, model: type[models.BaseModel], names: tuple[str, ...]) -> None:
    """Add the model's columns a database lacks: one created by a later release has them already
    (migration 1 builds the current models), one created before gets them added."""
    from playhouse.migrate import PostgresqlMigrator, SqliteMigrator, migrate

    table = model._meta.table_name
    present = {column.name for column in database.get_columns(table)}
    migrator = (
        SqliteMigrator(database) if isinstance(database, SqliteDatabase) else PostgresqlMigrator(database)
    )
    fields = [model._meta.fields[name] for name in names]
    migrate(*(migrator.add_column(table, f.column_name, f) for f in fields if f.column_name not in present))


def _outbox_and_spam_score(database: Database) -> None:
    _add_missing_columns(database, models.InboundMail, ("spam_score",))
    _add_missing_columns(database, models.OutboundMail, ("recipient", "kind", "automatic", "sender", "data"))
    database.execute_sql("CREATE INDEX IF NOT EXISTS outbound_mail_recipient ON outbound_mail (recipient)")
    database.execute_sql("CREATE INDEX IF NOT EXISTS message_from_addr ON message (from_addr)")


def _tier_and_settings(database: Database) -> None:
    database.create_tables([models.Setting], safe=True)
    _add_missing_columns(database, models.Ticket, ("tier",))


def _sla_clock(database: Database) -> None:
    table = models.Ticket._meta.table_name
    _add_missing_columns(database, models.Ticket, ("sla_next_at", "first_response_due", "waiting_since"))
    database.execute_sql(f"CREATE INDEX IF NOT EXISTS ticket_sla_next_at ON {table} (sla_next_at)")
    database.create_tables([models.SlaMark], safe=True)
    # tickets open before the clock existed are looked at on its first pass
    models.Ticket.update(sla_next_at=models.Ticket.created_at).where(
        models.Ticket.status.in_(("new", "open", "pending", "resolved")) & models.Ticket.sla_next_at.is_null()
    ).execute()


def _external_links(database: Database) -> None:
    database.create_tables([models.ExternalLink], safe=True)


def _statuses(database: Database) -> None:
    # the procedures' names: "pending" was the customer's turn
    models.Ticket.update(status="awaiting-customer").where(models.Ticket.status == "pending").execute()


def _request_type(database: Database) -> None:
    _add_missing_columns(database, models.Ticket, ("request_type",))


def _issue_record(database: Database) -> None:
    _add_missing_columns(database, models.Ticket, ("issue_record",))


def _create_index(database: Database, name: str, table: str, columns: str) -> None:
    """An index built without blocking writers on PostgreSQL; safe to run again."""
    if isinstance(database, SqliteDatabase):
        database.execute_sql(f"CREATE INDEX IF NOT EXISTS {name} ON {table} ({columns})")
        return
    # an interrupted CONCURRENTLY build leaves an invalid index behind: drop it and build again
    invalid = database.execute_sql(
        "SELECT 1 FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE c.relname = %s AND NOT i.indisvalid",
        (name,),
    ).fetchone()
    if invalid:
        database.execute_sql(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
    database.execute_sql(f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {name} ON {table} ({columns})")


def _hot_query_indexes(database: Database) -> None:
    # open tickets by team (the team's queue, the digest) and by assignee (least-open assignment)
    _create_index(database, "ticket_team_status", "ticket", "team, status")
    _create_index(database, "ticket_assignee_id_status", "ticket", "assignee_id, status")
    # threading by subject reads the newest tickets of one subject: bounded however many share it
    _create_index(database, "ticket_subject_key_updated_at", "ticket", "subject_key, updated_at")
    # the loop screen counts one sender's mail in a time window, for every message
    _create_index(database, "message_from_addr_written", "message", "from_addr, (COALESCE(date, arrived_at))")


MIGRATIONS: tuple[Migration, ...] = (
    (1, "initial schema", _initial),
    (2, "outbox message data and kinds; spam score on the spool", _outbox_and_spam_score),
    (3, "escalation tier on tickets; desk settings", _tier_and_settings),
    (4, "the SLA clock's schedule and marks", _sla_clock),
    (5, "links to development tickets", _external_links),
    (6, "statuses named as in the procedures", _statuses),
    (7, "request type beside the issue type", _request_type),
    (8, "the issue record the customer's mail gives", _issue_record),
    (9, "indexes for open tickets by team and assignee, subjects and senders", _hot_query_indexes),
)


def applied_versions(database: Database) -> set[int]:
    if not database.table_exists(models.SchemaVersion._meta.table_name):
        return set()
    return {row.version for row in models.SchemaVersion.select(models.SchemaVersion.version)}


def _wait_for_lock(database: Database) -> None:
    # polled, not pg_advisory_lock(): a session blocked in that call is a running transaction,
    # and the other process's CREATE INDEX CONCURRENTLY waits for it to end, a deadlock
    while not database.execute_sql("SELECT pg_try_advisory_lock(%s)", (_MIGRATION_LOCK,)).fetchone()[0]:
        time.sleep(0.2)


# built CONCURRENTLY, which PostgreSQL refuses inside a transaction; each step is safe to rerun
_OUTSIDE_TRANSACTION = {9}


def migrate(database: Database) -> list[int]:
    """Apply the migrations this database lacks; return the versions applied."""
    if not isinstance(database, SqliteDatabase):
        _wait_for_lock(database)
    try:
        return _apply(database)
    finally:
        if not isinstance(database, SqliteDatabase):
            database.execute_sql("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


def _apply(database: Database) -> list[int]:
    done = applied_versions(database)  # read under the lock: another process may have just migrated
    applied = []
    for version, name, step in MIGRATIONS:
        if version in done:
            continue
        if version in _OUTSIDE_TRANSACTION:
            step(database)
        with database.atomic():
            if version not in _OUTSIDE_TRANSACTION:
                step(database)
            models.SchemaVersion.create(
                version=version, name=name, applied_at=datetime.now(UTC).replace(tzinfo=None)
            )
        applied.append(version)
    return applied
