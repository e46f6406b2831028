"""Bounce recognition: fixture bounces as each MTA writes them, look-alikes, hostile input.

A bounce report becomes a test by adding `<case>.eml` and `<case>.expect.toml` under
fixtures/emails/bounces/ (see fixtures/emails/README.md for the keys).
"""

from __future__ import annotations

import email
import logging
import re
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maildesk.errors import ParseError
from maildesk.parse.message import parse
from maildesk.screen.bounce import Bounce, looks_like_bounce, parse_bounce
from tests.conftest import CORPORA, FIXTURES

BOUNCES = sorted((FIXTURES / "bounces").glob("*.eml"))
CLIENTS = sorted((FIXTURES / "clients").glob("*.eml"))
MALFORMED = sorted(p for p in (CORPORA / "malformed").rglob("*") if p.is_file())
KEYS = {
    "bounce", "gate", "format", "recipients", "status", "permanent", "original_message_id",
    "original_subject", "diagnostic_contains",
}  # fmt: skip
STATUS = re.compile(r"\d\.\d{1,3}\.\d{1,3}")


def expect(path: Path) -> dict:
    return tomllib.loads(path.with_suffix(".expect.toml").read_text(encoding="utf-8"))


@contextmanager
def no_failures() -> Iterator[None]:
    """parse_bounce logs and returns None when it meets an exception; a test must see none."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("maildesk.screen.bounce")
    handler = Keep(logging.WARNING)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    assert not records, [r.getMessage() for r in records]


def gate(raw: bytes) -> bool:
    mail = parse(raw)
    return looks_like_bounce(mail.headers, str(mail.sender) if mail.sender else "", mail.subject)


def check_shape(bounce: Bounce | None) -> None:
    """What holds for every Bounce, whatever the input."""
    if bounce is None:
        return
    assert bounce.reasons
    assert "<" not in bounce.original_message_id and ">" not in bounce.original_message_id
    for recipient in bounce.recipients:
        assert STATUS.fullmatch(recipient.status), recipient.status
        assert recipient.action in ("failed", "delayed")
        assert recipient.permanent == (recipient.action == "failed" and recipient.status.startswith("5"))
        assert "@" in recipient.address and recipient.address == recipient.address.lower()
        assert "\n" not in recipient.diagnostic and "\r" not in recipient.diagnostic


# ------------------------------------------------------------------------------------------ fixtures


@pytest.mark.parametrize("path", BOUNCES, ids=lambda p: p.stem)
def test_bounce_fixture(path: Path) -> None:
    want = expect(path)
    assert set(want) <= KEYS, set(want) - KEYS
    assert path.with_suffix(".expect.toml").read_text(encoding="utf-8").startswith("# ")
    raw = path.read_bytes()
    with no_failures():
        bounce = parse_bounce(raw)
    check_shape(bounce)
    assert gate(raw) is want["gate"]
    if not want["bounce"]:
        assert bounce is None, bounce
        return
    assert bounce is not None
    assert want["gate"], "every bounce must pass the gate"
    first = bounce.recipients[0]
    assert bounce.format == want["format"]
    assert [r.address for r in bounce.recipients] == want["recipients"]
    assert first.status == want["status"]
    assert first.permanent is want["permanent"]
    assert bounce.original_message_id == want.get("original_message_id", "")
    if "original_subject" in want:
        assert bounce.original_subject == want["original_subject"]
    if "diagnostic_contains" in want:
        assert want["diagnostic_contains"] in first.diagnostic


def test_fixture_folder_has_bounces_and_look_alikes() -> None:
    kinds = [expect(p)["bounce"] for p in BOUNCES]
    assert kinds.count(True) >= 16 and kinds.count(False) >= 4
    formats = {expect(p).get("format") for p in BOUNCES}
    assert {"dsn", "exim", "qmail", "sendmail", "yahoo", "other"} <= formats


def _without_dsn_part(raw: bytes) -> bytes:
    message = email.message_from_bytes(raw)
    for part in message.walk():
        payload = part.get_payload()
        if part.is_multipart() and isinstance(payload, list):
            part.set_payload([p for p in payload if p.get_content_type() != "message/delivery-status"])
    return message.as_bytes()


DSN_FIXTURES = [p for p in BOUNCES if expect(p).get("format") == "dsn"]


@pytest.mark.parametrize("path", DSN_FIXTURES, ids=lambda p: p.stem)
def test_text_alone_names_the_same_recipients(path: Path) -> None:
    """Without its delivery-status part, each report's own text still says who failed and how."""
    want = expect(path)
    with no_failures():
        bounce = parse_bounce(_without_dsn_part(path.read_bytes()))
    check_shape(bounce)
    assert bounce is not None and bounce.format not in ("dsn", "other")
    assert [r.address for r in bounce.recipients] == want["recipients"]
    assert bounce.recipients[0].permanent is want["permanent"]
    assert bounce.original_message_id == want["original_message_id"]


def test_flufl_bounce_skips_hyphenated_domains() -> None:
    """flufl.bounce's generic patterns drop any domain with a hyphen; the mail is still a bounce."""
    raw = (FIXTURES / "bounces" / "mailenable-5.1.1-flufl-fallback.eml").read_bytes()
    with no_failures():
        bounce = parse_bounce(raw.replace(b"@ridgewaydental.example", b"@ridgeway-dental.example"))
    assert bounce is not None and bounce.format == "other"
    assert bounce.recipients == ()
    assert "no failed address could be read" in bounce.reasons


@pytest.mark.parametrize("path", CLIENTS, ids=lambda p: p.stem)
def test_client_mail_is_not_a_bounce(path: Path) -> None:
    raw = path.read_bytes()
    assert not gate(raw)
    with no_failures():
        assert parse_bounce(raw) is None


# ------------------------------------------------------------------------------------------ the gate


@pytest.mark.parametrize(
    ("headers", "sender", "subject", "verdict"),
    [
        ({"content-type": ("multipart/report; report-type=delivery-status; boundary=x",)}, "", "", True),
        ({"content-type": ("multipart/report; boundary=x",)}, "", "", True),
        ({"content-type": ("multipart/report; report-type=disposition-notification; boundary=x",)},
         "MAILER-DAEMON@mx.example", "Undeliverable: x", False),
        ({"content-type": ("multipart/report; report-type=feedback-report; boundary=x",)}, "", "", False),
        ({}, "Mail Delivery Subsystem <mailer-daemon@googlemail.com>", "Hello", True),
        ({}, "MAILER-DAEMON@out1.helpdesk.example (Mail Delivery System)", "", True),
        ({}, "postmaster@acme-solar.example", "Hello", True),
        ({"from": ("Mail Delivery System <Mailer-Daemon@mx.example>",)}, "", "", True),
        ({"return-path": ("<>",)}, "anna@acme-solar.example", "Automatic reply: x", True),
        ({"x-failed-recipients": ("a@acme-solar.example",)}, "anna@acme-solar.example", "x", True),
        ({}, "anna@acme-solar.example", "Undelivered Mail Returned to Sender", True),
        ({}, "anna@acme-solar.example", "Delivery Status Notification (Failure)", True),
        ({}, "anna@acme-solar.example", "Undeliverable: Invoice 114", True),
        ({}, "anna@acme-solar.example", "Mail delivery failed: returning message to sender", True),
        ({}, "anna@acme-solar.example", "failure notice", True),
        ({}, "anna@acme-solar.example", "Returned mail: see transcript for details", True),
        ({}, "anna@acme-solar.example", "Unzustellbar: Rechnung", True),
        ({}, "anna@acme-solar.example", "Non remis : Facture", True),
        ({}, "anna@acme-solar.example", "No se puede entregar: Factura", True),
        ({}, "anna@acme-solar.example", "Onbestelbaar: Factuur", True),
        ({}, "anna@acme-solar.example", "FW: Undeliverable: Invoice 114", False),
        ({}, "anna@acme-solar.example", "Re: Undelivered Mail Returned to Sender", False),
        ({}, "anna@acme-solar.example", "Our delivery was late again", False),
        ({"return-path": ("<anna@acme-solar.example>",)}, "anna@acme-solar.example", "Printer", False),
    ],
)  # fmt: skip
def test_looks_like_bounce(headers: dict, sender: str, subject: str, verdict: bool) -> None:
    assert looks_like_bounce(headers, sender, subject) is verdict


# ------------------------------------------------------------------------------------------ DSN edge cases


def dsn(
    *fields: tuple[str, ...], notice: str = "Delivery failed.", encoding: str = "", subject: str = ""
) -> bytes:
    """A well-formed DSN skeleton around the given per-recipient field blocks."""
    blocks = "\r\n".join("".join(f"{line}\r\n" for line in block) for block in fields)
    report = f"Reporting-MTA: dns; mx.example\r\n\r\n{blocks}"
    if encoding == "base64":
        import base64

        report = base64.encodebytes(report.encode("utf-8")).decode("ascii").replace("\n", "\r\n")
    cte = f"Content-Transfer-Encoding: {encoding}\r\n" if encoding else ""
    return (
        "From: MAILER-DAEMON@mx.example (Mail Delivery System)\r\n"
        "To: support@helpdesk.example\r\n"
        f"Subject: {subject or 'Undelivered Mail Returned to Sender'}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        f"--b\r\nContent-Type: text/plain\r\n\r\n{notice}\r\n"
        f"--b\r\nContent-Type: message/delivery-status\r\n{cte}\r\n{report}\r\n"
        "--b--\r\n"
    ).encode()


def test_success_report_is_not_a_bounce() -> None:
    raw = dsn(("Final-Recipient: rfc822; a@acme-solar.example", "Action: delivered", "Status: 2.0.0"))
    with no_failures():
        assert parse_bounce(raw) is None


def test_base64_delivery_status_part_is_read() -> None:
    block = ("Final-Recipient: rfc822; a@acme-solar.example", "Action: failed", "Status: 5.2.2")
    with no_failures():
        bounce = parse_bounce(dsn(block, encoding="base64"))
    assert bounce is not None and [(r.address, r.status) for r in bounce.recipients] == [
        ("a@acme-solar.example", "5.2.2")
    ]


def test_original_recipient_is_preferred_and_x00_made_specific() -> None:
    block = (
        "Original-Recipient: rfc822;sales@acme-solar.example",
        "Final-Recipient: rfc822; anna.berg@acme-solar.example",
        "Action: failed (bad destination mailbox)",
        "Status: 5.0.0",
        "Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist.",
    )
    with no_failures():
        bounce = parse_bounce(dsn(block))
    assert bounce is not None
    recipient = bounce.recipients[0]
    assert (recipient.address, recipient.status, recipient.permanent) == (
        "sales@acme-solar.example",
        "5.1.1",
        True,
    )


def test_failed_with_transient_status_is_not_permanent() -> None:
    block = ("Final-Recipient: rfc822; a@acme-solar.example", "Action: failed", "Status: 4.4.7")
    with no_failures():
        bounce = parse_bounce(dsn(block))
    assert bounce is not None and not bounce.recipients[0].permanent and not bounce.permanent


# ------------------------------------------------------------------------------------------ hostile input


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_malformed_corpus(path: Path) -> None:
    raw = path.read_bytes()
    started = time.perf_counter()
    with no_failures():
        bounce = parse_bounce(raw)
    assert time.perf_counter() - started < 2.0
    check_shape(bounce)
    try:
        mail = parse(raw)
    except ParseError:
        return  # quarantined by the parse stage; the screen never sees it
    looks_like_bounce(mail.headers, str(mail.sender or ""), mail.subject)


BOUNCE_HEAD = (
    b"From: MAILER-DAEMON@mx.example\r\nReturn-Path: <>\r\nSubject: Undeliverable: x\r\n"
    b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n--b\r\n'
)
TEXT = st.text(st.characters(codec="utf-8"), max_size=200)
FIELD = st.one_of(
    TEXT,
    st.sampled_from(["failed", "delayed", "delivered", "relayed", "expanded", "error", "FAILED (x)", ""]),
    st.from_regex(r"\A[0-9]{1,2}\.[0-9]{1,4}\.[0-9]{1,4}( \(.{0,20}\))?\Z"),
    st.builds(lambda a: f"rfc822; {a}", st.emails()),
    st.builds(lambda a: f"rfc822;<{a}>", st.emails()),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(st.binary(max_size=4000), st.binary(max_size=4000).map(lambda b: BOUNCE_HEAD + b)))
def test_arbitrary_bytes(raw: bytes) -> None:
    with no_failures():
        check_shape(parse_bounce(raw))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.fixed_dictionaries(
            {},
            optional={
                name: FIELD
                for name in ("Final-Recipient", "Original-Recipient", "Action", "Status", "Diagnostic-Code")
            },
        ),
        max_size=4,
    ),
    TEXT,
    st.sampled_from(["", "base64"]),
)
def test_arbitrary_dsn_fields(blocks: list[dict[str, str]], notice: str, encoding: str) -> None:
    fields = [tuple(f"{name}: {value}" for name, value in block.items()) for block in blocks]
    with no_failures():
        check_shape(parse_bounce(dsn(*fields, notice=notice, encoding=encoding)))


@settings(max_examples=200, deadline=None)
@given(
    st.emails(),
    st.sampled_from(["failed", "delayed"]),
    st.from_regex(r"\A[45]\.[1-7]\.[1-9][0-9]?\Z"),
)
def test_well_formed_dsn_is_read_exactly(address: str, action: str, status: str) -> None:
    block = (f"Final-Recipient: rfc822; {address}", f"Action: {action}", f"Status: {status}")
    with no_failures():
        bounce = parse_bounce(dsn(block))
    assert bounce is not None and bounce.format == "dsn"
    [recipient] = bounce.recipients
    assert (recipient.address, recipient.action, recipient.status) == (address.lower(), action, status)
    assert recipient.permanent == (action == "failed" and status.startswith("5"))
