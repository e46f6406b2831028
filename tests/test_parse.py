"""Parsing: decoded headers, stable synthetic ids, safe attachments, limits, and totality on any bytes."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from maildesk.config import LimitsConfig
from maildesk.errors import ParseError
from maildesk.parse.filenames import sanitize_filename
from maildesk.parse.headers import decode_value, message_ids
from maildesk.parse.message import ParsedMail, parse, synthetic_message_id
from maildesk.parse.pool import ParsePool, parse_safely
from tests.conftest import CORPORA
from tests.mail import make_mail

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


def test_addresses_names_and_ids() -> None:
    raw = (
        b"From: =?utf-8?q?J=C3=B6rg_M=C3=BCller?= <Joerg.Mueller@Kunde.example>\r\n"
        b'To: support@helpdesk.example, "Desk, Team" <desk@helpdesk.example>\r\n'
        b"Cc: =?iso-8859-1?b?Suly9G1l?= <jerome@ex.example>\r\n"
        b"Subject: =?utf-8?b?QVc6IERydWNrZXIgZGVmZWt0?=\r\n"
        b"Date: Mon, 02 Nov 2026 10:00:00 +0100\r\n"
        b"Message-ID: <abc@kunde.example>\r\n"
        b"In-Reply-To: <p1@helpdesk.example>\r\n"
        b"References: <root@helpdesk.example>\r\n <p1@helpdesk.example>\r\n"
        b"\r\nHallo\r\n"
    )
    mail = parse(raw, now=NOW)
    assert mail.sender is not None and mail.sender.email == "joerg.mueller@kunde.example"
    assert mail.sender.name == "Jörg Müller"
    assert [a.email for a in mail.to] == ["support@helpdesk.example", "desk@helpdesk.example"]
    assert mail.cc[0].name == "Jérôme"
    assert mail.subject == "AW: Drucker defekt"
    assert mail.date == datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    assert mail.message_id == "abc@kunde.example" and not mail.synthetic_id
    assert mail.in_reply_to == ("p1@helpdesk.example",)
    assert mail.references == ("root@helpdesk.example", "p1@helpdesk.example")


def test_missing_message_id_gets_a_stable_synthetic_one() -> None:
    raw = b"From: a@b.example\r\nSubject: no id\r\n\r\nbody\r\n"
    first, second = parse(raw), parse(raw)
    assert first.synthetic_id and first.message_id == second.message_id == synthetic_message_id(raw)
    assert parse(raw + b"more").message_id != first.message_id


def test_implausible_dates_fall_back_to_arrival() -> None:
    raw = make_mail().replace(b"Date: Mon, 02 Nov 2026", b"Date: Mon, 02 Nov 2099")
    mail = parse(raw, now=NOW)
    assert mail.date is None and any("implausible Date" in d for d in mail.defects)


def test_attachments_are_decoded_and_named_safely() -> None:
    raw = make_mail(
        attachments=[
            ("../../../etc/passwd", b"root:x:0:0", "text/plain"),
            ("report.pdf", b"%PDF-1.4", "application/pdf"),
        ]
    )
    mail = parse(raw)
    names = [a.filename for a in mail.attachments]
    assert names == ["passwd", "report.pdf"]
    assert mail.attachments[1].payload == b"%PDF-1.4" and mail.attachments[1].size == 8
    limited = parse(raw, LimitsConfig(attachment=5))
    assert all(a.payload is None for a in limited.attachments)
    assert any("over the 5 limit" in d for d in limited.defects)


def test_html_only_mail_becomes_text() -> None:
    raw = (
        b"From: a@b.example\r\nSubject: html\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><body><p>First line</p><ul><li>one</li><li>two</li></ul></body></html>\r\n"
    )
    mail = parse(raw)
    assert "First line" in mail.text and "one" in mail.text and "<li>" not in mail.text
    assert mail.html is not None


def test_wrong_and_unknown_charsets_are_read() -> None:
    crafted = CORPORA / "malformed" / "crafted"
    for name in ("bad-charset.eml", "wrong-charset-8bit.eml", "utf16-body.eml", "raw-8bit-headers.eml"):
        mail = parse((crafted / name).read_bytes())
        assert isinstance(mail.text, str)
    assert parse((crafted / "raw-8bit-headers.eml").read_bytes()).subject == "Drücker kaputt"


def test_deep_nesting_is_a_parse_error_not_a_crash() -> None:
    raw = (CORPORA / "malformed" / "crafted" / "deep-nesting.eml").read_bytes()
    result = parse_safely(raw, LimitsConfig(), NOW)
    assert isinstance(result, ParseError)


def test_oversized_message_is_refused_before_parsing() -> None:
    result = parse_safely(b"x" * 1000, LimitsConfig(message=100), NOW)
    assert isinstance(result, ParseError) and "limits.message" in str(result)


def test_pool_gives_the_same_results_as_in_process() -> None:
    raws = [p.read_bytes() for p in sorted((CORPORA / "spamassassin-2002" / "hard_ham").iterdir())[:80]]
    pool = ParsePool(LimitsConfig(), processes=2)
    try:
        pooled = pool.parse_all(raws, NOW)
    finally:
        pool.close()
    local = [parse_safely(r, LimitsConfig(), NOW) for r in raws]
    assert [(p.message_id, p.subject, p.new_text) for p in pooled] == [
        (p.message_id, p.subject, p.new_text) for p in local
    ]


def test_header_helpers() -> None:
    assert decode_value("=?utf-8?B?!!!bad?= ok").endswith("ok")
    assert decode_value("a\r\n b\x00c") == "a b c"
    refs = " ".join(f"<r{i}@x>" for i in range(20000))
    ids = message_ids(refs)
    assert len(ids) == 100 and ids[0] == "r0@x" and ids[-1] == "r19999@x"
    assert sanitize_filename("con") == "_con"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_parser_never_raises_on_arbitrary_bytes(raw: bytes) -> None:
    result = parse_safely(raw, LimitsConfig(), NOW)
    assert isinstance(result, ParsedMail | ParseError)
    if isinstance(result, ParsedMail):
        assert "\r" not in result.subject and "\n" not in result.subject
        assert result.message_id


HEADER = st.sampled_from(
    [
        b"From",
        b"To",
        b"Cc",
        b"Subject",
        b"Date",
        b"Message-ID",
        b"References",
        b"In-Reply-To",
        b"Content-Type",
        b"Content-Transfer-Encoding",
        b"X-Junk",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(HEADER, st.binary(max_size=120)), max_size=12), st.binary(max_size=2000))
def test_parser_never_raises_on_mail_shaped_bytes(headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    raw = b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n" + body
    result = parse_safely(raw, LimitsConfig(), NOW)
    assert isinstance(result, ParsedMail | ParseError)
    if isinstance(result, ParsedMail):
        assert all(isinstance(a.email, str) and "@" in a.email for a in result.to + result.cc)


def test_format_flowed_is_unflowed() -> None:
    from maildesk.parse.message import unflow

    text = "This is a long \nline that was wrapped.\n> quoted and \n> wrapped\n-- \nsig"
    assert unflow(text) == "This is a long line that was wrapped.\n> quoted and wrapped\n-- \nsig"
    assert unflow("abc \ndef", delsp=True) == "abcdef"


def test_attached_message_is_not_body_text() -> None:
    inner = make_mail(sender="billing@vendor.example", subject="Reminder", body="Please pay invoice 42 now.")
    outer = (
        b"From: a@b.example\r\nSubject: Fwd: Reminder\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n--XX\r\n'
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nWe paid this already.\r\n--XX\r\n"
        b'Content-Type: message/rfc822\r\nContent-Disposition: attachment; filename="r.eml"\r\n\r\n'
        + inner
        + b"\r\n--XX--\r\n"
    )
    mail = parse(outer)
    assert "We paid this already." in mail.text and "invoice 42" not in mail.text


def test_a_parse_that_times_out_is_parked_and_the_pool_recovers() -> None:
    import time

    pool = ParsePool(LimitsConfig(), processes=2, timeout=0.5)
    pool.min_parallel = 1
    try:
        first = pool.submit([make_mail(message_id=f"a{i}@x") for i in range(4)], NOW)
        # a stuck parser process: stop one worker so its task cannot finish in time
        import os
        import signal

        pids = list(pool._pool()._processes)  # type: ignore[union-attr]
        os.kill(pids[0], signal.SIGSTOP)
        blocked = pool.submit([make_mail(message_id=f"b{i}@x") for i in range(6)], NOW)
        started = time.monotonic()
        results = first() + blocked()
        assert time.monotonic() - started < 30
        assert all(isinstance(r, ParsedMail | ParseError) for r in results)
        assert sum(isinstance(r, ParsedMail) for r in results) >= 8, "only what was stuck is given up"
        # a new pool serves the next batch
        again = pool.parse_all([make_mail(message_id=f"c{i}@x") for i in range(4)], NOW)
        assert all(isinstance(r, ParsedMail) for r in again)
    finally:
        pool.close(kill=True)
