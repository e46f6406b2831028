"""End to end with real parts on loopback: `maildesk serve`, a relay that delivers into mailboxes,
the customer on smtplib, and the agent on s-nail (Debian's mail client) answering the notification
it received, with a command line in the answer."""

from __future__ import annotations

import email
import json
import shutil
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.conftest import ROOT, missing
from tests.mail import make_mail
from tests.smtp_server import ServeProcess, free_port

AGENTS = """
[[teams]]
name = "Service Desk"

[[agents]]
address = "alice@helpdesk.example"
name = "Alice Example"
team = "Service Desk"

[[routing]]
team = "Service Desk"
"""


class Mailboxes:
    """An SMTP relay that files every message into a Maildir per recipient, as a real MTA would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        data: bytes = envelope.original_content  # type: ignore[attr-defined]
        for rcpt in envelope.rcpt_tos:  # type: ignore[attr-defined]
            box = self.root / rcpt.lower()
            for sub in ("tmp", "new", "cur"):
                (box / sub).mkdir(parents=True, exist_ok=True)
            self.count += 1
            (box / "new" / f"{time.time_ns()}.{self.count}.relay").write_bytes(data)
        return "250 2.0.0 delivered"

    def messages(self, address: str) -> list[EmailMessage]:
        new = self.root / address / "new"
        if not new.is_dir():
            return []
        return [
            email.message_from_bytes(p.read_bytes(), policy=default)  # type: ignore[misc]
            for p in sorted(new.iterdir(), key=lambda p: p.name)
        ]

    def wait(self, address: str, count: int, timeout: float = 30.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages(address)
            if len(found) >= count:
                return found
            time.sleep(0.2)
        raise AssertionError(f"{address} has {len(self.messages(address))} of {count} messages")


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[ServeProcess, Mailboxes]]:
    if shutil.which("s-nail") is None:
        missing("s-nail is not installed (apt-get install s-nail)")
    yield from serve_with_mailboxes(tmp_path, AGENTS)


def serve_with_mailboxes(root: Path, config: str) -> Iterator[tuple[ServeProcess, Mailboxes]]:
    """`maildesk serve` whose outgoing mail goes to a relay that files it by recipient."""
    boxes = Mailboxes(root / "mailboxes")
    relay = Controller(boxes, hostname="127.0.0.1", port=free_port())
    relay.start()
    serve = ServeProcess(root, config + f'\n[outbound]\nrelay = "smtp://127.0.0.1:{relay.port}"\n')
    serve.start()
    try:
        yield serve, boxes
    finally:
        serve.terminate()
        relay.stop()


def s_nail_reply(maildir: Path, home: Path, port: int, sender: str, body: str) -> None:
    """Answer message 1 of the agent's Maildir the way a person would: Reply, type, send."""
    home.mkdir(exist_ok=True)
    command = [
        "s-nail", "-#", "-:/", "-R", "-S", "v15-compat", "-S", f"mta=smtp://127.0.0.1:{port}",
        "-S", "smtp-auth=none", "-S", f"from={sender}", "-S", "hostname=helpdesk.example",
        "-S", "reply-to-honour=yes", "-S", "quote", "-S", "indentprefix=> ", "-S", "quote-inject-tail=\n",
        "-S", "sendcharsets=utf-8", "-S", "errexit", "-S", f"DEAD={home}/dead.letter", "-f", str(maildir),
    ]  # fmt: skip
    script = "Reply 1\n" + body + "\n~.\nxit\n"
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "MAILRC": "/dev/null", "LC_ALL": "C.UTF-8",
           "TMPDIR": str(home)}  # fmt: skip
    done = subprocess.run(command, input=script.encode(), env=env, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")


def show(serve: ServeProcess, ref: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "maildesk.cli", "--config", str(serve.config), "--db", f"sqlite:///{serve.db}",
         "tickets", "show", ref, "--json"],
        capture_output=True, cwd=serve.root, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    return dict(json.loads(done.stdout))


def test_customer_and_agent_converse_through_the_desk_with_real_clients(
    desk: tuple[ServeProcess, Mailboxes], tmp_path: Path
) -> None:
    serve, boxes = desk
    first = make_mail(name="Anna Berg", message_id="anna-1@customer.example")
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=30) as smtp:
        smtp.sendmail("anna@customer.example", ["support@helpdesk.example"], first)

    (ack,) = boxes.wait("anna@customer.example", 1)
    (notice,) = boxes.wait("alice@helpdesk.example", 1)
    assert ack["In-Reply-To"] == "<anna-1@customer.example>" and "[MD-1]" in ack["Subject"]
    assert "+md-1." in str(notice["Reply-To"])

    s_nail_reply(
        boxes.root / "alice@helpdesk.example", tmp_path / "home", serve.port, "alice@helpdesk.example",
        "Hello Anna,\n\nwe have cleared the paper jam; the printer works again.\n\n#status resolved\n\nAlice",
    )  # fmt: skip

    answer = boxes.wait("anna@customer.example", 2)[1]
    assert str(answer["From"]) == "Alice Example via Example Support <support@helpdesk.example>"
    assert answer["Subject"] == "Re: [MD-1] Printer on floor 2 is jammed"
    # both messages thread under the customer's own first message in her client
    for message in (ack, answer):
        assert "<anna-1@customer.example>" in str(message["References"])
    assert answer["In-Reply-To"] == "<anna-1@customer.example>"
    text = answer.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "we have cleared the paper jam" in text
    assert "#status" not in text and "> " not in text and "Reply to this message to answer" not in text
    assert "alice@helpdesk.example" not in answer.as_string()

    confirmation = boxes.wait("alice@helpdesk.example", 2)[1]
    assert "#status resolved: done" in confirmation.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    ticket = show(serve, "MD-1")
    assert ticket["status"] == "resolved" and ticket["first_response_at"] is not None
    assert [m["kind"] for m in ticket["messages"] if m["direction"] == "in"] == ["customer", "agent"]
