"""Opening the database named by a URL, and binding the models to it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from peewee import Database, InterfaceError, OperationalError, PostgresqlDatabase, SqliteDatabase
from playhouse.pool import MaxConnectionsExceeded, PooledPostgresqlDatabase

from maildesk.errors import DatabaseError
from maildesk.tickets.store.migrations import migrate
from maildesk.tickets.store.models import database_proxy
from maildesk.tickets.store.turns import Turns

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

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.turns = Turns()  # this process's writers, in the order they came

    def begin(self, lock_type: str | None = None) -> None:
        self.turns.acquire()
        try:
            super().begin(lock_type or "IMMEDIATE")
        except BaseException:
            self.turns.release()
            raise

    def commit(self) -> None:
        self._end(super().commit)

    def rollback(self) -> None:
        self._end(super().rollback)

    def _end(self, end: Callable[[], None]) -> None:
        try:
            end()
        finally:
            if not self.in_transaction():  # the outermost transaction is over: the next writer's turn
                self.turns.release()


class _PostgresDatabase(PooledPostgresqlDatabase):
    """PostgreSQL through a pool of connections that outlives a restart of the server.

    A restart or a failover cuts every connection. The pool pings an idle connection before
    lending it out; a connection cut while a thread holds it is noticed at the next BEGIN or
    the next statement outside a transaction and replaced; the BEGIN, or a SELECT, then runs
    again. Work cut inside a transaction fails, is rolled back by the server, and its caller
    retries: the worker's next pass, the SMTP client's next attempt (it was answered 451).
    """

    def connect(self, reuse_if_open: bool = False) -> bool:
        try:
            return bool(super().connect(reuse_if_open))
        except MaxConnectionsExceeded:
            # every connection of the pool is in use and none came free in time: for callers,
            # the database is unavailable (a worker retries, an SMTP sender hears 451)
            raise OperationalError(
                f"all {self._max_connections} pooled connections are busy ([database] pool_size)"
            ) from None

    def begin(self, isolation_level: Any = None) -> None:
        try:
            super().begin(isolation_level)
        except (OperationalError, InterfaceError):
            if not self._replace_lost_connection():
                raise
            super().begin(isolation_level)

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        try:
            return super().execute_sql(sql, params)
        except (OperationalError, InterfaceError):
            if self.in_transaction() or not self._replace_lost_connection():
                raise
            if not sql.lstrip().upper().startswith("SELECT"):
                raise  # a write may have run before the connection broke: its caller decides
            return super().execute_sql(sql, params)

    def _replace_lost_connection(self) -> bool:
        if not connection_lost(self):
            return False  # the connection is fine: the statement itself failed
        self._close(self._state.conn, close_conn=True)  # out of the pool for good
        self._state.reset()
        self.connect()  # raises while the server is still down; the caller retries later
        return True


def make_database(url: str, *, pool_size: int = 10, pooled: bool = True) -> Database:
    """A peewee Database for `sqlite:///path` or `postgresql://user:pass@host:port/db`.

    On PostgreSQL each process keeps at most `pool_size` connections, lent to its threads
    for a unit of work and returned after (`connection_context`), so many workers on many
    hosts stay well inside the server's `max_connections`. `pooled=False` gives one
    connection of its own, shared by every thread, for a session-scoped advisory lock.
    """
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
        name = unquote(parsed.path.lstrip("/"))
        # a server that is down is reported within 10 s, not after the kernel's TCP timeout
        options: dict[str, Any] = {
            "user": unquote(parsed.username or "") or None,
            "password": unquote(parsed.password or "") or None,
            "host": parsed.hostname or None,
            "port": parsed.port or 5432,
            "connect_timeout": 10,
            "application_name": "maildesk",  # how the DBA tells our sessions in pg_stat_activity
        }
        if not pooled:
            # one session whichever thread asks: a session-scoped advisory lock must be checked
            # on the connection that holds it, and asyncio.to_thread changes threads
            return PostgresqlDatabase(name, thread_safe=False, **options)
        # a thread waits up to 30 s for a free connection; a connection is recycled after 10
        # minutes, so a failed-over server's new address (DNS) is picked up
        return _PostgresDatabase(name, max_connections=pool_size, stale_timeout=600, timeout=30, **options)
    raise DatabaseError(f"unknown database URL {url!r}: use sqlite:///PATH or postgresql://...")


def open_database(url: str, *, upgrade: bool = True, pool_size: int = 10) -> Database:
    """Connect, bind the models and apply pending migrations (explicit, versioned)."""
    database = make_database(url, pool_size=pool_size)
    try:
        database.connect(reuse_if_open=True)
    except OperationalError as exc:
        raise DatabaseError(f"cannot open database {redact(url)}: {exc}".strip()) from None
    database_proxy.initialize(database)
    if upgrade:
        migrate(database)
    return database


def lent_connection(database: Database) -> contextlib.AbstractContextManager[object]:
    """A connection for one unit of work in a long-running thread, returned to the pool after.

    PostgreSQL's pool lends the thread a connection and takes it back at the end, so an
    IMAP reader idling for minutes or a worker between passes holds none. SQLite keeps its
    one connection per thread: reopening it would only cost the pragmas again.
    """
    if isinstance(database, _PostgresDatabase):
        return database.connection_context()
    return contextlib.nullcontext()


def connection_lost(database: Database) -> bool:
    """Whether this thread's PostgreSQL connection was cut (a restart, a failover, a network
    fault): the work in hand failed for that reason and should be retried, not blamed."""
    database = getattr(database, "obj", database)  # a model's database is the proxy to it
    if not isinstance(database, _PostgresDatabase):
        return False
    conn = database._state.conn
    return conn is not None and bool(conn.closed)


def close_database(database: Database) -> None:
    """Close this thread's connection and, on PostgreSQL, every pooled one: the process is done."""
    database.close()
    if isinstance(database, _PostgresDatabase):
        database.close_all()


def redact(url: str) -> str:
    """The URL with its password hidden, for messages and logs."""
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@")
    return url
