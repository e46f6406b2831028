"""The vendor round trip over real SMTP on loopback: `maildesk serve` dispatches an after-hours
ticket to the vendor, the vendor's reply threads back as an internal vendor message, and an
agent's `#return` takes the ticket back. The customer hears of none of it."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mail import make_mail, reply_to
from tests.smtp_server import ServeProcess
from tests.test_agent_mail_client import AGENTS, Mailboxes, serve_with_mailboxes, show

# the desk is open one minute a week, so the wall clock is after hours whenever the test runs
CONFIG = (
    AGENTS
    + """
[hours]
timezone = "UTC"
sun = "00:00-00:01"

[sla]
every = "1s"

[vendor]
name = "Vendor Help Desk"
address = "dispatch@vendor.example"
domains = ["vendor.example"]
after_hours = true
"""
)


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[tuple[ServeProcess, Mailboxes]]:
    yield from serve_with_mailboxes(tmp_path, CONFIG)


def send(serve: ServeProcess, sender: str, recipient: str, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", serve.port, timeout=30) as smtp:
        # smtplib sends bytes as they are: the wire wants CRLF line ends
        smtp.sendmail(sender, [recipient], raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def test_dispatch_vendor_reply_and_return_over_smtp(desk: tuple[ServeProcess, Mailboxes]) -> None:
    serve, boxes = desk
    first = make_mail(name="Anna Berg", subject="Printer on fire", message_id="anna-1@customer.example")
    send(serve, "anna@customer.example", "support@helpdesk.example", first)

    (dispatched,) = boxes.wait("dispatch@vendor.example", 1)
    assert "[MD-1]" in dispatched["Subject"] and "it arrived after hours" in dispatched.get_content()
    vendor_address = dispatched["Reply-To"].addresses[0].addr_spec
    assert vendor_address.startswith("support+md-1.a0.r.")

    words = "We replaced the fuser unit; please ask the customer to test."
    answer = reply_to(dispatched, "tech@vendor.example", words, message_id="v-1@vendor.example")
    send(serve, "tech@vendor.example", vendor_address, answer)
    alice = boxes.wait("alice@helpdesk.example", 2)
    vendor_notice = next(m for m in alice if "vendor has written" in m.get_content())
    assert "replaced the fuser unit" in vendor_notice.get_content()

    ticket = show(serve, "MD-1")
    assert ticket["vendor"] == "dispatched"
    (note,) = [m for m in ticket["messages"] if m["kind"] == "vendor"]
    assert note["visibility"] == "internal" and "fuser unit" in note["text"]
    assert "tech@vendor.example" not in [p for p in ticket.get("participants", [])]

    took_back = reply_to(
        vendor_notice, "alice@helpdesk.example", "#return", message_id="a-1@helpdesk.example"
    )
    send(serve, "alice@helpdesk.example", vendor_notice["Reply-To"].addresses[0].addr_spec, took_back)
    back = boxes.wait("dispatch@vendor.example", 2)[1]
    assert "taken ticket MD-1" in " ".join(back.get_content().split())
    assert show(serve, "MD-1")["vendor"] == "returned"

    # the customer got her acknowledgement and nothing else: no vendor, no dispatch
    for message in boxes.messages("anna@customer.example"):
        assert "vendor" not in message.as_string().lower()
    assert len(boxes.messages("anna@customer.example")) == 1
