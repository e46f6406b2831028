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


class Desk:
    """A maildesk installation in a temporary folder, driven through the real CLI."""

    def __init__(self, root: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
        self.root = root
        self.db_url = db_url
        self.capsys = capsys
        self.config = root / "maildesk.toml"
        self.storage = root / "var"
        self.config.write_text(BASE_CONFIG.format(storage=self.storage))

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
def desk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Desk:
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

    try:
        yield {"host": "127.0.0.1", "port": port, "bindir": bindir, "data": data, "psycopg2": psycopg2,
               "restart": restart}  # fmt: skip
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


@pytest.fixture
def postgres_url(postgres_server: dict) -> Iterator[str]:
    """A fresh, empty database in the throwaway cluster for one test."""
    name = f"maildesk_{os.getpid()}_{time.monotonic_ns()}"
    psycopg2 = postgres_server["psycopg2"]
    conn = psycopg2.connect(
        host="127.0.0.1", port=postgres_server["port"], user="postgres", dbname="postgres"
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn.close()
    yield f"postgresql://postgres@127.0.0.1:{postgres_server['port']}/{name}"
    # a fresh connection: a test may have restarted the server under the first one
    port = postgres_server["port"]
    conn = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_desk(request: pytest.FixtureRequest, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Desk:
    """The same test on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return Desk(tmp_path, f"sqlite:///{tmp_path / 'maildesk.db'}", capsys)
    url = request.getfixturevalue("postgres_url")
    return Desk(tmp_path, url, capsys)
