"""Shared fixtures: a desk on a temporary SQLite (or a throwaway PostgreSQL), and the CLI in-process."""

from __future__ import annotations

import glob
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest

from maildesk.cli import main
from tests.dovecot import Dovecot, start_dovecot

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures" / "emails"
CORPORA = ROOT.parent / "shared" / "corpora"
IS_ROOT = os.geteuid() == 0

BASE_CONFIG = """
[desk]
name = "Example Support"
addresses = ["support@helpdesk.example"]
ticket_prefix = "MD"
secret = "test-secret"

[storage]
path = "{storage}"

[[teams]]
name = "Service Desk"
address = "desk@helpdesk.example"

[[agents]]
address = "alice@helpdesk.example"
name = "Alice Example"
team = "Service Desk"

[[agents]]
address = "bob@helpdesk.example"
name = "Bob Example"
team = "Service Desk"

[[organizations]]
name = "Acme Solar"
domains = ["acme-solar.example"]
priority = true
"""


def inbound(ticket: dict) -> list[dict]:
    """The messages that came in, without what maildesk sent (acknowledgements, replies)."""
    return [m for m in ticket["messages"] if m["direction"] == "in"]


def missing(why: str) -> None:
    """A missing server skips a laptop run but fails CI: real-server tests must never vanish."""
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> object:
        return json.loads(self.out)


def _as_sqlite(value: object) -> object:
    import datetime as dt

    if isinstance(value, memoryview):
        return bytes(value)
    if isinstance(value, dt.datetime):
        return str(value)
    return value


class Desk:
    """A maildesk installation in a temporary folder, driven through the real CLI."""

    def __init__(self, root: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.root = root
        self.db_url = db_url
        self.capsys = capsys
        self.config = root / "maildesk.toml"
        self.storage = root / "var"
        self.config.write_text(BASE_CONFIG.format(storage=self.storage))

    @property
    def maildir_relay(self) -> str:
        """Config that sends outgoing mail to the Maildir at `out/`, where `outgoing` reads it."""
        return f'\n[outbound]\nrelay = "maildir:{self.root / "out"}"\n'

    def outgoing(self) -> list[EmailMessage]:
        """Flush the outbox to the `maildir_relay` and read every message sent there so far."""
        from tests.mail import sent_mail

        assert self.run("outbox", "flush").code == 0
        return sent_mail(self.root / "out")

    def sql(self, statement: str, params: tuple = ()) -> list[tuple]:
        """Run one statement against the desk's database, SQLite or PostgreSQL (`?` placeholders);
        the rows it returns, as tuples."""
        return [tuple(row.values()) for row in self.sql_dicts(statement, params)]

    def sql_dicts(self, statement: str, params: tuple = ()) -> list[dict]:
        """As `sql`, each row a dict by column name."""
        if self.db_url.startswith("sqlite"):
            import sqlite3

            conn = sqlite3.connect(self.db_url.removeprefix("sqlite:///"))
            conn.row_factory = sqlite3.Row
            try:
                with conn:
                    return [dict(row) for row in conn.execute(statement, params).fetchall()]
            finally:
                conn.close()
        import psycopg2
        from psycopg2.extras import RealDictCursor

        conn = psycopg2.connect(self.db_url)
        try:
            with conn, conn.cursor(cursor_factory=RealDictCursor) as cur:
                cur.execute(statement.replace("?", "%s"), params)
                rows = [dict(row) for row in cur.fetchall()] if cur.description else []
        finally:
            conn.close()
        # as SQLite gives them back: bytes, and timestamps as the text peewee stores there
        return [{k: _as_sqlite(v) for k, v in row.items()} for row in rows]

    def run(self, *args: str, now: str | None = None) -> Result:
        argv = ["--config", str(self.config), "--db", self.db_url]
        if now:
            argv += ["--now", now]
        self.capsys.readouterr()
        code = main([*argv, *args])
        captured = self.capsys.readouterr()
        return Result(code, captured.out, captured.err)

    def ingest(self, *paths: Path | str, now: str | None = None) -> dict[str, float]:
        result = self.run("ingest", "--json", *map(str, paths), now=now)
        assert result.code == 0, result.err
        return result.json()  # type: ignore[return-value]

    def tickets(self, with_messages: bool = True) -> list[dict]:
        args = ["tickets", "list", "--json"] + (["--with-messages"] if with_messages else [])
        result = self.run(*args)
        assert result.code == 0, result.err
        return result.json()  # type: ignore[return-value]

    def show(self, ref: str) -> dict:
        result = self.run("tickets", "show", ref, "--json")
        assert result.code == 0, result.err
        return result.json()  # type: ignore[return-value]


@pytest.fixture
def desk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], db_backend: str, request: pytest.FixtureRequest
) -> Desk:
    return _desk_on(db_backend, request, tmp_path, capsys, "postgres_desk_url")


def _desk_on(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str], url: str
) -> Desk:
    """A desk on SQLite, or on the PostgreSQL database the fixture named `url` makes."""
    if backend == "postgresql":
        return Desk(tmp_path, request.getfixturevalue(url), capsys)
    return Desk(tmp_path, f"sqlite:///{tmp_path / 'maildesk.db'}", capsys)


# ---------------------------------------------------------------------------- PostgreSQL


@pytest.fixture(scope="session")
def dovecot() -> Iterator[Dovecot]:
    """A throwaway Dovecot IMAP server (STARTTLS and IMAPS) on loopback for the session."""
    yield from start_dovecot(missing)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[dict[str, object]]:
    """A throwaway PostgreSQL cluster on a free loopback port (Debian's postgresql package)."""
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    bindir = os.environ.get("PG_BINDIR") or (dirs[-1] if dirs else None)
    if not bindir:
        missing("PostgreSQL is not installed (apt-get install -y postgresql)")
    try:
        import psycopg2
    except ImportError:
        missing("psycopg2 is not installed (pip install psycopg2-binary)")
    pw = pwd.getpwnam("postgres") if IS_ROOT else pwd.getpwuid(os.getuid())
    # not pytest's tmp_path: the postgres user cannot enter it
    folder = tempfile.mkdtemp(prefix="maildesk-pg-")
    os.chown(folder, pw.pw_uid, pw.pw_gid)
    data, log, port = os.path.join(folder, "data"), os.path.join(folder, "pg.log"), _free_port()
    drop = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []} if IS_ROOT else {}
    env = dict(os.environ, LC_ALL="C", LANG="C")
    env.pop("PGDATA", None)

    def pg(*args: str) -> None:
        subprocess.run(
            args, cwd=folder, env=env, check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **drop
        )

    pg(
        f"{bindir}/initdb",
        "-D",
        data,
        "-U",
        "postgres",
        "-A",
        "trust",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync",
    )
    options = (
        f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off"
    )
    pg(f"{bindir}/pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start")

    def restart() -> None:
        """A fast restart: every connection is dropped, as a failover or an upgrade would."""
        pg(f"{bindir}/pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-m", "fast", "-o", options,
           "restart")  # fmt: skip

    def stop() -> None:
        """The database goes away: every connection drops and none can be made until start()."""
        pg(f"{bindir}/pg_ctl", "-D", data, "-w", "-t", "60", "-m", "fast", "stop")

    def start() -> None:
        pg(f"{bindir}/pg_ctl", "-D", data, "-l", log, "-w", "-t", "60", "-o", options, "start")

    try:
        yield {"host": "127.0.0.1", "port": port, "bindir": bindir, "data": data, "psycopg2": psycopg2,
               "restart": restart, "stop": stop, "start": start}  # fmt: skip
    finally:
        subprocess.run(
            [f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"],
            cwd=folder,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            **drop,
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_template(postgres_server: dict) -> str:
    """A database with maildesk's schema, copied for each test: CREATE DATABASE ... TEMPLATE
    takes milliseconds where running every migration takes a second."""
    from maildesk.tickets.store.db import close_database, open_database

    name = f"maildesk_template_{os.getpid()}"
    postgres_admin(postgres_server, f'CREATE DATABASE "{name}"')
    # every connection closed: PostgreSQL copies a template only while nobody is connected to it
    close_database(open_database(f"postgresql://postgres@127.0.0.1:{postgres_server['port']}/{name}"))
    return name


def postgres_admin(postgres_server: dict, sql: str) -> None:
    """Run one statement as the cluster's superuser (CREATE or DROP DATABASE)."""
    psycopg2 = postgres_server["psycopg2"]
    # a fresh connection each time: a test may have restarted the server under an older one
    port = postgres_server["port"]
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
    finally:
        conn.close()


def _fresh_database(postgres_server: dict, template: str = "") -> Iterator[str]:
    name = f"maildesk_{os.getpid()}_{time.monotonic_ns()}"
    copy = f' TEMPLATE "{template}"' if template else ""
    postgres_admin(postgres_server, f'CREATE DATABASE "{name}"{copy}')
    yield f"postgresql://postgres@127.0.0.1:{postgres_server['port']}/{name}"
    postgres_admin(postgres_server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url(postgres_server: dict) -> Iterator[str]:
    """A fresh, empty database in the throwaway cluster for one test."""
    yield from _fresh_database(postgres_server)


@pytest.fixture
def postgres_desk_url(postgres_server: dict, postgres_template: str) -> Iterator[str]:
    """A fresh database with the schema already in place, for one test."""
    yield from _fresh_database(postgres_server, postgres_template)


@pytest.fixture
def db_backend(request: pytest.FixtureRequest) -> str:
    """sqlite, unless a module marked `both_databases` has its tests run on postgresql too."""
    return getattr(request, "param", "sqlite")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    # a module marked both_databases runs every test that uses the `desk` fixture twice: the
    # pipeline must behave the same on the embedded default and on the scale-out engine
    if "db_backend" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_databases"):
        metafunc.parametrize(
            "db_backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
        )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def any_desk(request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Desk:
    """The same test on SQLite and on PostgreSQL, each database empty (no schema yet), in a
    module not marked `both_databases`, or where the test needs the empty database."""
    return _desk_on(request.param, request, tmp_path, capsys, "postgres_url")
