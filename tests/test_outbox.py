"""The outbox against a real aiosmtpd relay on loopback, driven by `maildesk outbox flush --now`.

Messages are queued the way the pipeline queues them: a customer's mail is ingested and
acknowledged. The relay is aiosmtpd's `Controller` with a handler that counts every
Message-ID it accepts, so "delivered exactly once" is checked at the receiving end, and that
can be told to refuse (4xx or 5xx, at RCPT or at DATA). `--now` moves the clock, so retries
are driven without waiting.

Not tested, by design: a crash between the relay's 250 and the row's update sends that
message again on the next pass (at-least-once; the Message-ID stays the same, so a client
that deduplicates shows it once). `send_due` marks sent rows once per MARK_EVERY messages,
so at most that many can be sent twice. The composing tests at the end compare
`wire.compose` with the email package it stands in for.
"""

from __future__ import annotations

import collections
import email
import ssl
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8, default
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from maildesk.outbox import MAX_TRIES, RETRY_DELAYS
from maildesk.respond.wire import HeaderValue, WireMessage, _compose_with_email_package, compose
from tests.conftest import Desk
from tests.mail import make_mail
from tests.smtp_server import free_port

# the pipeline behaves the same on SQLite and on PostgreSQL
pytestmark = pytest.mark.both_databases

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday morning


class Relay:
    """An aiosmtpd handler that keeps what it accepts, counted by Message-ID, or refuses as told."""

    def __init__(self) -> None:
        self.ids: collections.Counter[str] = collections.Counter()
        self.messages: list[EmailMessage] = []
        self.refuse_rcpt = ""  # a reply line such as "451 4.3.0 try later"; empty: accept
        self.refuse_data = ""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refuse_data:
            return self.refuse_data
        message = email.message_from_bytes(envelope.original_content, policy=default)
        self.ids[str(message["Message-ID"]).strip("<>")] += 1
        self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"


@pytest.fixture
def desk(desk: Desk) -> Desk:
    """The shared test desk without agents or teams: a customer's mail queues its acknowledgement only."""
    desk.config.write_text(
        '[desk]\nname = "Example Support"\naddresses = ["support@helpdesk.example"]\n'
        f'ticket_prefix = "MD"\nsecret = "test-secret"\n[storage]\npath = "{desk.storage}"\n'
    )
    return desk


@pytest.fixture
def start_relay() -> Iterator[Callable[..., Controller]]:
    """Start an aiosmtpd relay on loopback (a given port, or a free one); stopped after the test."""
    started: list[Controller] = []

    def start(handler: Relay, port: int | None = None, **smtp: Any) -> Controller:
        controller = Controller(handler, hostname="127.0.0.1", port=port or free_port(), **smtp)
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


def at(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def configure(desk: Desk, outbound: str) -> None:
    desk.config.write_text(desk.config.read_text() + f"\n[outbound]\n{outbound}\n")


def customers(desk: Desk, count: int, now: datetime = T0) -> None:
    """`count` new tickets from as many customers, each acknowledged into the outbox."""
    folder = desk.root / "incoming"
    folder.mkdir(exist_ok=True)
    for i in range(count):
        raw = make_mail(
            sender=f"customer{i}@site{i}.example",
            name=f"Customer {i}",
            subject=f"Question number {i} about our invoice",
            message_id=f"q{i}@site{i}.example",
        )
        (folder / f"{i:03}.eml").write_bytes(raw)
    desk.ingest(folder, now=at(now))
    assert [r["kind"] for r in outbox_rows(desk)] == ["acknowledgement"] * count


def outbox_rows(desk: Desk) -> list[dict[str, Any]]:
    return desk.sql_dicts("SELECT * FROM outbound_mail ORDER BY id")


def flush(desk: Desk, now: datetime) -> str:
    result = desk.run("outbox", "flush", now=at(now))
    assert result.code in (0, 1), result.err  # 1: something failed for good
    return result.out.strip()


def next_try(row: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(row["next_try_at"]).replace(tzinfo=UTC)


def events(desk: Desk, ref: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in desk.show(ref)["events"] if e["kind"] == kind]


# ---------------------------------------------------------------------------- relay down, then up


def test_relay_down_keeps_everything_queued_then_delivers_each_message_once(
    desk: Desk, start_relay: Callable[..., Controller]
) -> None:
    port = free_port()  # nothing listens here yet
    configure(desk, f'relay = "smtp://127.0.0.1:{port}"')
    customers(desk, 25)

    now = T0
    for tries, delay in enumerate(RETRY_DELAYS[:3], start=1):
        assert flush(desk, now) == "0 sent, 25 to retry, 0 failed"
        rows = outbox_rows(desk)
        assert {(r["state"], r["tries"]) for r in rows} == {("queued", tries)}
        assert {next_try(r) for r in rows} == {now + timedelta(seconds=delay)}
        assert all(r["last_error"] for r in rows)
        # before the next try is due, a flush leaves the rows alone
        assert flush(desk, now + timedelta(seconds=delay - 1)) == "0 sent, 0 to retry, 0 failed"
        assert [r["tries"] for r in outbox_rows(desk)] == [tries] * 25
        now += timedelta(seconds=delay)

    relay = Relay()
    start_relay(relay, port=port)
    assert flush(desk, now) == "25 sent, 0 to retry, 0 failed"
    rows = outbox_rows(desk)
    assert {(r["state"], r["tries"], r["last_error"]) for r in rows} == {("sent", 4, "")}
    assert set(relay.ids) == {r["message_id"] for r in rows}
    assert set(relay.ids.values()) == {1}  # each of the 25 exactly once
    assert {str(m["To"]) for m in relay.messages} == {
        f"Customer {i} <customer{i}@site{i}.example>" for i in range(25)
    }

    assert flush(desk, now + timedelta(days=1)) == "0 sent, 0 to retry, 0 failed"
    assert sum(relay.ids.values()) == 25


# ---------------------------------------------------------------------------- refusals


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_temporary_refusal_keeps_the_message_queued_until_the_relay_accepts(
    desk: Desk, start_relay: Callable[..., Controller], stage: str
) -> None:
    relay = Relay()
    setattr(relay, f"refuse_{stage}", "451 4.3.0 try later")
    configure(desk, f'relay = "smtp://127.0.0.1:{start_relay(relay).port}"')
    customers(desk, 1)

    assert flush(desk, T0) == "0 sent, 1 to retry, 0 failed"
    (row,) = outbox_rows(desk)
    assert (row["state"], row["tries"], next_try(row)) == (
        "queued",
        1,
        T0 + timedelta(seconds=RETRY_DELAYS[0]),
    )
    assert "451" in row["last_error"] and "try later" in row["last_error"]
    assert not relay.ids

    setattr(relay, f"refuse_{stage}", "")
    assert flush(desk, next_try(row)) == "1 sent, 0 to retry, 0 failed"
    (row,) = outbox_rows(desk)
    assert (row["state"], row["tries"]) == ("sent", 2)
    assert relay.ids == {row["message_id"]: 1}
    assert not events(desk, "MD-1", "delivery_failed")


@pytest.mark.parametrize("stage", ["rcpt", "data"])
def test_a_permanent_refusal_parks_the_message_and_says_so_on_the_ticket(
    desk: Desk, start_relay: Callable[..., Controller], stage: str
) -> None:
    relay = Relay()
    setattr(relay, f"refuse_{stage}", "550 5.1.1 no such user")
    configure(desk, f'relay = "smtp://127.0.0.1:{start_relay(relay).port}"')
    customers(desk, 1)

    result = desk.run("outbox", "flush", now=at(T0))
    assert (result.code, result.out.strip()) == (1, "0 sent, 0 to retry, 1 failed")
    (row,) = outbox_rows(desk)
    assert (row["state"], row["tries"]) == ("failed", 1)
    assert "550" in row["last_error"] and "no such user" in row["last_error"]
    (event,) = events(desk, "MD-1", "delivery_failed")
    assert "no such user" in event["detail"] and "customer0@site0.example" in event["detail"]
    assert desk.sql("SELECT actor FROM event WHERE kind = 'delivery_failed'") == [("maildesk",)]

    # parked, never deleted and never tried again
    relay.refuse_rcpt = relay.refuse_data = ""
    assert flush(desk, T0 + timedelta(days=1)) == "0 sent, 0 to retry, 0 failed"
    assert outbox_rows(desk)[0]["state"] == "failed" and not relay.ids


def test_after_max_tries_temporary_refusals_park_the_message(
    desk: Desk, start_relay: Callable[..., Controller]
) -> None:
    relay = Relay()
    relay.refuse_data = "451 4.3.0 try later"
    configure(desk, f'relay = "smtp://127.0.0.1:{start_relay(relay).port}"')
    customers(desk, 1)

    now = T0
    for tries in range(1, MAX_TRIES):
        assert flush(desk, now) == "0 sent, 1 to retry, 0 failed"
        (row,) = outbox_rows(desk)
        assert (row["state"], row["tries"]) == ("queued", tries)
        now = next_try(row)
    assert now - T0 == timedelta(seconds=sum(RETRY_DELAYS[: MAX_TRIES - 1]))
    assert flush(desk, now) == "0 sent, 0 to retry, 1 failed"
    (row,) = outbox_rows(desk)
    assert (row["state"], row["tries"]) == ("failed", MAX_TRIES)
    assert "451" in row["last_error"]
    (event,) = events(desk, "MD-1", "delivery_failed")
    assert "try later" in event["detail"]
    assert not relay.ids


# ---------------------------------------------------------------------------- STARTTLS and AUTH


class Accounts:
    """An aiosmtpd authenticator with one account."""

    def __init__(self, login: str, password: str) -> None:
        self.login, self.password = login.encode(), password.encode()
        self.logins: list[str] = []

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.login
            and auth_data.password == self.password
        )
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1: (cert.pem, key.pem)."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", str(key),
         "-out", str(cert), "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def secure_relay(
    start_relay: Callable[..., Controller], certificate: tuple[Path, Path]
) -> tuple[Relay, Accounts, int]:
    """A relay that takes mail only after STARTTLS and a login as outbox@helpdesk.example."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    relay, accounts = Relay(), Accounts("outbox@helpdesk.example", "s3cret")
    controller = start_relay(
        relay,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        auth_require_tls=True,
        authenticator=accounts,
    )
    return relay, accounts, controller.port


def test_starttls_and_login_deliver(
    desk: Desk, secure_relay: tuple[Relay, Accounts, int], certificate: tuple[Path, Path]
) -> None:
    relay, accounts, port = secure_relay
    configure(
        desk,
        f'relay = "smtp://127.0.0.1:{port}"\nusername = "outbox@helpdesk.example"\n'
        f'password = "s3cret"\nca_file = "{certificate[0]}"',
    )
    customers(desk, 3)
    assert flush(desk, T0) == "3 sent, 0 to retry, 0 failed"
    assert accounts.logins == ["outbox@helpdesk.example"]  # one session for the whole pass
    assert set(relay.ids) == {r["message_id"] for r in outbox_rows(desk)}
    assert set(relay.ids.values()) == {1}


def test_smtps_delivers_over_implicit_tls(
    desk: Desk, start_relay: Callable[..., Controller], certificate: tuple[Path, Path]
) -> None:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*certificate)
    relay = Relay()
    port = start_relay(relay, ssl_context=context).port
    configure(desk, f'relay = "smtps://127.0.0.1:{port}"\nca_file = "{certificate[0]}"')
    customers(desk, 2)
    assert flush(desk, T0) == "2 sent, 0 to retry, 0 failed"
    assert set(relay.ids) == {r["message_id"] for r in outbox_rows(desk)}


def test_a_wrong_password_keeps_the_mail_queued(
    desk: Desk, secure_relay: tuple[Relay, Accounts, int], certificate: tuple[Path, Path]
) -> None:
    relay, accounts, port = secure_relay
    configure(
        desk,
        f'relay = "smtp://127.0.0.1:{port}"\nusername = "outbox@helpdesk.example"\n'
        f'password = "wrong"\nca_file = "{certificate[0]}"',
    )
    customers(desk, 2)
    # a 535 is the desk's configuration, not the message: retried (and logged), not parked
    result = desk.run("outbox", "flush", now=at(T0))
    assert (result.code, result.out.strip()) == (0, "0 sent, 2 to retry, 0 failed")
    # said once for the pass, at ERROR, and never with the password
    assert [line for line in result.err.splitlines() if "ERROR" in line and "535" in line] != []
    assert "wrong" not in result.err
    rows = outbox_rows(desk)
    assert {(r["state"], r["tries"]) for r in rows} == {("queued", 1)}
    assert all("535" in r["last_error"] for r in rows)
    assert not events(desk, "MD-1", "delivery_failed")
    assert not relay.ids and not accounts.logins

    desk.config.write_text(desk.config.read_text().replace('password = "wrong"', 'password = "s3cret"'))
    assert flush(desk, next_try(rows[0])) == "2 sent, 0 to retry, 0 failed"
    assert set(relay.ids.values()) == {1} and len(relay.ids) == 2


def test_an_untrusted_certificate_is_refused(desk: Desk, secure_relay: tuple[Relay, Accounts, int]) -> None:
    relay, accounts, port = secure_relay
    configure(
        desk, f'relay = "smtp://127.0.0.1:{port}"\nusername = "outbox@helpdesk.example"\npassword = "s3cret"'
    )
    customers(desk, 1)
    assert flush(desk, T0) == "0 sent, 1 to retry, 0 failed"
    (row,) = outbox_rows(desk)
    assert row["state"] == "queued" and "certificate" in row["last_error"].lower()
    assert not accounts.logins and not relay.ids


def test_ca_file_must_exist(desk: Desk) -> None:
    configure(desk, 'relay = "smtp://127.0.0.1:25"\nca_file = "/nonexistent/ca.pem"')
    result = desk.run("outbox", "flush")
    assert result.code == 1 and "outbound.ca_file" in result.err


# ---------------------------------------------------------------------------- the maildir default


def test_without_a_relay_mail_lands_in_the_outbox_maildir(desk: Desk) -> None:
    customers(desk, 1)  # the test config has no [outbound]: maildir:var/outbox next to it
    assert flush(desk, T0) == "1 sent, 0 to retry, 0 failed"
    folder = desk.root / "var" / "outbox"
    (path,) = (folder / "new").iterdir()
    assert not list((folder / "tmp").iterdir())
    (row,) = outbox_rows(desk)
    assert (row["state"], row["path"]) == ("sent", str(path))
    data = path.read_bytes()
    assert data == row["data"]  # the whole message, as queued
    message = email.message_from_bytes(data, policy=default)
    assert str(message["Message-ID"]).strip("<>") == row["message_id"]
    assert message.get_content_type() == "multipart/alternative"
    assert "opened ticket MD-1" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "<strong>MD-1</strong>" in message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert flush(desk, T0 + timedelta(hours=1)) == "0 sent, 0 to retry, 0 failed"
    assert len(list((folder / "new").iterdir())) == 1


# ---------------------------------------------------------------------------- composing


def headers_for(
    to: list[tuple[str, str]], subject: str, references: int = 1, name: str = "Example Support"
) -> list[tuple[str, HeaderValue]]:
    refs = [f"<{i}.{'x' * 30}@customer.example>" for i in range(references)]
    return [
        ("From", (name, "support@helpdesk.example")),
        ("To", to),
        ("Subject", subject),
        ("Date", "Mon, 02 Nov 2026 09:00:00 +0000"),
        ("Message-ID", "<20261102090000.abcdef.md-1@helpdesk.example>"),
        ("References", " ".join(refs)),
        ("Auto-Submitted", "auto-replied"),
    ]


TEXT = "Dear customer,\n\nline one = two  \n.\nFrom here on\n" + "long " * 40 + "\nKind regards\n"
HTML = "<p>Dear &amp; welcome</p>\n<p>--=_not-a-boundary</p>\n"

PLAIN_CASES = {
    "simple": headers_for([("Anna Berg", "anna@customer.example")], "[MD-1] Printer on floor 2"),
    "specials in names": headers_for(
        [
            ("O'Brien, Pat", "pat@customer.example"),
            ('Say "hi" (now)', "x@customer.example"),
            ("", "y@c.example"),
        ],
        "Re: [MD-2] a: b; c",
        name="Alice via Support",
    ),
    "long subject and many recipients": headers_for(
        [(f"Customer Number {i}", f"customer{i}@site{i}.example") for i in range(12)],
        "[MD-3] " + "word " * 45 + "end",
        references=20,
    ),
}


def parsed(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=default)  # type: ignore[return-value]


def same_message(a: EmailMessage, b: EmailMessage) -> None:
    """Equal to a reader: the same headers (decoded), addresses, and text and HTML content."""
    for name in ("From", "To", "Subject", "Date", "Message-ID", "References", "Auto-Submitted"):
        assert str(a[name]) == str(b[name]), name
    for name in ("From", "To"):
        assert [(x.display_name, x.addr_spec) for x in a[name].addresses] == [
            (x.display_name, x.addr_spec) for x in b[name].addresses
        ]
    for kind in ("plain", "html"):
        assert content(a, kind) == content(b, kind)


def content(message: EmailMessage, kind: str = "plain") -> str:
    """A body part's text, with LF line ends (a message read from CRLF bytes keeps CRLF)."""
    return message.get_body((kind,)).get_content().replace("\r\n", "\n")  # type: ignore[union-attr]


@pytest.mark.parametrize("case", sorted(PLAIN_CASES))
def test_compose_writes_what_the_email_package_would(case: str) -> None:
    headers = PLAIN_CASES[case]
    message = compose(headers, TEXT, HTML)
    assert isinstance(message, WireMessage)
    wire = message.as_bytes(policy=SMTP)
    assert message.as_bytes(policy=SMTPUTF8) == wire  # all ASCII: the same for an SMTPUTF8 relay
    reference = _compose_with_email_package(headers, TEXT, HTML)
    same_message(parsed(wire), parsed(reference.as_bytes(policy=SMTP)))
    # the message object reads like the bytes, and the email package generates it the same
    same_message(message, parsed(wire))
    same_message(parsed(EmailMessage.as_bytes(message, policy=SMTP)), parsed(wire))
    # on the wire: CRLF only, header lines folded at spaces to 78 where they can be
    assert b"\n" not in wire.replace(b"\r\n", b"") and b"\r" not in wire.replace(b"\r\n", b"")
    head = wire.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
    assert all(len(line) <= 78 for line in head if not line.startswith(b"Content-Type: multipart"))
    assert parsed(wire).get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in parsed(wire).iter_parts()] == ["text/plain", "text/html"]


def test_compose_without_html_is_one_text_part() -> None:
    message = compose(PLAIN_CASES["simple"], TEXT)
    back = parsed(message.as_bytes(policy=SMTP))
    assert back.get_content_type() == "text/plain" and not back.is_multipart()
    assert content(back) == content(_compose_with_email_package(PLAIN_CASES["simple"], TEXT, None)) == TEXT


@pytest.mark.parametrize(
    "headers",
    [
        headers_for([("Jürgen Müller", "juergen@customer.example")], "Grüße"),  # non-ASCII
        headers_for([("Anna", "anna@customer.example")], "=?utf-8?q?looks_encoded?="),  # reads as RFC 2047
        headers_for([("Anna", "anna@xn--mnchen-3ya.example")], "Tab\there"),  # a control character
    ],
)
def test_what_is_not_plain_ascii_is_left_to_the_email_package(headers: list[tuple[str, HeaderValue]]) -> None:
    message = compose(headers, TEXT, HTML)
    assert not isinstance(message, WireMessage)
    same_message(
        parsed(message.as_bytes(policy=SMTP)),
        parsed(_compose_with_email_package(headers, TEXT, HTML).as_bytes(policy=SMTP)),
    )


def test_a_header_cannot_be_injected() -> None:
    headers = headers_for([("Anna", "anna@customer.example")], "Help\r\nBcc: evil@x.example")
    with pytest.raises(ValueError, match="linefeed or carriage return"):
        compose(headers, TEXT, HTML)
    hostile = headers_for([("Anna\r\nBcc: evil@x.example", "anna@customer.example")], "Help")
    with pytest.raises(ValueError):
        compose(hostile, TEXT, HTML)


def test_a_changed_message_is_generated_again() -> None:
    message = compose(PLAIN_CASES["simple"], TEXT, HTML)
    first = message.as_bytes(policy=SMTP)
    assert message.as_bytes(policy=SMTP) is first  # unchanged: the bytes it was written as
    message["X-Extra"] = "1"
    assert b"X-Extra: 1\r\n" in message.as_bytes(policy=SMTP)
    message = compose(PLAIN_CASES["simple"], TEXT, HTML)
    message.get_body(("plain",)).set_content("changed text\n")  # type: ignore[union-attr]
    back = parsed(message.as_bytes(policy=SMTP))
    assert content(back) == "changed text\n"
    message = compose(PLAIN_CASES["simple"], TEXT, HTML)
    message.clear_content()
    assert b"Dear customer" not in message.as_bytes(policy=SMTP)
    message.set_content("only this\n")
    assert content(parsed(message.as_bytes(policy=SMTP))) == "only this\n"


def test_a_sent_batch_whose_mark_the_database_loses_is_marked_first_and_not_sent_again(
    desk: Desk, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The relay took three messages, then the database went away before the one UPDATE that
    marks them sent. The serving process remembers them: its next pass marks them before
    anything else and sends none of them again. (The database failing at exactly that
    instant is simulated: the one mock here.)"""
    import peewee

    from maildesk import outbox
    from maildesk.config import load_config
    from maildesk.desk import open_desk

    customers(desk, 3)
    opened = open_desk(load_config(desk.config), desk.db_url)
    real_mark, calls = outbox._mark, []

    def lost_once(*args: Any) -> None:
        calls.append(1)
        if len(calls) == 1:
            raise peewee.OperationalError("server closed the connection unexpectedly")
        real_mark(*args)

    monkeypatch.setattr(outbox, "_mark", lost_once)
    config = load_config(desk.config)
    with pytest.raises(peewee.OperationalError):
        outbox.send_due(config, opened.database, T0)
    assert [r["state"] for r in outbox_rows(desk)] == ["queued"] * 3  # sent, but not marked
    folder = desk.root / "var" / "outbox" / "new"
    assert len(list(folder.iterdir())) == 3
    again = outbox.send_due(config, opened.database, T0 + timedelta(minutes=1))
    assert again.sent == 0  # nothing went a second time
    assert len(list(folder.iterdir())) == 3
    assert [r["state"] for r in outbox_rows(desk)] == ["sent"] * 3
    opened.close()
