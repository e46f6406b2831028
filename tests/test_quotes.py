"""Plain-text quote and signature stripping, reply extraction, and the third-party score."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maildesk.parse.quotes import (
    MarkerKind,
    classify_marker,
    header_field,
    is_attribution,
    new_text,
    strip_quotes,
    strip_signature,
)

BENCH = Path(__file__).resolve().parent.parent / "bench"
CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora" / "reply-fixtures"

NEW = "Thanks, the export works again."

# -- top posting, by client ----------------------------------------------------------------------

TOP_POSTED = {
    "gmail": (
        "On Tue, Nov 3, 2026 at 10:02 AM Support Desk <support@helpdesk.example> wrote:\n\n"
        "> Could you try the export again?\n>\n> Regards,\n> Support\n"
    ),
    "gmail attribution wrapped inside the address": (
        "On Tue, Nov 3, 2026 at 10:02 AM Support Desk <\nsupport@helpdesk.example> wrote:\n\n> Try again?\n"
    ),
    "gmail attribution wrapped before wrote": (
        "On Tue, Nov 3, 2026 at 10:02 AM, Support Desk\n<support@helpdesk.example>\nwrote:\n\n> Try again?\n"
    ),
    "gmail german": "Am Di., 3. Nov. 2026 um 10:02 Uhr schrieb Support <s@desk.example>:\n\n> Hallo\n",
    "gmail german wrapped": "Am Di., 3. Nov. 2026 um 10:02 Uhr schrieb Support <\ns@desk.example>:\n> Hi\n",
    "gmail french": "Le mar. 3 nov. 2026 à 10:02, Support <s@desk.example> a écrit :\n\n> Bonjour\n",
    "gmail spanish": "El mar, 3 nov 2026 a las 10:02, Support (<s@desk.example>) escribió:\n\n> Hola\n",
    "gmail italian": "Il giorno mar 3 nov 2026 alle ore 10:02 Support <s@desk.example> ha scritto:\n> Ciao\n",
    "gmail dutch": "Op di 3 nov. 2026 om 10:02 schreef Support <support@helpdesk.example>:\n\n> Hallo\n",
    "gmail polish": "W dniu 3.11.2026 o 10:02, Support <support@helpdesk.example> pisze:\n> Cześć\n",
    "russian": "3 ноября 2026 г., в 10:02, Support <support@helpdesk.example> написал(а):\n\n> Привет\n",
    "date then name": "2026-11-03 10:02 GMT+01:00 Support <support@helpdesk.example>:\n\n> Hi\n",
    "name wrote": "Support Desk wrote:\n> Hi\n",
    "horde quoting": "Quoting Support Desk <support@helpdesk.example>:\n\n> Hi\n",
    "apple mail": "On Nov 3, 2026, at 10:02 AM, Support Desk <support@helpdesk.example> wrote:\n\n> Hi\n",
    "apple mail quoted attribution": (
        "> On 3 Nov 2026, at 10:02, Support Desk <support@helpdesk.example> wrote:\n>\n> Hi\n"
    ),
    "thunderbird": "On 03.11.26 10:02, Support Desk wrote:\n> Hi\n",
    "outlook": (
        "From: Support Desk <support@helpdesk.example>\nSent: Tuesday, November 3, 2026 10:02 AM\n"
        "To: Customer <customer@example.com>\nSubject: RE: [MD-1042] Export fails\n\nHello,\n\n"
        "could you try again?\n"
    ),
    "outlook german": (
        "Von: Support Desk <support@helpdesk.example>\nGesendet: Dienstag, 3. November 2026 10:02\n"
        "An: Kunde <customer@example.com>\nBetreff: AW: Export\n\nHallo\n"
    ),
    "outlook french": (
        "De : Support Desk <support@helpdesk.example>\nEnvoyé : mardi 3 novembre 2026 10:02\n"
        "À : Client <customer@example.com>\nObjet : RE: Export\n\nBonjour\n"
    ),
    "outlook spanish": (
        "De: Support Desk <support@helpdesk.example>\nEnviado: martes, 3 de noviembre de 2026 10:02\n"
        "Para: Cliente <customer@example.com>\nAsunto: RE: Export\n\nHola\n"
    ),
    "outlook italian": (
        "Da: Support Desk <support@helpdesk.example>\nInviato: martedì 3 novembre 2026 10:02\n"
        "A: Cliente <customer@example.com>\nOggetto: R: Export\n\nCiao\n"
    ),
    "outlook dutch": (
        "Van: Support Desk <support@helpdesk.example>\nVerzonden: dinsdag 3 november 2026 10:02\n"
        "Aan: Klant <customer@example.com>\nOnderwerp: RE: Export\n\nHallo\n"
    ),
    "outlook with date and cc": (
        "From: Support Desk\nDate: Tue, 3 Nov 2026 10:02\nTo: customer@example.com\n"
        "Cc: boss@example.com\nSubject: Export\n\nHello\n"
    ),
    "outlook web with rule": (
        "________________________________\nFrom: Support Desk <support@helpdesk.example>\n"
        "Sent: Tuesday, November 3, 2026 10:02 AM\nTo: customer@example.com\nSubject: Export\n\nHello\n"
    ),
    "outlook bold headers from html": (
        " ------------------------------\n\n*From:* Support Desk [mailto:support@helpdesk.example]\n"
        "*Sent:* Tuesday, November 3, 2026 10:02 AM\n*To:* customer@example.com\n*Subject:* Export\n\nHi\n"
    ),
    "outlook wrapped recipients": (
        "From: Support Desk <support@helpdesk.example>\nSent: Tuesday, November 3, 2026 10:02 AM\n"
        "To: a@example.com; b@example.com;\n    c@example.com\nSubject: Export\n\nHello\n"
    ),
    "original message": "-----Original Message-----\nFrom: support@helpdesk.example\n\nHello\n",
    "original message spaced": "----- Original Message -----\nFrom: support@helpdesk.example\nHello\n",
    "ursprüngliche nachricht": "-----Ursprüngliche Nachricht-----\nVon: support@helpdesk.example\nHallo\n",
    "message d'origine": "-------- Message d'origine --------\nDe : support@helpdesk.example\nBonjour\n",
    "android original message": (
        "-------- Original message --------\nFrom: Support <support@helpdesk.example>\n"
        "Date: 11/3/26 10:02 (GMT+01:00)\nTo: customer@example.com\nSubject: Re: Export\n\nHello\n"
    ),
    "yahoo": (
        "\n\n----- Original Message -----\nFrom: Support <support@helpdesk.example>\n"
        "To: customer@example.com\nSent: Tuesday, November 3, 2026 10:02 AM\nSubject: Export\n\nHi\n"
    ),
    "zoho": "---- On Tue, 03 Nov 2026 10:02:00 +0100 Support <s@desk.example> wrote ----\n\nHello\n",
    "chinese": "在 2026年11月3日 10:02，Support <s@desk.example> 写道：\n\n旧的内容\n",
    "japanese": "2026年11月3日(火) 10:02 Support <s@desk.example>:\n> こんにちは\n",
    "korean": "2026년 11월 3일 (화) 오전 10:02, Support <s@desk.example>님이 작성:\n> 안녕\n",
    "swedish": "Den tis 3 nov. 2026 kl 10:02 skrev Support <s@desk.example>:\n> Hej\n",
    "czech": "Dne út 3. 11. 2026 10:02 Support <s@desk.example> napsal(a):\n> Ahoj\n",
    "portuguese": "Em ter., 3 de nov. de 2026 às 10:02, Support <s@desk.example> escreveu:\n> Olá\n",
    "turkish": "Support <s@desk.example>, 3 Kas 2026 Sal, 10:02 tarihinde şunu yazdı:\n> Merhaba\n",
    "hungarian": "Support <s@desk.example> ezt írta (időpont: 2026. nov. 3., K, 10:02):\n> Szia\n",
    "hebrew, direction marks": "\u202bבתאריך 3 בנוב׳ 2026 ב-10:02 מאת Support <s@desk.example>:\u202c\n>\n",
    "lotus notes": "Support/ACME wrote on 11/03/2026 10:02:00 AM:\n\nHello\n",
    "outlook for mac": (
        "From: Support <s@desk.example>\nDate: Tuesday, 3 November 2026 at 10:02\nTo: Customer\n"
        "Subject: Export\n\nHello\n"
    ),
    "outlook for mac german": (
        "Von: Support <s@desk.example>\nDatum: Dienstag, 3. November 2026 um 10:02\nAn: Kunde\n"
        "Betreff: Export\n\nHallo\n"
    ),
    "attribution over unquoted history": (
        "On Tue, Nov 3, 2026 at 10:02 AM Support <support@helpdesk.example> wrote:\n\n"
        "Old text that the client did not quote.\n"
    ),
}


@pytest.mark.parametrize("history", TOP_POSTED.values(), ids=TOP_POSTED.keys())
def test_top_posted_reply_keeps_only_the_new_text(history: str) -> None:
    assert strip_quotes(f"{NEW}\n\n{history}") == NEW


@pytest.mark.parametrize("history", TOP_POSTED.values(), ids=TOP_POSTED.keys())
def test_top_posted_reply_with_windows_and_old_mac_line_endings(history: str) -> None:
    body = f"{NEW}\n\n{history}"
    assert strip_quotes(body.replace("\n", "\r\n")) == NEW
    assert strip_quotes(body.replace("\n", "\r")) == NEW


def test_new_text_directly_above_the_attribution() -> None:
    assert strip_quotes("Hi,\nOn Tue, Nov 3, 2026 at 10:02 AM Bob <bob@example.com> wrote:\n> q\n") == "Hi,"


# -- bottom posting and inline answers -----------------------------------------------------------


def test_bottom_posted_reply_keeps_the_text_below_the_quote() -> None:
    body = (
        "On Tue, Nov 3, 2026 at 10:02 AM Support <support@helpdesk.example> wrote:\n"
        "> Did the export work?\n>\n> Support\n\nYes, it works now.\n"
    )
    assert strip_quotes(body) == "Yes, it works now."


def test_inline_answers_are_kept_and_the_quoted_questions_removed() -> None:
    body = (
        "On Tue, Nov 3, 2026 at 10:02 AM Support <support@helpdesk.example> wrote:\n"
        "> Which version do you run?\n\n4.2.1\n\n> And which browser?\n\nFirefox 140.\n\n"
        "> Thanks,\n> Support\n"
    )
    assert strip_quotes(body) == "4.2.1\n\nFirefox 140."


def test_inline_answers_without_blank_lines_are_kept() -> None:
    body = "> Version?\n4.2.1\n> Browser?\nFirefox\n> Regards\n"
    assert strip_quotes(body) == "4.2.1\n\nFirefox"


def test_nested_quotes_are_removed_with_their_attributions() -> None:
    body = (
        "Agreed.\n\nOn Wed, Nov 4, 2026 at 9:00 AM Ann <ann@example.com> wrote:\n> Me too.\n>\n"
        "> On Tue, Nov 3, 2026 at 10:02 AM Bob <bob@example.com> wrote:\n>> First.\n"
    )
    assert strip_quotes(body) == "Agreed."


def test_a_message_that_is_only_a_quote_strips_to_nothing() -> None:
    assert strip_quotes("> only\n> quoted\n") == ""


def test_attribution_left_alone_at_the_end_is_removed() -> None:
    # What is left when an HTML converter dropped the blockquote under the attribution.
    assert strip_quotes("Fine, thanks.\n\nJohn Smith <john@example.com> wrote:\n") == "Fine, thanks."


# -- what must not be taken for a quote ----------------------------------------------------------

NOT_QUOTES = {
    "wrote inside prose": "As John wrote: restart the server first.\nThat fixed it.",
    "wrote at the end of a line of prose": "My colleague wrote:\nPlease restart the server.",
    "line starting with On": "On your remote host you can run:\n\n    telnet 127.0.0.1 52698",
    "colon before a list": "Here is what I tried on 3 Nov:\n\n- restart\n- reinstall",
    "header-like words": "From: the accounting team\nwe need the invoice by Friday.",
    "a single To line": "To: whom it may concern\n\nThe printer is broken.",
    "header-like lines, no address or date": "From: my laptop\nTo: the printer\nSubject: nothing prints",
    "original message in prose": "I deleted the original message by accident.",
    "forwarded in prose": "I forwarded message 42 to my boss.",
    "dashes as a rule in prose": "Results\n--------\nAll green.",
}


@pytest.mark.parametrize("text", NOT_QUOTES.values(), ids=NOT_QUOTES.keys())
def test_ordinary_text_is_left_alone(text: str) -> None:
    assert strip_quotes(text) == text


def test_greater_than_inside_a_line_is_not_a_quote() -> None:
    assert strip_quotes("If x > 3 the job fails.\n=> see log") == "If x > 3 the job fails.\n=> see log"


# -- forwards ------------------------------------------------------------------------------------

FORWARD = (
    "Please see below.\n\n---------- Forwarded message ---------\nFrom: Ann <ann@example.com>\n"
    "Date: Tue, Nov 3, 2026 at 10:02 AM\nSubject: Printer\nTo: <it@example.com>\n\nThe printer is broken.\n"
)


def test_forward_is_cut_like_a_reply_by_default() -> None:
    assert strip_quotes(FORWARD) == "Please see below."


def test_forward_can_be_kept() -> None:
    kept = strip_quotes(FORWARD, keep_forwards=True)
    assert "The printer is broken." in kept
    assert kept.startswith("Please see below.")


def test_apple_mail_forward_can_be_kept() -> None:
    body = (
        "FYI\n\nBegin forwarded message:\n\nFrom: Ann <ann@example.com>\nSubject: Printer\n"
        "Date: 3 November 2026 at 10:02:00 CET\nTo: it@example.com\n\nBroken again.\n"
    )
    assert strip_quotes(body) == "FYI"
    assert "Broken again." in strip_quotes(body, keep_forwards=True)


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("---------- Forwarded message ---------", MarkerKind.FORWARD),
        ("-------- Forwarded Message --------", MarkerKind.FORWARD),
        ("Begin forwarded message:", MarkerKind.FORWARD),
        ("---------- Weitergeleitete Nachricht ----------", MarkerKind.FORWARD),
        ("Début du message réexpédié :", MarkerKind.FORWARD),
        ("-----Original Message-----", MarkerKind.REPLY),
        ("----- Original Message -----", MarkerKind.REPLY),
        ("-----Ursprüngliche Nachricht-----", MarkerKind.REPLY),
        ("-----Message d'origine-----", MarkerKind.REPLY),
        ("-------- Mensaje original --------", MarkerKind.REPLY),
        ("the original message", None),
        ("Forwarded message", None),
        ("", None),
    ],
)
def test_classify_marker_tells_forwards_from_replies(line: str, kind: MarkerKind | None) -> None:
    assert classify_marker(line) is kind


def test_is_attribution_strict_needs_two_signals() -> None:
    assert is_attribution("John wrote:")
    assert not is_attribution("John wrote:", strict=True)
    assert is_attribution("On Tue, Nov 3, 2026 at 10:02 John wrote:", strict=True)
    assert not is_attribution("Here is what I tried:")


@pytest.mark.parametrize(
    ("line", "field"),
    [("From: a", "from"), ("*Von:* a", "from"), ("De : a", "from"), ("Enviado: x", "date"),
     ("Betreff: x", "subject"), ("Hello: x", None), ("no label", None)],
)  # fmt: skip
def test_header_field_knows_localized_labels(line: str, field: str | None) -> None:
    assert header_field(line) == field


# -- signatures ----------------------------------------------------------------------------------

SIGNATURES = {
    "rfc delimiter": "-- \nJane Doe\nACME Support\n+1 555 0100",
    "dashes without space": "--\nJane",
    "iphone": "Sent from my iPhone",
    "ipad": "Sent from my iPad",
    "blackberry": "Sent from my BlackBerry® wireless device",
    "multi-word device": "Sent from my Verizon Wireless BlackBerry",
    "samsung": "Sent from my Samsung Galaxy smartphone.",
    "samsung with carrier": "Sent from my Samsung Galaxy S7, an AT&T 4G LTE smartphone",
    "windows mail": "Sent from Mail for Windows 10",
    "outlook ios": "Sent from Outlook for iOS",
    "get outlook": "Get Outlook for Android<https://aka.ms/ghei36>",
    "yahoo": "Sent from Yahoo Mail on Android",
    "german iphone": "Von meinem iPhone gesendet",
    "french iphone": "Envoyé de mon iPhone",
    "spanish iphone": "Enviado desde mi iPhone",
    "italian iphone": "Inviato da iPhone",
    "sparrow": "Sent with Sparrow (http://www.sparrowmailapp.com/?sig)",
    "proton mail": "Sent with Proton Mail (https://proton.me/mail/home) secure email.",
    "samsung german": "Von meinem/meiner Galaxy gesendet",
    "name sign-off": "-Jane",
    "mailing list footer": "______________________________\nusers mailing list\nusers@lists.example",
    "delimiter then mobile": "-- \nJane\nSent from my iPhone",
    "disclaimer": (
        "CONFIDENTIALITY NOTICE: This e-mail message, including any attachments, is for the sole use "
        "of the intended recipient(s) and may contain confidential information."
    ),
}


@pytest.mark.parametrize("signature", SIGNATURES.values(), ids=SIGNATURES.keys())
def test_trailing_signature_is_removed(signature: str) -> None:
    assert strip_signature(f"{NEW}\n\n{signature}\n") == NEW


MID_TEXT = {
    "sent from my in a sentence": "Here is the log.\n\nSent from my desk, which is easier than my phone.",
    "sent from my phone mid-text": "I sent from my phone the file yesterday.\nDid it arrive?",
    "mobile line followed by more text": "Sent from my iPhone\n\nActually, one more thing: the VPN is down.",
    "dash in the middle of a line": "And here is a fix -- not a signature.\n\nThanks",
    "bullets at the end": "Steps:\n\n- restart\n- reinstall",
    "dash bullets without space": "Todo:\n-restart\n-reinstall",
    "negative number": "Temperature today:\n\n-5 degrees",
    "long text after a delimiter": "--\n" + "\n".join(f"line {n} of the actual message" for n in range(15)),
}


@pytest.mark.parametrize("text", MID_TEXT.values(), ids=MID_TEXT.keys())
def test_signature_like_text_in_the_message_is_kept(text: str) -> None:
    assert strip_signature(text) == text


def test_signature_in_the_middle_survives_quote_stripping_order() -> None:
    body = (
        "Hello\n\nSent from my iPhone\n\nOn Nov 3, 2026, at 10:02, Support <s@desk.example> wrote:\n\n> Hi\n"
    )
    assert strip_quotes(body) == "Hello\n\nSent from my iPhone"
    assert strip_signature(strip_quotes(body)) == "Hello"


# -- new_text ------------------------------------------------------------------------------------


def test_new_text_from_plain_strips_quotes_then_signature() -> None:
    plain = f"{NEW}\n\n-- \nJane\n\n{TOP_POSTED['gmail']}"
    assert new_text(plain, None) == NEW


def test_new_text_prefers_html() -> None:
    html = (
        "<div>From the HTML part.</div><div class='gmail_quote'><div class='gmail_attr'>On Tue, Nov 3, 2026 "
        "Bob &lt;bob@example.com&gt; wrote:</div><blockquote class='gmail_quote'>old</blockquote></div>"
    )
    assert new_text("From the plain part.\n\n> old", html) == "From the HTML part."


def test_new_text_falls_back_to_plain_when_html_shows_nothing() -> None:
    html = "<html><body><img src='cid:logo'><style>p{}</style></body></html>"
    assert new_text(f"{NEW}\n\n> old", html) == NEW


def test_new_text_of_a_bare_quote_is_the_quote() -> None:
    assert new_text("> only a quote", None) == "> only a quote"


def test_new_text_of_a_comment_less_forward_is_the_forward() -> None:
    body = FORWARD.replace("Please see below.\n\n", "")
    assert "The printer is broken." in new_text(body, None)


def test_new_text_of_only_a_signature_keeps_the_signature() -> None:
    assert new_text("Sent from my iPhone", None) == "Sent from my iPhone"


def test_new_text_of_nothing_is_empty() -> None:
    assert new_text(None, None) == ""
    assert new_text("", "") == ""
    assert new_text("  \n ", None) == ""


# -- third-party expectations --------------------------------------------------------------------


def _reply_corpus():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCH))
    try:
        import reply_corpus
    finally:
        sys.path.remove(str(BENCH))
    return reply_corpus


@pytest.mark.skipif(not CORPUS.is_dir(), reason="third-party reply fixtures not on this machine")
def test_talon_and_email_reply_parser_expectations_are_met() -> None:
    corpus = _reply_corpus()
    outcomes = corpus.run()
    passed, total = corpus.score(outcomes)
    failed = [(o.case.name, o.problems) for o in outcomes if not o.passed]
    assert total >= 45
    assert passed / total >= 0.95, failed


@pytest.mark.skipif(not CORPUS.is_dir(), reason="third-party reply fixtures not on this machine")
def test_every_reply_parser_fixture_has_an_expectation() -> None:
    corpus = _reply_corpus()
    fixtures = {path.stem for path in (CORPUS / "email_reply_parser" / "emails").glob("*.txt")}
    assert fixtures <= set(corpus.ERP_EXPECTATIONS)


# -- properties ----------------------------------------------------------------------------------

MAILISH = st.lists(
    st.one_of(
        st.sampled_from(
            [
                "> quoted",
                ">",
                "",
                " ",
                "-- ",
                "--",
                "Sent from my iPhone",
                "-Jane",
                "On Tue, Nov 3, 2026 at 10:02 AM Bob <bob@example.com> wrote:",
                "Bob wrote:",
                "From: Bob <bob@example.com>",
                "Sent: Tuesday",
                "To: x",
                "Subject: y",
                "-----Original Message-----",
                "---------- Forwarded message ---------",
                "________________________________",
                "Thanks,",
                "Hello there",
                "\r",
                "a:",
                ":",
            ]
        ),
        st.text(max_size=40),
    ),
    max_size=30,
).map("\n".join)
ANY_TEXT = st.one_of(st.text(), st.text(st.characters(codec=None)), MAILISH)


def _content_lines(text: str) -> list[str]:
    return [line for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n") if line.strip()]


def _is_subsequence(small: list[str], big: list[str]) -> bool:
    remaining = iter(big)
    return all(any(line == other for other in remaining) for line in small)


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_strip_quotes_keeps_a_subsequence_of_the_lines_and_is_idempotent(text: str) -> None:
    out = strip_quotes(text)
    assert _is_subsequence(_content_lines(out), _content_lines(text))
    assert strip_quotes(out) == out


@settings(max_examples=300, deadline=None)
@given(ANY_TEXT)
def test_strip_signature_keeps_a_prefix_of_the_lines(text: str) -> None:
    out = strip_signature(text)
    lines = _content_lines(out)
    assert lines == _content_lines(text)[: len(lines)]


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), ANY_TEXT), st.one_of(st.none(), st.text(), MAILISH.map(lambda t: f"<p>{t}</p>")))
def test_new_text_never_raises_and_is_stripped(plain: str | None, html: str | None) -> None:
    out = new_text(plain, html)
    assert out == out.strip()


# -- time on hostile input -----------------------------------------------------------------------

MB = 1_000_000


def _ordinary_mail(size: int) -> str:
    # Realistic reply text: prose, an attribution, quoted lines, a signature.
    unit = (
        "Hello team, the export to CSV fails again since this morning's update.\n"
        "I attached the log; the error appears right after the login step.\n\n"
        "On Tue, Nov 3, 2026 at 10:02 AM Support <support@helpdesk.example> wrote:\n"
        "> Could you send us the log file?\n> Thanks, Support\n\n-- \nJane Doe\n\n"
    )
    return unit * (size // len(unit))


def _seconds(function: Callable[[str], str], text: str) -> float:
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        function(text)
        best = min(best, time.perf_counter() - start)
    return best


PATHOLOGICAL = {
    "200,000 '>' lines": ">\n" * 200_000,
    "one 1 MB line": "a" * MB,
    "one 1 MB line ending in a colon": "On " + "x" * MB + " wrote:",
    "many attributions": "On Tue, Nov 3, 2026 at 10:02 AM John <j@example.com> wrote:\n" * 18_000,
    "many quoted attributions": "On Tue, Nov 3, 2026 at 10:02 AM John <j@example.com> wrote:\n> q\n" * 15_000,
    # Half a megabyte is enough to show these cost per line, not per pair of lines.
    "many bare 'wrote:' lines": "John wrote:\n" * 40_000,
    "many header lines": "From: a\n" * 60_000,
    "many signature delimiters": "-- \n" * 120_000,
    "many mobile signatures": "Sent from my iPhone\n" * 25_000,
    "deep '>' nesting": ">" * MB,
    "carriage returns": "\r" * (MB // 2),
}


@functools.cache
def _budget() -> float:
    """Twenty times what a megabyte of ordinary reply text costs, measured in this run."""
    ordinary = _ordinary_mail(MB)
    return 20 * max(_seconds(strip_quotes, ordinary), _seconds(strip_signature, ordinary), 0.005)


@pytest.mark.parametrize("text", PATHOLOGICAL.values(), ids=PATHOLOGICAL.keys())
def test_pathological_input_costs_no_more_than_twenty_ordinary_megabytes(text: str) -> None:
    assert _seconds(strip_quotes, text) < _budget()
    assert _seconds(strip_signature, text) < _budget()
