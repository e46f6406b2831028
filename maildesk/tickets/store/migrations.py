"""Explicit, numbered schema migrations; each runs once, in order, in a transaction.

A new migration is appended to MIGRATIONS and never edited afterwards, so a database
created by any release can be brought up to date by `migrate`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from peewee import Database

from maildesk.tickets.store import models

Migration = tuple[int, str, Callable[[Database], None]]


def _initial(database: Database) -> None:
    database.create_tables(models.ALL_MODELS, safe=True)


MIGRATIONS: tuple[Migration, ...] = ((1, "initial schema", _initial),)


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
