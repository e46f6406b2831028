"""Opening the database named by a URL, and binding the models to it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from peewee import Database, OperationalError, PostgresqlDatabase, SqliteDatabase

from maildesk.errors import DatabaseError
from maildesk.tickets.store.migrations import migrate
from maildesk.tickets.store.models import database_proxy

# WAL lets readers (tickets list) run beside the ingest writer; synchronous=FULL makes a
# commit durable before we acknowledge mail (NORMAL could lose the last commit on power loss).
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "synchronous": "full",
    "foreign_keys": 1,
    "busy_timeout": 30_000,
    "cache_size": -64_000,
}


class _SqliteDatabase(SqliteDatabase):
    """SQLite whose transactions take the write lock when they begin.

    In WAL mode a transaction that reads and then writes fails at once with "database is
    locked" if another connection wrote in between (its snapshot is stale), whatever the
    busy timeout. Every maildesk transaction writes, so each starts with BEGIN IMMEDIATE and
    waits its turn instead (the SMTP intake and the worker write from different threads).
    """

    def begin(self, lock_type: str | None = None) -> None:
        super().begin(lock_type or "IMMEDIATE")


def make_database(url: str) -> Database:
    """A peewee Database for `sqlite:///path` or `postgresql://user:pass@host:port/db`."""
    parsed = urlparse(url)
    if parsed.scheme == "sqlite":
        # sqlite:///relative.db and sqlite:////absolute/path.db, as SQLAlchemy spells them
        path = url[len("sqlite:///") :] if url.startswith("sqlite:///") else parsed.path
        if not path:
            raise DatabaseError(f"database URL {url!r} names no file")
        if path != ":memory:":
            parent = Path(path).parent
            if not parent.exists():
                raise DatabaseError(f"database folder {parent} does not exist")
        return _SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, check_same_thread=False)
    if parsed.scheme in ("postgresql", "postgres"):
        try:
            import psycopg2  # noqa: F401
        except ImportError:
            raise DatabaseError("PostgreSQL needs psycopg2: pip install 'maildesk[postgres]'") from None
        return PostgresqlDatabase(
            unquote(parsed.path.lstrip("/")),
            user=unquote(parsed.username or "") or None,
            password=unquote(parsed.password or "") or None,
            host=parsed.hostname or None,
            port=parsed.port or 5432,
        )
    raise DatabaseError(f"unknown database URL {url!r}: use sqlite:///PATH or postgresql://...")


def open_database(url: str, *, upgrade: bool = True) -> Database:
    """Connect, bind the models and apply pending migrations (explicit, versioned)."""
    database = make_database(url)
    try:
        database.connect(reuse_if_open=True)
    except OperationalError as exc:
        raise DatabaseError(f"cannot open database {redact(url)}: {exc}".strip()) from None
    database_proxy.initialize(database)
    if upgrade:
        migrate(database)
    return database


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url
