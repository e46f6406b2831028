"""Two maildesk instances acknowledging each other's mail over real SMTP: the exchange must stop.

Instance A (support@a.example) and instance B (help@b.example) each run `maildesk serve`
and send their outbox over SMTP to the other's listener. The first test lets mail pass as
sent: RFC 3834 headers and threading stop the exchange at once. The second puts a badly
behaved gateway in front of each instance, which strips every automatic-mail header, the
threading headers and our tags and makes each subject new (a mail system that rewrites
everything maildesk could recognise): then only the per-address limit on automatic mail is
left, and it must still bring the exchange to an end.
"""

from __future__ import annotations

import email
import smtplib
import sqlite3
import time
from collections.abc import Iterator
from email.policy import SMTP, default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.mail import make_mail
from tests.smtp_server import ServeProcess, free_port

LIMIT = 3


def counts(process: ServeProcess) -> tuple[int, int]:
    """(messages received, automatic messages sent) by one instance."""
    try:
        with sqlite3.connect(process.db, timeout=5) as conn:
            received = conn.execute("SELECT COUNT(*) FROM inbound_mail").fetchone()[0]
            sent = conn.execute("SELECT COUNT(*) FROM outbound_mail WHERE state = 'sent'").fetchone()[0]
    except sqlite3.OperationalError:
        return (0, 0)
    return int(received), int(sent)


def settle(processes: list[ServeProcess], quiet: float = 6.0, timeout: float = 90.0) -> list[tuple[int, int]]:
    """Wait until no instance has received or sent anything for `quiet` seconds."""
    deadline = time.monotonic() + timeout
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        now = [counts(p) for p in processes]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return now
        time.sleep(0.2)
    raise AssertionError(f"the exchange did not stop within {timeout} s: {last}")


class Rewriter:
    """An SMTP gateway that hides every sign of automatic mail, then forwards to `target`."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.forwarded = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=default)
        for name in ("Auto-Submitted", "Precedence", "X-Auto-Response-Suppress", "X-Loop", "In-Reply-To",
                     "References", "Message-ID", "Subject", "Return-Path"):  # fmt: skip
            del message[name]
        self.forwarded += 1
        message["Subject"] = f"Note number {self.forwarded} from a forgetful gateway"
        message["Message-ID"] = f"<gw{self.forwarded}.{time.monotonic_ns()}@gateway.example>"
        with smtplib.SMTP("127.0.0.1", self.target, timeout=30) as client:
            client.sendmail(envelope.mail_from, envelope.rcpt_tos, message.as_bytes(policy=SMTP))
        return "250 OK"


def instance(root: Path, address: str, port: int, relay_port: int, partner: str) -> ServeProcess:
    root.mkdir()
    # the two desks know each other (as a desk and its vendor would): neither is spam to the other
    return ServeProcess(
        root,
        f'[outbound]\nrelay = "smtp://127.0.0.1:{relay_port}"\n[respond]\nauto_reply_limit = {LIMIT}\n'
        f'[screen]\nallow = ["@{partner}"]\n',
        port=port,
        addresses=(address,),
    )


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[ServeProcess, ServeProcess]]:
    a_port, b_port = free_port(), free_port()
    a = instance(tmp_path / "a", "support@a.example", a_port, b_port, "b.example")
    b = instance(tmp_path / "b", "help@b.example", b_port, a_port, "a.example")
    yield a, b
    for process in (a, b):
        if process.proc is not None and process.proc.poll() is None:
            process.terminate()


def seed(port: int) -> None:
    """B's address writes to A once, as a person would."""
    raw = make_mail(sender="help@b.example", to="support@a.example", subject="Hello from B", message_id="s@b")
    with smtplib.SMTP("127.0.0.1", port) as client:
        client.sendmail("help@b.example", ["support@a.example"], raw)


def test_two_desks_stop_at_once_when_headers_pass_unchanged(pair: tuple[ServeProcess, ServeProcess]) -> None:
    a, b = pair
    a.start()
    b.start()
    seed(a.port)
    (a_in, a_sent), (b_in, b_sent) = settle([a, b])
    # A acknowledges once; B sees Auto-Submitted, records nothing new, answers nothing
    assert (a_in, a_sent, b_in, b_sent) == (1, 1, 1, 0)
    with sqlite3.connect(b.db) as conn:
        (reason,) = conn.execute("SELECT reason FROM inbound_mail").fetchone()
    assert reason.startswith("auto-reply:") and "Auto-Submitted" in reason


def test_two_desks_behind_rewriting_gateways_stop_at_the_rate_limit(
    pair: tuple[ServeProcess, ServeProcess],
) -> None:
    a, b = pair
    # each instance's outbox goes through a gateway that forwards to the other instance
    to_b, to_a = Rewriter(b.port), Rewriter(a.port)
    gateways = [Controller(to_b, hostname="127.0.0.1", port=free_port()),
                Controller(to_a, hostname="127.0.0.1", port=free_port())]  # fmt: skip
    for gateway in gateways:
        gateway.start()
    try:
        a.config.write_text(
            a.config.read_text().replace(f"smtp://127.0.0.1:{b.port}", f"smtp://127.0.0.1:{gateways[0].port}")
        )
        b.config.write_text(
            b.config.read_text().replace(f"smtp://127.0.0.1:{a.port}", f"smtp://127.0.0.1:{gateways[1].port}")
        )
        a.start()
        b.start()
        seed(a.port)
        (a_in, a_sent), (b_in, b_sent) = settle([a, b])
    finally:
        for gateway in gateways:
            gateway.stop()
    # each desk sends at most LIMIT automatic messages to the other's address, then stops
    assert a_sent <= LIMIT and b_sent <= LIMIT, (a_sent, b_sent)
    assert a_in == 1 + b_sent and b_in == a_sent, "every message that was sent arrived and was kept"
    assert a_sent + b_sent >= 2, "the gateways really did hide the automatic mail"
    with sqlite3.connect(a.db) as conn:
        skipped = conn.execute("SELECT detail FROM event WHERE kind = 'acknowledgement_skipped'").fetchall()
    assert skipped and any("automatic messages within" in d for (d,) in skipped)
