"""Score maildesk's reply extraction against the expectations of two third-party projects.

Shared by ``bench/quotes.py`` (prints the score) and ``tests/test_quotes.py`` (asserts it).
The fixtures stay in the read-only corpus; only what their upstream tests assert is written
down here, as short snippets and expected replies.

- mailgun/talon (``talon/expected.json``): talon strips quotes and signatures in separate
  modules, and its expectations are for quote stripping alone (its iPhone case keeps "Sent
  from my iPhone", Sparrow keeps its "-- " signature). So talon cases are scored on
  ``strip_quotes`` of the text/plain part, and HTML files on ``strip_quotes`` of
  ``remove_html_quotes`` (which already renders text). Talon's own HTML test compares with
  all whitespace removed, since its HTML fixtures do not all show the blank line its expected
  text has; HTML cases are compared the same way.
- github/email_reply_parser (``email_reply_parser_test.rb``): GitHub's parser also hides
  signatures, so these are scored on ``strip_signature(strip_quotes(text))``. Its fragment
  assertions become snippets: text of quoted fragments must be gone, text of visible
  fragments kept; where the Ruby test states the whole reply, that is compared exactly.
"""

from __future__ import annotations

import email
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage
from pathlib import Path

from maildesk.parse.html import remove_html_quotes
from maildesk.parse.quotes import strip_quotes, strip_signature

CORPUS = Path(os.environ.get("MAILDESK_REPLY_CORPUS", "/work/shared/corpora/reply-fixtures"))


@dataclass(frozen=True)
class Expectation:
    """What one upstream test says about one body: an exact reply and/or snippets."""

    exact: str | None = None
    present: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    no_line_starts_with: tuple[str, ...] = ()  # e.g. ">": no quoted line is left
    source: str = ""  # the upstream test this comes from


@dataclass(frozen=True)
class Case:
    name: str
    body: str
    extract: Callable[[str], str]
    expectation: Expectation
    ignore_all_whitespace: bool = False


@dataclass(frozen=True)
class Outcome:
    case: Case
    got: str
    problems: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return not self.problems


# One entry per fixture (or inline body) of github/email_reply_parser's Ruby test. Quoted
# text and text of signature fragments is "absent"; visible fragments "present" or "exact".
ERP_EXPECTATIONS: dict[str, Expectation] = {
    # test_reads_simple_body: fragment 0 is visible, "-Abhishek Kona" and the list footer are
    # signature fragments and hidden.
    "email_1_1": Expectation(
        exact=(
            "Hi folks\n\nWhat is the best way to clear a Riak bucket of all key, values after\n"
            "running a test?\nI am currently using the Java HTTP API."
        ),
        absent=("-Abhishek Kona", "riak-users mailing list"),
        source="test_reads_simple_body",
    ),
    # test_reads_bottom_post / test_parse_reply: "Hi," and "You can list ..." are visible; the
    # "On ... wrote:" quote and the quoted signature are quoted; the footer is a signature.
    "email_1_2": Expectation(
        present=("Hi,", "You can list the keys for the bucket", "would do it.", "which says"),
        absent=("Abhishek Kona wrote:", "> Hi folks", "What is the best way", "riak-users mailing list"),
        source="test_reads_bottom_post, test_parse_reply",
    ),
    # test_reads_top_post: fragment 0 "Oh thanks.\n\nHaving ..." is the only visible one;
    # "-A..." is a signature, "On ...:" quoted, "_..." a signature.
    "email_1_3": Expectation(
        exact="Oh thanks.\n\nHaving the function would be great.",
        absent=("-Abhishek Kona", "Russell Brown wrote", "riak-users mailing list"),
        source="test_reads_top_post",
    ),
    # test_recognizes_date_string_above_quote: "Awesome" visible; "On ..." with "Loader" quoted.
    "email_1_4": Expectation(
        exact="Awesome! I haven't had another problem with it.",
        absent=("Loader", "defunkt"),
        source="test_recognizes_date_string_above_quote",
    ),
    # test_a_complex_body_with_only_one_fragment: the whole body is one visible fragment.
    "email_1_5": Expectation(
        present=(
            "One: Here's what I've got.",
            "- This would be the first bullet point that wraps to the second line",
            "- This is the fourth bullet point",
            "Two:\n- Here is another bullet point\n- And another one",
            "for a while.",
        ),
        source="test_a_complex_body_with_only_one_fragment",
    ),
    # test_deals_with_multiline_reply_headers: "I get" visible; the three-line "On ... wrote:"
    # and "Was this ..." are quoted. "Sent from a ..." is not "Sent from my", so it stays.
    "email_1_6": Expectation(
        exact="I get proper rendering as well.\n\nSent from a magnificent torch of pixels",
        absent=("Corey Donohoe", "Was this caching related"),
        source="test_deals_with_multiline_reply_headers",
    ),
    # test_deals_with_windows_line_endings: ":+1:" visible; "On ..." with "Steps 0-2" quoted.
    "email_1_7": Expectation(
        exact=":+1:",
        absent=("Chris Wanstrath", "Steps 0-2"),
        source="test_deals_with_windows_line_endings",
    ),
    # test_reads_inline_replies: quoted fragments 0, 2, 4 go; the answers 1 and 3 stay; the
    # trailing "--" signature is hidden.
    "email_1_8": Expectation(
        exact="I will reply under this one\n\nand under this.",
        absent=("okay?", "Example Dev", "Hey there, this is my signature", "inline responses"),
        source="test_reads_inline_replies",
    ),
    # test_reads_email_with_correct_signature: "-- \nrick" is a hidden signature fragment.
    "correct_sig": Expectation(
        exact="this is an email with a correct -- signature.",
        absent=("rick",),
        source="test_reads_email_with_correct_signature",
    ),
    # test_parse_out_just_top_for_outlook_reply, test_returns_only_the_visible_fragments_as_a_string
    "email_2_1": Expectation(
        exact="Outlook with a reply",
        source="test_parse_out_just_top_for_outlook_reply",
    ),
    # test_parse_out_just_top_for_outlook_with_reply_directly_above_line
    "email_2_2": Expectation(
        exact="Outlook with a reply directly above line",
        source="test_parse_out_just_top_for_outlook_with_reply_directly_above_line",
    ),
    # test_parse_out_just_top_for_outlook_with_no_line
    "email_2_3": Expectation(
        exact="Outlook with a reply directly above line",
        source="test_parse_out_just_top_for_outlook_with_no_line",
    ),
    # test_parse_out_sent_from_iPhone
    "email_iPhone": Expectation(exact="Here is another email", source="test_parse_out_sent_from_iPhone"),
    # test_parse_out_sent_from_BlackBerry
    "email_BlackBerry": Expectation(
        exact="Here is another email", source="test_parse_out_sent_from_BlackBerry"
    ),
    # test_parse_out_send_from_multiword_mobile_device
    "email_multi_word_sent_from_my_mobile_device": Expectation(
        exact="Here is another email", source="test_parse_out_send_from_multiword_mobile_device"
    ),
    # test_do_not_parse_out_send_from_in_regular_sentence
    "email_sent_from_my_not_signature": Expectation(
        exact="Here is another email\n\nSent from my desk, is much easier then my mobile phone.",
        source="test_do_not_parse_out_send_from_in_regular_sentence",
    ),
    # test_retains_bullets
    "email_bullets": Expectation(
        exact=(
            "test 2 this should list second\n\nand have spaces\n\nand retain this formatting\n\n\n"
            "   - how about bullets\n   - and another"
        ),
        source="test_retains_bullets",
    ),
    # test_one_is_not_on: "One outstanding question" visible; "On Oct 1, 2012" quoted.
    "email_one_is_not_on": Expectation(
        exact=(
            "Thank, this is really helpful.\n\nOne outstanding question I had:\n\n"
            "Locally (on development), when I run..."
        ),
        absent=("Dave Tapley", "lastLocation"),
        source="test_one_is_not_on",
    ),
    # test_mulitple_on: "On your remote host" visible; "On 9 Jan 2014" quoted and hidden.
    "greedy_on": Expectation(
        present=("On your remote host you can run:", "telnet 127.0.0.1 52698", "the tunnel is not working."),
        absent=("George Plymale", "port forwarding"),
        source="test_mulitple_on",
    ),
    # test_pathological_emails (time limit; the reply above the quote is the visible part)
    "pathological": Expectation(
        exact=(
            "I think you're onto something. I will try to fix the problem as soon as I\n"
            "get back to a computer."
        ),
        absent=("John Sullivan", "reference_alignment"),
        source="test_pathological_emails",
    ),
    # test_doesnt_remove_signature_delimiter_in_mid_line: one visible fragment, the whole body.
    "email_sig_delimiter_in_middle_of_line": Expectation(
        exact="Hi there!\n\nStuff happened.\n\nAnd here is a fix -- this is not a signature.\n\nkthxbai",
        source="test_doesnt_remove_signature_delimiter_in_mid_line",
    ),
    # test_long_quote_processing_completes: 5 fragments; the ">>>..." line is quoted,
    # "asdf" / "A>>>..." / "I am currently ..." visible, then two signature fragments.
    "email_long_quote": Expectation(
        present=("Hi folks", "running a test?", "asdf", "A>>>>", "I am currently using the Java HTTP API."),
        absent=("-Abhishek Kona", "riak-users mailing list"),
        no_line_starts_with=(">",),
        source="test_long_quote_processing_completes",
    ),
}

# Bodies the Ruby test writes inline rather than reading from a fixture.
ERP_INLINE: dict[str, tuple[str, Expectation]] = {
    "inline:non_ascii": (
        "Here\u2019s a test.",
        Expectation(exact="Here\u2019s a test.", source="test_handles_non_ascii_characters"),
    ),
    "inline:quick_brown_fox": (
        "The Quick Brown Fox Jumps Over The Lazy Dog",
        Expectation(
            exact="The Quick Brown Fox Jumps Over The Lazy Dog",
            source="test_does_not_modify_input_string",
        ),
    ),
}


def normalise(text: str) -> str:
    """Strip every line, collapse runs of blank lines, strip the whole."""
    lines: list[str] = []
    for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = line.strip()
        if line or (lines and lines[-1]):
            lines.append(line)
    return "\n".join(lines).strip()


def _squash(text: str) -> str:
    return "".join(text.split())


def check(case: Case) -> Outcome:
    """Run one case; an extractor that raises is a failed case, not a crashed bench."""
    try:
        got = case.extract(case.body)
    except Exception as error:  # a bench reports every failure and carries on
        return Outcome(case, "", (f"raised {type(error).__name__}: {error}",))
    fold = _squash if case.ignore_all_whitespace else normalise
    problems: list[str] = []
    wanted = case.expectation
    if wanted.exact is not None and fold(got) != fold(wanted.exact):
        problems.append(f"expected {normalise(wanted.exact)!r}")
    problems += [f"missing {snippet!r}" for snippet in wanted.present if fold(snippet) not in fold(got)]
    problems += [f"still has {snippet!r}" for snippet in wanted.absent if fold(snippet) in fold(got)]
    problems += [
        f"a line still starts with {prefix!r}"
        for prefix in wanted.no_line_starts_with
        if any(line.lstrip().startswith(prefix) for line in got.splitlines())
    ]
    return Outcome(case, got, tuple(problems))


def _message_parts(raw: bytes) -> tuple[str | None, str | None]:
    message = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(message, EmailMessage)
    texts: list[str | None] = []
    for subtype in ("plain", "html"):
        part = message.get_body(preferencelist=(subtype,))
        texts.append(part.get_content() if part is not None else None)
    return texts[0], texts[1]


def _quotes_only_html(html: str) -> str:
    return strip_quotes(remove_html_quotes(html))


def _reply_parser_view(text: str) -> str:
    return strip_signature(strip_quotes(text))


def talon_cases(root: Path = CORPUS / "talon") -> list[Case]:
    """Talon's cases: text/plain part of each message (as talon's test), and the HTML files."""
    expected: dict[str, str] = json.loads((root / "expected.json").read_text(encoding="utf-8"))
    cases: list[Case] = []
    for name, reply in sorted(expected.items()):
        path = root / name
        wanted = Expectation(exact=reply, source="talon expected.json")
        if path.suffix == ".eml":
            plain, html = _message_parts(path.read_bytes())
            if plain is not None:
                cases.append(Case(f"talon/{name}", plain, strip_quotes, wanted))
            elif html is not None:
                cases.append(Case(f"talon/{name}", html, _quotes_only_html, wanted, True))
        else:
            body = path.read_text(encoding="utf-8")
            cases.append(Case(f"talon/{name}", body, _quotes_only_html, wanted, True))
    return cases


def reply_parser_cases(root: Path = CORPUS / "email_reply_parser") -> list[Case]:
    """email_reply_parser's cases, from ``ERP_EXPECTATIONS`` and ``ERP_INLINE``."""
    cases: list[Case] = []
    for name, wanted in ERP_EXPECTATIONS.items():
        body = (root / "emails" / f"{name}.txt").read_bytes().decode("utf-8")
        cases.append(Case(f"email_reply_parser/{name}", body, _reply_parser_view, wanted))
    for name, (body, wanted) in ERP_INLINE.items():
        cases.append(Case(f"email_reply_parser/{name}", body, _reply_parser_view, wanted))
    return cases


def all_cases() -> list[Case]:
    return talon_cases() + reply_parser_cases()


def score(outcomes: Iterable[Outcome]) -> tuple[int, int]:
    """(passed, total)."""
    results = [outcome.passed for outcome in outcomes]
    return sum(results), len(results)


def run() -> list[Outcome]:
    return [check(case) for case in all_cases()]
