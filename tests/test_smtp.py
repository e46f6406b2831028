"""SMTP intake against a real `maildesk serve` process, with smtplib as the client."""

from __future__ import annotations

import smtplib
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.mail import make_mail
from tests.smtp_server import ServeProcess, stored


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServeProcess]:
    process = ServeProcess(tmp_path)
    process.start()
    yield process
    if process.proc is not None and process.proc.poll() is None:
        assert process.terminate() == 0


def test_ehlo_advertises_size_8bitmime_and_smtputf8(server: ServeProcess) -> None:
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        code, _ = client.ehlo()
        assert code == 250
        assert client.has_extn("size") and client.esmtp_features["size"] == "200000"
        assert client.has_extn("8bitmime") and client.has_extn("smtputf8")


def test_desk_and_plus_addresses_are_accepted_and_become_tickets(server: ServeProcess) -> None:
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        assert client.sendmail("anna@customer.example", ["support@helpdesk.example"], make_mail()) == {}
        reply = make_mail(
            message_id="r1@customer.example", in_reply_to="q1@customer.example", subject="Re: Printer"
        )
        assert client.sendmail("anna@customer.example", ["Support+MD-1.abc@helpdesk.example"], reply) == {}
    rows = stored(server.db, expect=2)
    assert sorted(rows) == [("q1@customer.example", 1), ("r1@customer.example", 1)]
    with sqlite3.connect(server.db) as conn:
        (source_ref,) = conn.execute(
            "SELECT source_ref FROM inbound_mail WHERE source = 'smtp' LIMIT 1"
        ).fetchone()
    assert "anna@customer.example->support@helpdesk.example" in source_ref


def test_other_recipients_are_refused_no_open_relay(server: ServeProcess) -> None:
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        client.ehlo()
        client.mail("spammer@evil.example")
        for address in (
            "victim@else.example",
            "support@helpdesk.example.evil.example",
            "support@other.example",
            "postmaster@helpdesk.example",
        ):
            code, text = client.rcpt(address)
            assert code == 550, address
            assert b"relaying denied" in text
        client.rset()
        with pytest.raises(smtplib.SMTPRecipientsRefused):
            client.sendmail("spammer@evil.example", ["victim@else.example"], make_mail())
    assert stored(server.db, timeout=1, expect=1) == []


def test_oversize_mail_gets_552(server: ServeProcess) -> None:
    # CRLF line ends, as an MTA sends them (smtplib passes bytes through as they are)
    big = make_mail(body="x" * 70 + ("\n" + "x" * 70) * 4500).replace(b"\n", b"\r\n")
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        # declared with SIZE: refused at MAIL FROM
        with pytest.raises(smtplib.SMTPSenderRefused) as caught:
            client.sendmail("a@customer.example", ["support@helpdesk.example"], big)
        assert caught.value.smtp_code == 552
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        # not declared: refused after DATA
        client.ehlo()
        client.mail("a@customer.example")
        client.rcpt("support@helpdesk.example")
        code, _ = client.data(big)
        assert code == 552


def test_utf8_addresses(server: ServeProcess) -> None:
    raw = make_mail(message_id="u1@kunde.example").replace(
        b"anna@customer.example", "jörg@kunde.example".encode()
    )
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        assert (
            client.sendmail(
                "jörg@kunde.example", ["support@helpdesk.example"], raw, mail_options=["SMTPUTF8"]
            )
            == {}
        )
    assert stored(server.db) == [("u1@kunde.example", 1)]
    with sqlite3.connect(server.db) as conn:
        assert conn.execute("SELECT email FROM contact").fetchall() == [("jörg@kunde.example",)]


def test_sigterm_finishes_and_processes_what_was_spooled(server: ServeProcess) -> None:
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        for i in range(20):
            client.sendmail(
                "a@customer.example",
                ["support@helpdesk.example"],
                make_mail(message_id=f"t{i}@x", subject=f"Question {i}", sender=f"c{i}@x.example"),
            )
    assert server.terminate() == 0
    with sqlite3.connect(server.db) as conn:
        states = dict(conn.execute("SELECT state, COUNT(*) FROM inbound_mail GROUP BY state").fetchall())
    assert states == {"processed": 20}


def test_lmtp_mode(tmp_path: Path) -> None:
    process = ServeProcess(tmp_path, extra_config="lmtp = true\n")
    process.start()
    try:
        with smtplib.LMTP("127.0.0.1", process.port) as client:
            assert (
                client.sendmail(
                    "a@customer.example", ["support@helpdesk.example"], make_mail(message_id="l1@x")
                )
                == {}
            )
        # LMTP answers DATA once per recipient (RFC 2033); smtplib reads only one, so speak it by hand
        with socket.create_connection(("127.0.0.1", process.port)) as sock:
            reader = sock.makefile("rb")
            assert reader.readline().startswith(b"220")
            sock.sendall(b"LHLO test\r\n")
            while not reader.readline().startswith(b"250 "):
                pass
            for command in (
                b"MAIL FROM:<a@customer.example>",
                b"RCPT TO:<support@helpdesk.example>",
                b"RCPT TO:<help@helpdesk.example>",
                b"RCPT TO:<other@else.example>",
            ):
                sock.sendall(command + b"\r\n")
                reader.readline()
            sock.sendall(b"DATA\r\n")
            assert reader.readline().startswith(b"354")
            sock.sendall(make_mail(message_id="l2@x").replace(b"\n", b"\r\n") + b"\r\n.\r\n")
            replies = [reader.readline(), reader.readline()]
            assert all(r.startswith(b"250 ") for r in replies), replies
        rows = stored(process.db, expect=2)
        assert sorted(rows) == [("l1@x", 1), ("l2@x", 1)]
    finally:
        assert process.terminate() == 0


def _send_all(port: int, ids: list[str], accepted: list[str], lock: threading.Lock, deadline: float) -> None:
    """Send each message until the server says 250, reconnecting like a real MTA when it vanishes."""
    for mid in ids:
        raw = make_mail(message_id=mid, subject=f"Order {mid}", sender=f"{mid.split('@')[0]}@shop.example")
        while time.monotonic() < deadline:
            try:
                with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
                    if client.sendmail("c@shop.example", ["support@helpdesk.example"], raw) == {}:
                        with lock:
                            accepted.append(mid)
                        break
            except (OSError, smtplib.SMTPException):
                time.sleep(0.05)


def test_sigkill_twice_during_a_load_loses_and_duplicates_nothing(tmp_path: Path) -> None:
    process = ServeProcess(tmp_path)
    process.start()
    ids = [f"m{i}@load.example" for i in range(500)]
    accepted: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 240
    clients = [
        threading.Thread(target=_send_all, args=(process.port, ids[i::5], accepted, lock, deadline))
        for i in range(5)
    ]
    for thread in clients:
        thread.start()
    for fraction in (0.3, 0.6):
        while len(accepted) < fraction * len(ids) and time.monotonic() < deadline:
            time.sleep(0.01)
        process.kill()
        time.sleep(0.3)
        process.start()
    for thread in clients:
        thread.join()
    assert sorted(accepted) == sorted(ids), "every message was eventually acknowledged"
    rows = stored(process.db, timeout=60, expect=len(ids))
    assert process.terminate() == 0
    message_ids = [mid for mid, _ in rows]
    assert len(message_ids) == len(set(message_ids)), "no message is on a ticket twice"
    assert set(message_ids) == set(ids), "every acknowledged message is on a ticket"


def test_starttls_with_a_configured_certificate(tmp_path: Path) -> None:
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-subj",
            "/CN=localhost",
            "-days",
            "2",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )
    process = ServeProcess(
        tmp_path, extra_config=f'tls_cert = "{cert}"\ntls_key = "{key}"\nrequire_tls = true\n'
    )
    process.start()
    try:
        with smtplib.SMTP("127.0.0.1", process.port) as client:
            client.ehlo()
            assert client.has_extn("starttls")
            code, _ = client.mail("a@customer.example")
            assert code == 530, "mail before STARTTLS is refused when TLS is required"
            client.rset()
            client.starttls(context=ssl.create_default_context(cafile=str(cert)))
            assert (
                client.sendmail(
                    "a@customer.example", ["support@helpdesk.example"], make_mail(message_id="tls@x")
                )
                == {}
            )
        assert stored(process.db) == [("tls@x", 1)]
    finally:
        assert process.terminate() == 0
