"""Explicit, numbered schema migrations; each runs once, in order, in a transaction.

A new migration is appended to MIGRATIONS and never edited afterwards, so a database
created by any release can be brought up to date by `migrate`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from peewee import Database, SqliteDatabase

from maildesk.tickets.store import models

Migration = tuple[int, str, Callable[[Database], None]]


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


MIGRATIONS: tuple[Migration, ...] = (
    (1, "initial schema", _initial),
    (2, "outbox message data and kinds; spam score on the spool", _outbox_and_spam_score),
    (3, "escalation tier on tickets; desk settings", _tier_and_settings),
    (4, "the SLA clock's schedule and marks", _sla_clock),
    (5, "links to development tickets", _external_links),
    (6, "statuses named as in the procedures", _statuses),
    (7, "request type beside the issue type", _request_type),
    (8, "the issue record the customer's mail gives", _issue_record),
)


def applied_versions(database: Database) -> set[int]:
    if not database.table_exists(models.SchemaVersion._meta.table_name):
        return set()
    return {row.version for row in models.SchemaVersion.select(models.SchemaVersion.version)}


def migrate(database: Database) -> list[int]:
    """Apply the migrations this database lacks; return the versions applied."""
    done = applied_versions(database)
    applied = []
    for version, name, step in MIGRATIONS:
        if version in done:
            continue
        with database.atomic():
            step(database)
            models.SchemaVersion.create(
                version=version, name=name, applied_at=datetime.now(UTC).replace(tzinfo=None)
            )
        applied.append(version)
    return applied
