"""`maildesk serve` as a real process on a free loopback port, for SMTP tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """Start, kill and restart `maildesk serve` with its own config, database and storage."""

    def __init__(
        self,
        root: Path,
        extra_config: str = "",
        port: int | None = None,
        role: str = "all",
        env: dict[str, str] | None = None,
        addresses: tuple[str, ...] = ("support@helpdesk.example", "help@helpdesk.example"),
        db_url: str | None = None,
    ) -> None:
        self.env = env or {}
        self.root = root
        self.role = role
        self.port = port or free_port()
        self.db = root / "maildesk.db"
        self.db_url = db_url or f"sqlite:///{self.db}"
        self.config = root / "maildesk.toml"
        desk = "[desk]\naddresses = [" + ", ".join(f'"{a}"' for a in addresses) + "]\n"
        self.config.write_text(
            desk + f'[storage]\npath = "{root / "var"}"\n'
            f'[smtp]\nlisten = "127.0.0.1:{self.port}"\nmax_size = "200KB"\n' + extra_config
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = open(root / "serve.log", "ab")  # noqa: SIM115 - kept open across restarts

    def start(self, timeout: float = 30.0) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), **self.env)
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "maildesk.cli",
                "--config",
                str(self.config),
                "--db",
                self.db_url,
                "serve",
                "--role",
                self.role,
            ],
            cwd=self.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.log,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if b"ready" in line:
                return
            if not line and self.proc.poll() is not None:
                break
        raise RuntimeError(f"maildesk serve did not start: {(self.root / 'serve.log').read_text()[-2000:]}")

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        return code


def stored(db: Path, timeout: float = 20.0, expect: int = 1) -> list[tuple[str, int]]:
    """(message_id, ticket number) rows once `expect` messages are processed."""
    deadline = time.monotonic() + timeout
    rows: list[tuple[str, int]] = []
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(db, timeout=5) as conn:
                rows = conn.execute(
                    "SELECT m.message_id, t.number FROM message m JOIN ticket t ON t.id = m.ticket_id"
                    " WHERE m.direction = 'in'"
                ).fetchall()
        except sqlite3.OperationalError:
            rows = []
        if len(rows) >= expect:
            return rows
        time.sleep(0.1)
    return rows
