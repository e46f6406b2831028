"""HTML to text, and removing the quoted history that each mail client marks up."""

from __future__ import annotations

import email
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maildesk.parse.html import html_to_text, remove_html_quotes
from maildesk.parse.quotes import new_text, strip_quotes

CORPORA = Path(__file__).resolve().parent.parent.parent / "shared" / "corpora"
BOMB = CORPORA / "malformed" / "crafted" / "html-bomb.eml"
TALON = CORPORA / "reply-fixtures" / "talon" / "standard_replies"

# -- html_to_text --------------------------------------------------------------------------------


def test_paragraphs_divs_and_breaks() -> None:
    html = "<p>First paragraph.</p><p>Second<br>line two</p><div>a div</div><div>another</div>"
    assert html_to_text(html) == "First paragraph.\n\nSecond\nline two\n\na div\nanother"


def test_gmail_style_blank_lines_and_nested_divs() -> None:
    html = '<div dir="ltr"><div>Hi,</div><div><br></div><div><div><div>nested</div></div></div></div>'
    assert html_to_text(html) == "Hi,\n\nnested"


def test_outlook_paragraphs_are_lines_and_nbsp_paragraphs_blank_lines() -> None:
    html = (
        "<p class=MsoNormal>Hi.<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>"
        "<p class=MsoNormal>Thanks,<o:p></o:p></p><p class=MsoNormal>Hans<o:p></o:p></p>"
    )
    assert html_to_text(html) == "Hi.\n\nThanks,\nHans"


def test_at_most_one_blank_line_and_no_trailing_spaces() -> None:
    html = "a &nbsp; <br><br><br><br><br>b<p></p><p></p><p>c</p>"
    assert html_to_text(html) == "a\n\nb\n\nc"


def test_whitespace_inside_text_is_collapsed() -> None:
    assert html_to_text("<p>  lots \n\t of   space  </p>") == "lots of space"


def test_lists() -> None:
    html = (
        "<p>Steps:</p><ol><li>Open</li><li>Close<ul><li>sub a</li><li>sub b</li></ul></li></ol>"
        "<ul><li>x</li></ul>"
    )
    assert html_to_text(html) == "Steps:\n\n1. Open\n2. Close\n  - sub a\n  - sub b\n\n- x"


def test_ordered_list_start() -> None:
    assert html_to_text('<ol start="4"><li>four</li><li>five</li></ol>') == "4. four\n5. five"


def test_tables_are_rows_of_cells() -> None:
    html = "<table><tr><th>Name</th><th>Qty</th></tr><tr><td>Paper</td><td>3</td></tr></table>after"
    assert html_to_text(html) == "Name | Qty\nPaper | 3\n\nafter"


def test_empty_layout_cells_add_no_separators() -> None:
    html = "<table><tr><td></td><td>only</td><td> </td></tr></table>"
    assert html_to_text(html) == "only"


def test_links() -> None:
    html = (
        '<p>See <a href="https://example.com/docs">the docs</a>, <a href="https://example.com/">'
        'example.com</a>, <a href="mailto:ann@example.com">ann@example.com</a> and '
        '<a href="mailto:ann@example.com?subject=x">Ann</a>. <a href="#top">Top</a></p>'
    )
    assert html_to_text(html) == (
        "See the docs (https://example.com/docs), example.com, ann@example.com and Ann (ann@example.com). Top"
    )


def test_images_give_their_alt_text() -> None:
    assert html_to_text('<p>Logo: <img src="cid:1" alt="ACME"> <img src="t.gif"></p>') == "Logo: ACME"


def test_file_names_as_alt_text_are_dropped() -> None:
    html = '<p>Screenshot:</p><img src="cid:ii_1" alt="vpn-error 809.PNG"><p>after</p>'
    assert html_to_text(html) == "Screenshot:\n\nafter"


def test_scripts_styles_head_comments_and_hidden_elements_are_dropped() -> None:
    html = (
        "<html><head><title>T</title><style>p {color: red}</style></head><body>"
        "<div style='display:none;max-height:0'>preheader</div><script>alert(1)</script>"
        "<!-- a comment --><p>Visible <span style='DISPLAY : NONE'>no</span>text</p>"
        "<p hidden>gone</p><template>tpl</template></body></html>"
    )
    assert html_to_text(html) == "Visible text"


def test_entities_and_non_ascii() -> None:
    html = "<p>caf&eacute; &amp; cr&egrave;me &lt;b&gt; &#8364;5 &#x1F44B;</p><p>Привет, 世界 ‎</p>"
    assert html_to_text(html) == "café & crème <b> €5 👋\n\nПривет, 世界"


def test_preformatted_text_keeps_its_layout() -> None:
    html = "<p>code:</p><pre>  def f():\n      return 1\n</pre><p>after</p>"
    assert html_to_text(html) == "code:\n\n  def f():\n      return 1\n\nafter"


def test_broken_and_odd_markup() -> None:
    assert html_to_text("<p>unclosed <b>bold <i>both</p>tail") == "unclosed bold both\n\ntail"
    assert html_to_text("plain text, no tags") == "plain text, no tags"
    assert html_to_text("") == ""
    assert html_to_text("<?xml version='1.0'?><!DOCTYPE html><p>x</p>") == "x"
    assert html_to_text("https://example.com/looks-like-a-url") == "https://example.com/looks-like-a-url"
    assert html_to_text("\ud800<p>lone surrogate</p>\x00") == "\ufffd\n\nlone surrogate"


def test_size_and_tag_caps_truncate_before_parsing() -> None:
    assert html_to_text("<p>" + "x" * 100 + "</p>", max_chars=13) == "xxxxxxxxxx"
    assert html_to_text("<p>a</p><p>b</p><p>c</p>", max_tags=4) == "a\n\nb"


# -- hostile nesting -----------------------------------------------------------------------------


def _bomb() -> str:
    message = email.message_from_bytes(BOMB.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    body = message.get_body()
    assert body is not None
    return body.get_content()


@contextmanager
def _recursion_limit(limit: int) -> Iterator[None]:
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        yield
    finally:
        sys.setrecursionlimit(old)


def _seconds(function: Callable[[str], object], html: str, tries: int = 3) -> float:
    # the best of a few runs: a busy machine (CI neighbours) can stall any single one
    best = float("inf")
    for _ in range(tries):
        start = time.perf_counter()
        function(html)
        best = min(best, time.perf_counter() - start)
    return best


def _ordinary_html(size: int) -> str:
    unit = (
        '<div dir="ltr"><p>Hello team, the <b>export</b> fails since the update.</p>'
        '<p>See <a href="https://example.com/log">the log</a>.</p><ul><li>step one</li></ul></div>'
    )
    return unit * (size // len(unit))


@pytest.mark.skipif(not BOMB.is_file(), reason="crafted corpus not on this machine")
@pytest.mark.parametrize("convert", [html_to_text, remove_html_quotes, lambda html: new_text(None, html)])
def test_html_bomb_from_the_crafted_corpus_is_fast_and_does_not_recurse(
    convert: Callable[[str], str],
) -> None:
    bomb = _bomb()
    baseline = _seconds(convert, _ordinary_html(len(bomb)))
    with _recursion_limit(400):  # far below the nesting depth: any recursion over it would fail
        elapsed = _seconds(convert, bomb)
    assert elapsed < 5 * max(baseline, 0.05)


@pytest.mark.parametrize(
    "html",
    [
        "<blockquote type='cite'>" * 30_000 + "deep",
        "<ul><li>" * 20_000 + "deep",
        "<table><tr><td>" * 15_000 + "deep",
        "<a href='http://x'>" * 30_000 + "deep",
        "<pre>" * 30_000 + "deep",
        "<span style='display:none'>" * 30_000 + "deep",
        "<div style='border-top:solid 1px #ccc'>" * 30_000 + "deep",
        "<div class='gmail_attr'>" * 30_000 + "deep",
        "<p>" + "<span></span>" * 20_000 + "</p><blockquote>quote</blockquote>",
    ],
    ids=["blockquotes", "lists", "tables", "links", "pre", "hidden", "top rules", "attributions", "wide"],
)
def test_other_deep_nesting_does_not_recurse_or_go_quadratic(html: str) -> None:
    baseline = _seconds(html_to_text, _ordinary_html(len(html)))
    with _recursion_limit(400):
        elapsed = _seconds(html_to_text, html) + _seconds(remove_html_quotes, html)
    assert elapsed < 10 * max(baseline, 0.05)


# -- remove_html_quotes, by client ---------------------------------------------------------------

REPLY = '<div dir="ltr">Works now, thanks.</div>'

QUOTED_HISTORY = {
    "gmail": (
        '<br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Tue, Nov 3, 2026 at 10:02 AM '
        'Support &lt;<a href="mailto:s@helpdesk.example">s@helpdesk.example</a>&gt; wrote:<br></div>'
        '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid '
        'rgb(204,204,204);padding-left:1ex"><div dir="ltr">Did it work?</div></blockquote></div>'
    ),
    "gmail before gmail_attr": (
        '<br><div class="gmail_quote">On Tue, Nov 3, 2026 at 10:02 AM, Support <span dir="ltr">&lt;'
        '<a href="mailto:s@helpdesk.example">s@helpdesk.example</a>&gt;</span> wrote:<br>'
        '<blockquote class="gmail_quote">Did it work?</blockquote></div><br>'
    ),
    "apple mail": (
        '<div><br><blockquote type="cite"><div>On Nov 3, 2026, at 10:02, Support &lt;s@helpdesk.example&gt; '
        'wrote:</div><br class="Apple-interchange-newline"><div>Did it work?</div></blockquote></div>'
    ),
    "iphone": (
        '<div dir="ltr"><br><blockquote type="cite">On Nov 3, 2026, at 10:02, Support '
        '&lt;s@helpdesk.example&gt; wrote:<br><br></blockquote></div><blockquote type="cite">'
        '<div dir="ltr">Did it work?</div></blockquote>'
    ),
    "thunderbird": (
        '<div class="moz-cite-prefix">On 03.11.26 10:02, Support wrote:<br></div>'
        '<blockquote type="cite" cite="mid:x@example">Did it work?</blockquote><br>'
    ),
    "outlook 2010": (
        "<div><div style='border:none;border-top:solid #B5C4DF 1.0pt;padding:3.0pt 0in 0in 0in'>"
        "<p class=MsoNormal><b>From:</b> Support [mailto:s@helpdesk.example]<br><b>Sent:</b> Tuesday"
        "<br><b>To:</b> Customer<br><b>Subject:</b> Export</p></div></div><p class=MsoNormal>Did it work?</p>"
    ),
    "outlook 2016 german": (
        "<div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'>"
        "<p class=MsoNormal><b>Von:</b> Support<br><b>Gesendet:</b> Dienstag<br><b>An:</b> Kunde<br>"
        "<b>Betreff:</b> AW: Export</p></div><p class=MsoNormal>Hat es funktioniert?</p>"
    ),
    "outlook web": (
        '<div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1">'
        '<div id="divRplyFwdMsg" dir="ltr"><font face="Calibri"><b>From:</b> Support<br><b>Sent:</b> '
        "Tuesday<br><b>To:</b> Customer<br><b>Subject:</b> Export</font><div>&nbsp;</div></div>"
        "<div>Did it work?</div>"
    ),
    "outlook ios": (
        '<hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr">'
        "<b>From:</b> Support<br><b>Sent:</b> Tuesday</div><div>Did it work?</div>"
    ),
    "outlook 2003 message header": (
        "<div class=OutlookMessageHeader lang=en-us dir=ltr align=left><hr tabindex=-1><font face=Tahoma>"
        "<b>From:</b> Support<br><b>Sent:</b> Tuesday</font></div><div>Did it work?</div>"
    ),
    "yahoo": (
        '<div><br></div><div id="yahoo_quoted_4217" class="yahoo_quoted"><div>On Tuesday, November 3, '
        "2026, 10:02:00 AM GMT+1, Support &lt;s@helpdesk.example&gt; wrote:</div><div><br></div>"
        "<div>Did it work?</div></div>"
    ),
    "hotmail": (
        '<div><hr id="stopSpelling">Date: Tue, 3 Nov 2026 10:02<br>Subject: Export<br>'
        "From: s@helpdesk.example<br><br>Did it work?</div>"
    ),
    "old hotmail": '<div id="ecxdivRplyFwdMsg"><b>From:</b> Support<br></div><div>Did it work?</div>',
    "windows mail": (
        '<div style="padding-top: 5px; border-top-color: rgb(229, 229, 229); border-top-width: 1px; '
        'border-top-style: solid;"><div><b>From:</b>&nbsp;<a href="mailto:s@helpdesk.example">Support</a>'
        "<br><b>Sent:</b>&nbsp;Tuesday</div></div><div><br></div><div>Did it work?</div>"
    ),
    "zimbra": '<hr id="zwchr"><b>From: </b>s@helpdesk.example<br><b>Sent: </b>Tuesday<br>Did it work?',
    "mail.ru": (
        "<br><br>Tue, 3 Nov 2026 10:02:00 +0300 от Support &lt;s@helpdesk.example&gt;:<br>"
        '<blockquote style="border-left:1px solid #0857A6; margin:10px; padding:0 0 0 10px;">'
        "<div>Did it work?</div></blockquote>"
    ),
    "yandex": (
        '<p><br />03.11.2026, 10:02, "Support" &lt;<a href="mailto:s@helpdesk.example">s@helpdesk.example'
        "</a>&gt;:</p><blockquote> Did it work?</blockquote>"
    ),
    "protonmail": (
        '<div class="protonmail_quote">------- Original Message -------<br>On Tuesday, November 3rd, '
        '2026 at 10:02, Support &lt;s@helpdesk.example&gt; wrote:<br><blockquote class="protonmail_quote" '
        'type="cite">Did it work?</blockquote></div>'
    ),
    "aol original message": (
        '<div style="font-family:arial">-----Original Message-----<br>From: Support<br>Sent: Tue<br>'
        "<div>Did it work?</div></div>"
    ),
}


@pytest.mark.parametrize("history", QUOTED_HISTORY.values(), ids=QUOTED_HISTORY.keys())
def test_quoted_history_is_removed(history: str) -> None:
    text = remove_html_quotes(f"<html><body>{REPLY}{history}</body></html>")
    assert strip_quotes(text) == "Works now, thanks."
    assert "work?" not in text and "funktioniert" not in text


def test_signature_before_the_quote_is_kept_for_strip_signature() -> None:
    html = (
        '<div dir="ltr">Thanks!<br clear="all"><div><br></div>-- <br><div class="gmail_signature">Jane Doe'
        '</div></div><div class="gmail_quote"><div class="gmail_attr">On Tue, Nov 3, 2026 Bob '
        "&lt;bob@example.com&gt; wrote:<br></div><blockquote class='gmail_quote'>old</blockquote></div>"
    )
    assert remove_html_quotes(html) == "Thanks!\n\n--\nJane Doe"
    assert new_text(None, html) == "Thanks!"


def test_gmail_inline_answers_are_kept() -> None:
    html = (
        '<div dir="ltr">See inline.</div><div class="gmail_quote"><div class="gmail_attr">On Tue, Nov 3, '
        "2026 at 10:02 AM Support &lt;s@helpdesk.example&gt; wrote:<br></div>"
        '<blockquote class="gmail_quote">Which version?</blockquote><div>4.2.1</div>'
        '<blockquote class="gmail_quote">Which browser?</blockquote><div>Firefox</div></div>'
    )
    assert remove_html_quotes(html) == "See inline.\n\n4.2.1\n\nFirefox"


def test_thunderbird_inline_answers_are_kept() -> None:
    html = (
        '<div class="moz-cite-prefix">On 03.11.26 10:02, Support wrote:<br></div>'
        '<blockquote type="cite">Which version?</blockquote><p>4.2.1</p>'
        '<blockquote type="cite">Which browser?</blockquote>Firefox<br>'
    )
    assert remove_html_quotes(html) == "4.2.1\n\nFirefox"


def test_gmail_indented_text_is_the_writers_own() -> None:
    html = '<div>Hello<blockquote style="margin:0 0 0 40px;border:none">indented</blockquote></div>'
    assert remove_html_quotes(html) == "Hello\n\nindented"


def test_colon_line_of_the_writer_above_a_quote_is_kept() -> None:
    html = "<p>Here is what I mean:</p><blockquote type='cite'>quoted</blockquote><p>and my answer</p>"
    assert remove_html_quotes(html) == "Here is what I mean:\n\nand my answer"


def test_outlook_2010_without_structure_is_left_to_strip_quotes() -> None:
    html = (
        "<p class=MsoNormal>Works.</p><p class=MsoNormal><b>From:</b> Support [mailto:s@helpdesk.example]"
        "<br><b>Sent:</b> Tuesday<br><b>To:</b> Customer<br><b>Subject:</b> Export</p><p>old</p>"
    )
    assert strip_quotes(remove_html_quotes(html)) == "Works."


def test_gmail_forward_is_cut_unless_kept() -> None:
    html = (
        '<div dir="ltr">FYI</div><div class="gmail_quote"><div dir="ltr" class="gmail_attr">'
        "---------- Forwarded message ---------<br>From: <b>Ann</b> &lt;ann@example.com&gt;<br>"
        "Date: Tue, Nov 3, 2026<br>Subject: Printer<br>To: it@example.com<br></div><br><br>"
        "<div>The printer is broken.</div></div>"
    )
    assert remove_html_quotes(html) == "FYI"
    assert "The printer is broken." in remove_html_quotes(html, keep_forwards=True)


@pytest.mark.skipif(not TALON.is_dir(), reason="third-party reply fixtures not on this machine")
@pytest.mark.parametrize("name", ["android.eml", "aol.eml", "comcast.eml", "gmail.eml", "hotmail.eml"])
def test_html_parts_of_real_client_replies(name: str) -> None:
    # talon scores the text/plain parts; their HTML alternatives must give the same reply.
    message = email.message_from_bytes((TALON / name).read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    html = message.get_body(preferencelist=("html",))
    assert html is not None
    assert strip_quotes(remove_html_quotes(html.get_content())) == "Hello"


# -- properties ----------------------------------------------------------------------------------

TAGS = ["div", "p", "br", "blockquote", "ul", "ol", "li", "table", "tr", "td", "a", "pre", "span", "hr"]
SOUP = st.lists(
    st.one_of(
        st.sampled_from(TAGS).map(lambda tag: f"<{tag}>"),
        st.sampled_from(TAGS).map(lambda tag: f"</{tag}>"),
        st.sampled_from(
            [
                '<blockquote type="cite">',
                '<div class="gmail_quote">',
                '<div id="divRplyFwdMsg">',
                '<a href="mailto:x@y.z">',
                '<a href="http://x">',
                '<img alt="A">',
                "<!--",
                "-->",
                "<script>",
                "</script>",
                "<style>",
                "&nbsp;",
                "&amp;",
                "&#0;",
                "&#xD800;",
                "<![CDATA[",
                "-----Original Message-----",
                "On Tue, Nov 3, 2026 Bob <b@x.y> wrote:",
                "<",
                ">",
                "<!",
                '<div style="display:none">',
                '<ol start="-3">',
                '<ol start="99999999999">',
                '<ol start="²">',
                "<div style='border-top:solid 1px'>",
            ]
        ),
        st.text(max_size=20),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.one_of(SOUP, st.text(), st.text(st.characters(codec=None))))
def test_never_raises_and_output_is_tidy(html: str) -> None:
    for out in (html_to_text(html), remove_html_quotes(html), remove_html_quotes(html, keep_forwards=True)):
        lines = out.split("\n")
        assert all(line == line.rstrip() for line in lines)
        assert "\n\n\n" not in out
        assert out == out.strip("\n")
