"""Forwarded mail: the original sender, subject, date and words inside a forward, per client form.

Each case in fixtures/emails/forwarded/ is a message written the way one client forwards
(see the README there); `<case>.expect.toml` says what must be found. The unit tests below
cover the line-level variants (bold labels, address forms, invisible characters) and dates.
"""

from __future__ import annotations

import dataclasses
import time
import tomllib
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maildesk.errors import ParseError
from maildesk.parse.forwarded import Forwarded, find_forwarded, parse_date
from maildesk.parse.message import Address, ParsedMail, parse
from tests.conftest import FIXTURES
from tests.mail import make_mail

CASES = sorted((FIXTURES / "forwarded").glob("*.eml"))
# Forwards among the client fixtures (fixtures/emails/clients/): the sender each one forwards.
CLIENT_FORWARDS = {
    "apple-mail-forward-begin-forwarded": ("apple", "it-service@m1crosoft-login.example"),
    "gmail-forwarded-with-pdf": ("gmail", "studio@conti-commercialisti.example"),
    "outlook-desktop-de-wg-forward": ("outlook", "jan.petersen@stadtwerke-nord.example"),
    "outlook-desktop-fr-tr-forward": ("outlook", "alerts@sunview-portal.example"),
    "thunderbird-forward-as-attachment": ("rfc822", "billing@helpdesk.example"),
}


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("path", CASES, ids=lambda p: p.stem)
def test_forwarded_fixture(path: Path) -> None:
    expect = tomllib.loads(path.with_name(path.stem + ".expect.toml").read_text(encoding="utf-8"))
    raw = path.read_bytes()
    found = find_forwarded(parse(raw), raw)
    if not expect["found"]:
        assert found is None, found
        return
    assert found is not None
    assert found.form == expect["form"]
    assert found.sender.email == expect["sender"]
    assert found.sender.name == expect["name"]
    assert found.subject == expect["subject"]
    if "date" in expect:
        assert found.date is not None and found.date.isoformat() == expect["date"]
        assert found.date.tzinfo is UTC
    text, note = flat(found.text), flat(found.note)
    for phrase in expect.get("text_contains", []):
        assert phrase in text, phrase
    for phrase in expect.get("text_excludes", []):
        assert phrase not in text, phrase
    for phrase in expect.get("note_contains", []):
        assert phrase in note, phrase


def test_fixtures_cover_every_form_and_language() -> None:
    forms = set()
    for path in CASES:
        expect = tomllib.loads(path.with_name(path.stem + ".expect.toml").read_text(encoding="utf-8"))
        forms.add(expect.get("form"))
    assert {"gmail", "outlook", "apple", "thunderbird", "rfc822", "generic"} <= forms
    assert len(CASES) >= 14
    names = " ".join(p.stem for p in CASES)
    for language in ("-en-", "-de-", "-fr-", "-es-", "-nl-"):
        assert language in names, language


def test_client_fixtures_forwards_and_replies() -> None:
    """The forwards among the parser's client fixtures are found; none of their replies is."""
    for path in sorted((FIXTURES / "clients").glob("*.eml")):
        raw = path.read_bytes()
        found = find_forwarded(parse(raw), raw)
        if path.stem in CLIENT_FORWARDS:
            assert found is not None, path.stem
            assert (found.form, found.sender.email) == CLIENT_FORWARDS[path.stem]
        else:
            assert found is None, (path.stem, found)


# -- line-level variants ------------------------------------------------------------------------

BASE = parse(make_mail(sender="agent@helpdesk.example", subject="Fwd: Printer", body="x"))


def mail(text: str, subject: str = "Fwd: Printer") -> ParsedMail:
    return dataclasses.replace(BASE, text=text, subject=subject)


def forwarded(text: str, subject: str = "Fwd: Printer") -> Forwarded | None:
    return find_forwarded(mail(text, subject))


GMAIL = (
    "Please log this.\n\n---------- Forwarded message ---------\n{from_line}\n"
    "Date: Mon, 2 Nov 2026 at 17:41\nSubject: Printer jammed\nTo: <agent@helpdesk.example>\n\n\n"
    "The printer on floor 2 is jammed.\n"
)


@pytest.mark.parametrize(
    ("from_line", "email", "name"),
    [
        ("From: Anna Berg <Anna.Berg@Customer.example>", "anna.berg@customer.example", "Anna Berg"),
        ("*From:* *Anna Berg* <anna.berg@customer.example>", "anna.berg@customer.example", "Anna Berg"),
        ('From: "Berg, Anna" <anna.berg@customer.example>', "anna.berg@customer.example", "Berg, Anna"),
        ("From: 'Anna Berg' <anna.berg@customer.example>", "anna.berg@customer.example", "Anna Berg"),
        ("From: anna.berg@customer.example", "anna.berg@customer.example", ""),
        ("From: <anna.berg@customer.example>", "anna.berg@customer.example", ""),
        ("From: Anna Berg [mailto:anna.berg@customer.example]", "anna.berg@customer.example", "Anna Berg"),
        ("From: Anna Berg <mailto:anna.berg@customer.example>", "anna.berg@customer.example", "Anna Berg"),
        ("From: Anna Berg (anna.berg@customer.example)", "anna.berg@customer.example", "Anna Berg"),
        ("From: anna.berg@customer.example <anna.berg@customer.example>", "anna.berg@customer.example", ""),
        (
            "From:\u00a0Anna\u00a0Berg <anna.berg@customer.example>\u200e",
            "anna.berg@customer.example",
            "Anna Berg",
        ),
        ("\u200bFrom: Anna Berg <\nanna.berg@customer.example>", "anna.berg@customer.example", "Anna Berg"),
        ("**From:** Anna Berg <anna.berg@customer.example>", "anna.berg@customer.example", "Anna Berg"),
    ],
)
def test_sender_forms(from_line: str, email: str, name: str) -> None:
    found = forwarded(GMAIL.format(from_line=from_line))
    assert found is not None
    assert (found.sender.email, found.sender.name) == (email, name)
    assert found.subject == "Printer jammed"
    assert found.text == "The printer on floor 2 is jammed."
    assert found.note == "Please log this."


def test_a_name_without_an_address_is_no_sender_unless_the_block_gives_one() -> None:
    assert forwarded(GMAIL.format(from_line="From: Anna Berg")) is None
    with_reply_to = GMAIL.format(from_line="From: Anna Berg\nReply-To: anna.berg@customer.example")
    found = forwarded(with_reply_to)
    assert found is not None and found.sender.email == "anna.berg@customer.example"
    assert found.sender.name == "Anna Berg"


OUTLOOK = (
    "Please log this.\n\n{rule}{from_label} Anna Berg <anna.berg@customer.example>\n"
    "{sent} Monday, November 2, 2026 3:47 PM\n{to} Agent <agent@helpdesk.example>\n"
    "{subject} Printer jammed\n\nThe printer is jammed.\n"
)


@pytest.mark.parametrize(
    ("subject", "labels", "rule"),
    [
        ("FW: Printer jammed", ("From:", "Sent:", "To:", "Subject:"), ""),
        ("Fw: Printer jammed", ("From:", "Sent:", "To:", "Subject:"), "_" * 32 + "\n"),
        ("FW: Printer jammed", ("From:", "Sent:", "To:", "Subject:"), "-----Original Message-----\n"),
        (
            "WG: Printer jammed",
            ("Von:", "Gesendet:", "An:", "Betreff:"),
            "-----Ursprüngliche Nachricht-----\n",
        ),
        ("TR: Printer jammed", ("De :", "Envoyé :", "À :", "Objet :"), ""),
        ("RV: Printer jammed", ("De:", "Enviado el:", "Para:", "Asunto:"), ""),
        ("Doorst: Printer jammed", ("Van:", "Verzonden:", "Aan:", "Onderwerp:"), ""),
        ("I: Printer jammed", ("Da:", "Inviato:", "A:", "Oggetto:"), ""),
        ("[EXTERNAL] FW: Printer jammed", ("From:", "Sent:", "To:", "Subject:"), ""),
        ("VS: Printer jammed", ("Fra:", "Sendt:", "Til:", "Emne:"), ""),
    ],
)
def test_outlook_blocks_under_a_forward_prefix(subject: str, labels: tuple[str, ...], rule: str) -> None:
    text = OUTLOOK.format(rule=rule, from_label=labels[0], sent=labels[1], to=labels[2], subject=labels[3])
    found = forwarded(text, subject)
    assert found is not None and found.form == "outlook"
    assert found.sender.email == "anna.berg@customer.example"
    assert found.text == "The printer is jammed." and found.note == "Please log this."
    assert found.date == datetime(2026, 11, 2, 15, 47, tzinfo=UTC)


@pytest.mark.parametrize(
    "subject", ["RE: Printer jammed", "AW: Printer jammed", "Printer jammed", "Re: FW: x"]
)
def test_outlook_blocks_under_other_subjects_are_reply_history(subject: str) -> None:
    text = OUTLOOK.format(rule="", from_label="From:", sent="Sent:", to="To:", subject="Subject:")
    assert forwarded(text, subject) is None


def test_finnish_vs_is_a_reply() -> None:
    text = OUTLOOK.format(
        rule="", from_label="Lähettäjä:", sent="Lähetetty:", to="Vastaanottaja:", subject="Aihe:"
    )
    assert forwarded(text, "VS: Printer jammed") is None


@pytest.mark.parametrize(
    "text",
    [
        # an answer above quoted history that itself holds a forward
        "Thanks!\n\nOn Mon, 2 Nov 2026 at 17:41, Agent <agent@helpdesk.example> wrote:\n"
        "> ---------- Forwarded message ---------\n> From: Anna <anna@customer.example>\n"
        "> Date: Mon, 2 Nov 2026\n> Subject: x\n",
        # an unquoted attribution above an explicit forward further down
        "Thanks!\n\nOn Mon, 2 Nov 2026 at 17:41, Agent <agent@helpdesk.example> wrote:\nOld text\n"
        "---------- Forwarded message ---------\nFrom: Anna <anna@customer.example>\nDate: Mon, 2 Nov 2026\n",
        # a marker without a header block
        "---------- Forwarded message ---------\nsee attachment\n",
        # prose
        "I forwarded the message to my colleague. From: me. Date: today.\nSubject: printers\n",
        "",
    ],
)
def test_not_a_forward(text: str) -> None:
    assert forwarded(text) is None


def test_apple_quoted_marker_and_headers() -> None:
    text = (
        "FYI\n\n> Begin forwarded message:\n>\n> From: Anna Berg <anna.berg@customer.example>\n"
        "> Subject: Printer jammed\n> Date: 2 November 2026 at 17:41:12 CET\n"
        "> To: agent@helpdesk.example\n>\n"
        "> The printer is jammed.\n>\n>> On 1 Nov 2026, at 09:00, Agent wrote:\n>> Older text\n"
    )
    found = forwarded(text)
    assert found is not None and found.form == "apple"
    assert found.text == "The printer is jammed." and found.note == "FYI"
    assert found.date == datetime(2026, 11, 2, 16, 41, 12, tzinfo=UTC)


def test_thunderbird_subject_first_and_forward_without_note() -> None:
    text = (
        "-------- Forwarded Message --------\nSubject: \tPrinter jammed\n"
        "Date: \tMon, 2 Nov 2026 17:41:12 +0100\n"
        "From: \tAnna Berg <anna.berg@customer.example>\nTo: \tagent@helpdesk.example\n\n\n\nJammed again.\n"
    )
    found = forwarded(text)
    assert found is not None and found.form == "thunderbird" and found.note == ""
    assert found.text == "Jammed again."


def test_deeper_forwards_are_followed_only_through_forwards_without_words() -> None:
    inner = (
        "---------- Forwarded message ---------\nFrom: Anna <anna@customer.example>\n"
        "Date: Mon, 2 Nov 2026 at 10:00\n"
        "Subject: Printer\nTo: <bob@helpdesk.example>\n\n\nJammed.\n"
    )
    outer = (
        "---------- Forwarded message ---------\nFrom: Bob <bob@helpdesk.example>\n"
        "Date: Mon, 2 Nov 2026 at 11:00\nSubject: Fwd: Printer\nTo: <agent@helpdesk.example>\n\n\n"
    )
    silent = forwarded("Please log.\n\n" + outer + inner)
    assert (
        silent is not None and silent.sender.email == "anna@customer.example" and silent.note == "Please log."
    )
    commented = forwarded("Please log.\n\n" + outer + "Anna's alert, see below.\n\n" + inner)
    assert commented is not None and commented.sender.email == "bob@helpdesk.example"
    assert commented.text == "Anna's alert, see below."


def test_attached_message_without_disposition_is_read_from_raw() -> None:
    inner = EmailMessage()
    inner["From"], inner["Subject"] = "Anna Berg <anna@customer.example>", "Printer"
    inner["Date"] = "Mon, 2 Nov 2026 17:41:12 +0100"
    inner.set_content(
        "Jammed again.\n\nOn Sun, 1 Nov 2026 at 10:00, Agent <agent@helpdesk.example> wrote:\n> Old\n"
    )
    outer = EmailMessage()
    outer["From"], outer["Subject"] = "agent@helpdesk.example", "Fwd: Printer"
    outer.set_content("See attached.")
    outer.add_attachment(inner)
    del outer.get_payload()[1]["Content-Disposition"]  # as Mutt's mime_forward writes it: inline
    raw = bytes(outer)
    assert find_forwarded(parse(raw)) is None  # no attachment to the parser: the raw bytes are needed
    found = find_forwarded(parse(raw), raw)
    assert found is not None and found.form == "rfc822" and found.text == "Jammed again."
    assert found.sender == Address("anna@customer.example", "Anna Berg") and found.note == "See attached."
    assert found.date == datetime(2026, 11, 2, 16, 41, 12, tzinfo=UTC)


def test_attached_message_in_base64() -> None:
    inner = make_mail(
        sender="anna@customer.example", name="Anna Berg", subject="Printer", body="Jammed again."
    )
    outer = make_mail(
        sender="agent@helpdesk.example", subject="Fwd: Printer", body="See attached.",
        attachments=[("printer.eml", inner, "message/rfc822")],
    )  # fmt: skip
    assert b"Content-Transfer-Encoding: base64" in outer
    found = find_forwarded(parse(outer))
    assert found is not None and found.form == "rfc822" and found.text == "Jammed again."
    assert found.sender == Address("anna@customer.example", "Anna Berg")


def test_a_reply_with_a_message_attached_is_no_forward() -> None:
    inner = make_mail(sender="anna@customer.example", subject="Printer", body="Jammed again.")
    outer = make_mail(
        subject="Re: Printer", body="Here it is.", attachments=[("p.eml", inner, "message/rfc822")]
    )
    assert find_forwarded(parse(outer), outer) is None
    plain = make_mail(subject="Printer", body="Printer is jammed.")
    assert find_forwarded(parse(plain), plain) is None


# -- dates --------------------------------------------------------------------------------------

CET = timedelta(hours=1)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mon, 2 Nov 2026 06:00:04 +0100", "2026-11-02T05:00:04"),
        ("Mon, Nov 2, 2026 at 5:41 PM", "2026-11-02T16:41:00"),
        ("Monday, November 2, 2026 3:47 PM", "2026-11-02T14:47:00"),
        ("Tuesday, November 3, 2026 12:02:11 AM", "2026-11-02T23:02:11"),
        ("Mo., 2. Nov. 2026 um 17:41 Uhr", "2026-11-02T16:41:00"),
        ("Montag, 2. November 2026 15:47", "2026-11-02T14:47:00"),
        ("2. November 2026 um 08:12:44 MEZ", "2026-11-02T07:12:44"),
        ("mar. 3 nov. 2026 à 10:02", "2026-11-03T09:02:00"),
        ("mardi 3 novembre 2026 02:14", "2026-11-03T01:14:00"),
        ("2 novembre 2026 à 17:41:12 UTC+1", "2026-11-02T16:41:12"),
        ("martes, 3 de noviembre de 2026 10:02", "2026-11-03T09:02:00"),
        ("lun, 2 nov 2026 a las 17:41", "2026-11-02T16:41:00"),
        ("maandag 2 november 2026 15:47", "2026-11-02T14:47:00"),
        ("ma 2 nov 2026 om 17:41", "2026-11-02T16:41:00"),
        ("3 November 2026 at 08:12:44 CET", "2026-11-03T07:12:44"),
        ("On Monday, November 2nd, 2026 at 10:00 AM", "2026-11-02T09:00:00"),
        ("02.11.2026 15:47", "2026-11-02T14:47:00"),
        ("2026-11-02 10:02", "2026-11-02T09:02:00"),
        ("02/11/2026 10:02", "2026-11-02T09:02:00"),
        ("Mon, 2 Nov 2026 at 17:41 GMT-5", "2026-11-02T22:41:00"),
    ],
)
def test_dates(value: str, expected: str) -> None:
    parsed = parse_date(value, CET)
    assert parsed is not None and parsed.tzinfo is UTC
    assert parsed.replace(tzinfo=None).isoformat() == expected


def test_dates_month_first_when_asked_and_none_when_unreadable() -> None:
    assert parse_date("11/2/26 5:41 PM (GMT-05:00)", month_first=True) == datetime(
        2026, 11, 2, 22, 41, tzinfo=UTC
    )
    assert parse_date("Mon, 2 Nov 2026 at 17:41") == datetime(
        2026, 11, 2, 17, 41, tzinfo=UTC
    )  # no offset: UTC
    for value in ("", "today", "99/99/9999 99:99", "31. Februar 2026 10:00", "1 Nov 1870 10:00"):
        assert parse_date(value) is None


# -- totality and cost --------------------------------------------------------------------------

PIECES = st.sampled_from(
    [
        "---------- Forwarded message ---------", "-------- Forwarded Message --------",
        "Begin forwarded message:", "-----Original Message-----", "_" * 32,
        "From: Anna <anna@customer.example>", "From: anna@x.example", "Von:", "De :",
        "Date: Mon, 2 Nov 2026 at 17:41", "Sent: 99/99/9999 25:61 PM", "Subject: x", "To: <a@b.c>",
        "Reply-To: b@c.example", "> ", ">> From: a@b.c", "On Mon, 2 Nov 2026, A <a@b.c> wrote:", "",
        "\u00a0", "*", "----- End forwarded message -----", "----- Forwarded message from A <a@b.c> -----",
        "Betreff: | y",
    ]
)  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=2000), st.text(max_size=60))
def test_never_raises_on_any_text(text: str, subject: str) -> None:
    found = forwarded(text, subject)
    assert found is None or found.sender.email


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.one_of(PIECES, st.text(max_size=40)), max_size=40), st.sampled_from(["Fwd: x", "RE: x", "x"])
)
def test_never_raises_on_forward_like_text(pieces: list[str], subject: str) -> None:
    found = forwarded("\n".join(pieces), subject)
    if found is not None:
        assert "@" in found.sender.email and found.form in (
            "gmail",
            "outlook",
            "apple",
            "thunderbird",
            "generic",
        )


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_characters=":：\x00"), max_size=2000))
def test_no_header_block_no_forward(text: str) -> None:
    assert forwarded(text) is None


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=600), st.sampled_from([b"", b"Content-Transfer-Encoding: base64\r\n"]))
def test_never_raises_on_any_attached_message(payload: bytes, encoding: bytes) -> None:
    raw = (
        b"From: agent@helpdesk.example\r\nSubject: Fwd: x\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee\r\n'
        b"--b\r\nContent-Type: message/rfc822\r\n" + encoding + b"\r\n" + payload + b"\r\n--b--\r\n"
    )
    try:
        mail = parse(raw)
    except ParseError:
        return
    found = find_forwarded(mail, raw)
    assert found is None or (found.form == "rfc822" and found.sender.email)


def test_hostile_text_costs_linear_time() -> None:
    """A few hundred kB of lines that each start a header block or a marker read stay cheap."""
    bodies = [
        "From: a@b.example\nDate: 1\n" * 10_000,
        "---------- Forwarded message ---------\n" * 10_000,
        ">" * 100_000 + " Begin forwarded message:\n",
        "".join(">" * depth + " x\n" for depth in range(700)),
        "Begin forwarded message:\n\n" * 10_000 + "From: a@b.example\nSubject: s\n\nx\n",
        "Note: not a header\n" * 10_000,
    ]
    for body in bodies:
        started = time.perf_counter()
        forwarded(body)
        assert time.perf_counter() - started < 1.0
