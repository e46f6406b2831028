"""Readable text from HTML mail, optionally without the quoted history clients mark up.

Mail HTML is hostile input: the crafted corpus nests 100,000 elements. Nothing here recurses
over the tree: both walks keep their own stack, and the tree is never modified (cutting nodes
out of a bs4 tree scans the parent's children for each node, which is quadratic). Input is
capped before parsing, because building the bs4 tree costs roughly 10 µs per element and
dominates everything else.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from urllib.parse import unquote

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning
from bs4.element import NavigableString, PageElement, PreformattedString, Tag
from bs4.exceptions import ParserRejectedMarkup

from maildesk.parse.quotes import MarkerKind, classify_marker, header_field, is_attribution

__all__ = ["DEFAULT_MAX_CHARS", "DEFAULT_MAX_TAGS", "html_to_text", "remove_html_quotes"]

DEFAULT_MAX_CHARS = 2_000_000
# About a third of a second of parsing here; far more than a real reply needs, and what is
# dropped is the end of the document, where the quoted history is.
DEFAULT_MAX_TAGS = 25_000

_SKIPPED = frozenset(
    {"script", "style", "head", "title", "template", "iframe", "object", "embed", "svg", "math"}
)
_PARAGRAPHS = frozenset(
    {"p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "table", "hr", "dl",
     "figure", "address"}
)  # fmt: skip
_LINES = frozenset(
    {"div", "section", "article", "header", "footer", "nav", "main", "aside", "center",
     "form", "fieldset", "figcaption", "details", "summary", "caption", "tr", "dt", "dd",
     "li", "ul", "ol", "tbody", "thead", "tfoot", "legend", "option", "body", "html"}
)  # fmt: skip
_BLOCKS = _PARAGRAPHS | _LINES | {"br", "td", "th"}
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none", flags=re.IGNORECASE)
_SPACES = re.compile(r"\s+")
# Clients use a pasted image's file name as its alt text ("image001.png"); it tells a reader nothing.
_FILE_NAME = re.compile(r"[^/\\\n]{1,200}\.(?:png|jpe?g|gif|bmp|webp|tiff?|heic|svg)", flags=re.IGNORECASE)
_SURROGATE = re.compile("[\ud800-\udfff]")
_INVISIBLE = re.compile("[\x00\u200b\u200e\u200f\u2060\ufeff\u00ad]")

# Elements by which clients mark where the quoted history starts (see _is_history_start).
_HISTORY_IDS = frozenset(
    {"divrplyfwdmsg", "ecxdivrplyfwdmsg", "appendonsend", "mail-editor-reference-message-container"}
)
_HISTORY_HR_IDS = frozenset({"stopspelling", "ecxstopspelling", "zwchr"})
_HISTORY_CLASSES = ("outlookmessageheader", "yahoo_quoted")
_OUTLOOK_RULES = ("border-top:solid#b5c4df", "border-top:solid#e1e1e1")
_ATTRIBUTION_CLASSES = frozenset({"moz-cite-prefix", "gmail_attr"})
_MAX_ATTRIBUTION_CHARS = 500
_MAX_LOOKBACK = 20
_MAX_MARKER_CHARS = 200
_MAX_PEEK_NODES = 64  # an attribution or header block is a few dozen nodes at most
_MAX_INDENT = 8  # list levels shown by indentation; deeper ones line up with the eighth


def _limit(html: str, max_chars: int, max_tags: int) -> str:
    # Lone surrogates (from a broken decoder upstream) make bs4 raise while encoding.
    html = _SURROGATE.sub("\ufffd", html[: max(max_chars, 0)])
    if html.count("<") > max_tags:
        cut = html.find("<")
        for _ in range(max_tags):  # to the tag after the last one kept
            cut = html.find("<", cut + 1)
        html = html[:cut]
    return html


def _parse(html: str, max_chars: int, max_tags: int) -> BeautifulSoup | None:
    try:
        with warnings.catch_warnings():
            # Mail bodies that are only a URL, or XHTML with an <?xml?> line, are normal here.
            warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
            warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
            return BeautifulSoup(_limit(html, max_chars, max_tags), "html.parser")
    except ParserRejectedMarkup:
        return None


def _children(node: PageElement) -> list[PageElement]:
    return node.contents if isinstance(node, Tag) else []


def _classes(tag: Tag) -> list[str]:
    value = tag.get("class")
    if isinstance(value, str):
        return value.lower().split()
    return [item.lower() for item in value or ()]


def _style(tag: Tag) -> str:
    value = tag.get("style")
    return value if isinstance(value, str) else ""


def _is_hidden(tag: Tag) -> bool:
    return tag.has_attr("hidden") or bool(_HIDDEN_STYLE.search(_style(tag)))


def _is_text(node: PageElement) -> bool:
    return isinstance(node, NavigableString) and not isinstance(node, PreformattedString)


class _Writer:
    """Builds lines of text from a stream of inline text and block boundaries."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.current: list[str] = []
        self.touched = False  # the current line has content, maybe only a &nbsp;
        self.space = False  # a collapsed space is owed before the next text
        self.prefix = ""  # a list bullet owed at the start of the next text
        self.cell = False  # a " | " is owed before the next text in this table row

    def text(self, value: str) -> None:
        if not value.strip(" \t\n\r\f"):
            self.space = self.space or bool(self.current)
            return
        collapsed = _SPACES.sub(" ", value)
        core = collapsed.strip(" ")
        self.touched = True
        if not core:  # only &nbsp;: a line that looks empty, as Outlook's blank paragraphs
            self.space = self.space or bool(self.current)
            return
        if not self.current:
            self.current.append(self.prefix)
            self.prefix = ""
        elif self.cell:
            self.current.append(" | ")
        elif self.space or collapsed[0] == " ":
            self.current.append(" ")
        self.current.append(core)
        self.space = collapsed[-1] == " "
        self.cell = False

    def preformatted(self, value: str) -> None:
        first, *rest = value.replace("\r\n", "\n").split("\n")
        self.current.append(first)
        self.touched = True
        for line in rest:
            self.line_break()
            self.current.append(line)
            self.touched = True

    def line_break(self) -> None:
        self.lines.append("".join(self.current))
        self.current = []
        self.touched = self.space = self.cell = False

    def block(self) -> None:
        if self.current or self.touched:
            self.line_break()

    def paragraph(self) -> None:
        self.block()
        if self.lines and self.lines[-1].strip():
            self.lines.append("")

    def result(self) -> str:
        self.block()
        out: list[str] = []
        for raw in self.lines:
            line = _INVISIBLE.sub("", raw).rstrip()
            if line.strip():
                out.append(line)
            elif out and out[-1]:
                out.append("")
        while out and not out[-1]:
            out.pop()
        return "\n".join(out)


def _link_suffix(href: str, text: str) -> str | None:
    """What to show after a link's text: its target, unless that would repeat the text."""
    href = href.strip()
    lowered = href.lower()
    if not href or not text.strip() or lowered.startswith(("#", "javascript:", "cid:", "data:")):
        return None
    if lowered.startswith("mailto:"):
        address = unquote(href[len("mailto:") :].split("?", 1)[0]).strip()
        return None if not address or address.lower() in text.lower() else address

    def bare(value: str) -> str:
        value = value.strip().lower().rstrip("/")
        for scheme in ("https://", "http://"):
            value = value.removeprefix(scheme)
        return value.removeprefix("www.")

    return None if bare(href) == bare(text) else href


def _render(root: PageElement, skip: set[int] | None = None, stop: PageElement | None = None) -> str:
    """Walk the tree with an explicit stack and write it as text.

    ``skip`` holds ids of nodes to leave out; at ``stop`` the walk ends, which drops it and
    everything after it in document order.
    """
    skip = skip or set()
    writer = _Writer()
    lists: list[list[int]] = []  # per open list: [ordered, next number]
    links: list[tuple[int, int, str]] = []  # per open link: position of its text, href
    in_pre = 0
    in_item = 0
    stack: list[tuple[PageElement, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if node is stop:
            break
        if not isinstance(node, Tag):
            if _is_text(node) and id(node) not in skip:
                if in_pre:
                    writer.preformatted(str(node))
                else:
                    writer.text(str(node))
            continue
        name = node.name.lower()
        if not leaving:
            if id(node) in skip and name in _BLOCKS:
                writer.paragraph()  # answers written between two quotes stay apart
                continue
            if name in _SKIPPED or id(node) in skip or _is_hidden(node):
                continue
            stack.append((node, True))
            stack.extend((child, False) for child in reversed(node.contents))
        if name == "br":
            if not leaving:
                writer.line_break()
        elif name == "img":
            alt = node.get("alt")
            if not leaving and isinstance(alt, str) and alt.strip() and not _FILE_NAME.fullmatch(alt.strip()):
                writer.text(f" {alt.strip()} ")
        elif name == "a":
            href = node.get("href")
            if not leaving:
                links.append((len(writer.lines), len(writer.current), href if isinstance(href, str) else ""))
            elif links:
                line_count, part_count, target = links.pop()
                same_line = line_count == len(writer.lines)
                shown = "".join(writer.current[part_count:]) if same_line else "…"
                suffix = _link_suffix(target, shown)
                if suffix:
                    writer.text(f" ({suffix})")
        elif name in ("ul", "ol"):
            if leaving and lists:
                lists.pop()
            nested = bool(lists)
            if not leaving:
                lists.append([name == "ol", _list_start(node)])
            if nested:
                writer.block()
            else:
                writer.paragraph()
        elif name == "li":
            writer.block()
            in_item += -1 if leaving else 1
            if not leaving:
                writer.prefix = _bullet(lists)
        elif name in ("td", "th"):
            if not leaving and writer.current:
                writer.cell = True
        elif name == "p":
            # Word and Outlook style every line as <p class=MsoNormal> with zero margins.
            classes = _classes(node)
            if in_item or any(item.startswith("mso") for item in classes):
                writer.block()
            else:
                writer.paragraph()
        elif name == "pre":
            in_pre += -1 if leaving else 1
            writer.paragraph()
        elif name in _PARAGRAPHS:
            writer.paragraph()
        elif name in _LINES:
            writer.block()
    return writer.result()


def _list_start(tag: Tag) -> int:
    value = tag.get("start")
    if isinstance(value, str) and re.fullmatch(r"\s*[0-9]{1,6}\s*", value):
        return int(value)
    return 1


def _bullet(lists: list[list[int]]) -> str:
    if not lists:
        return "- "
    indent = "  " * min(len(lists) - 1, _MAX_INDENT)
    ordered, number = lists[-1]
    if ordered:
        lists[-1][1] += 1
        return f"{indent}{number}. "
    return f"{indent}- "


def html_to_text(html: str, *, max_chars: int = DEFAULT_MAX_CHARS, max_tags: int = DEFAULT_MAX_TAGS) -> str:
    """Render HTML as readable plain text: lines and paragraphs as a mail client shows them.

    Lists become "- item" / "1. item", table cells are joined by " | ", links read
    "text (url)", images give their alt text; scripts, styles and hidden elements are left out.
    Input beyond ``max_chars`` characters or ``max_tags`` tags is dropped before parsing.
    """
    return HtmlDocument(html, max_chars=max_chars, max_tags=max_tags).whole


class HtmlDocument:
    """One parse of an HTML body, rendered whole or without its quoted history, on demand.

    Building bs4's tree is most of the cost of reading HTML mail; a message needs both its
    whole text and its new text, so it parses once and renders twice.
    """

    def __init__(
        self, html: str, *, max_chars: int = DEFAULT_MAX_CHARS, max_tags: int = DEFAULT_MAX_TAGS
    ) -> None:
        self._soup = _parse(html, max_chars, max_tags)
        self._whole: str | None = None

    @property
    def whole(self) -> str:
        if self._whole is None:
            self._whole = _render(self._soup) if self._soup is not None else ""
        return self._whole

    def reply(self, *, keep_forwards: bool = False) -> str:
        """The text without quoted history (see ``remove_html_quotes``)."""
        if self._soup is None:
            return ""
        skip, stop = _find_quotes(self._soup, keep_forwards=keep_forwards)
        return _render(self._soup, skip, stop)


# -- quoted history ------------------------------------------------------------------------------


def _is_quote_blockquote(tag: Tag) -> bool:
    if tag.name.lower() != "blockquote":
        return False
    if tag.get("type") == "cite" or any("quote" in item for item in _classes(tag)):
        return True
    # Gmail's "indent" button makes a borderless blockquote; that is the writer's own text.
    return "border:none" not in _style(tag).replace(" ", "").lower()


def _is_history_start(tag: Tag) -> bool:
    """Whether a client marked this element as the start of the quoted or forwarded history."""
    name = tag.name.lower()
    element_id = tag.get("id")
    element_id = element_id.lower() if isinstance(element_id, str) else ""
    if element_id in _HISTORY_IDS or element_id.startswith("yahoo_quoted"):
        return True
    if name == "hr" and element_id in _HISTORY_HR_IDS:
        return True
    if any(item.startswith(_HISTORY_CLASSES) or "yahoo_quoted" in item for item in _classes(tag)):
        return True
    style = _style(tag).replace(" ", "").lower()
    if name in ("div", "p") and "border-top" in style:
        # Outlook draws a rule above its "From: / Sent: / To:" block (#B5C4DF in 2007-2010,
        # #E1E1E1 later). Other colours (Windows Mail) count when the text below the rule
        # starts with a "From:" label, which _find_quotes checks as it reaches that text.
        rule_at = style.find("border-top:solid#")
        return rule_at >= 0 and style.startswith(_OUTLOOK_RULES, rule_at)
    return False


def _has_top_rule(tag: Tag) -> bool:
    return tag.name.lower() in ("div", "p") and "border-top" in _style(tag).lower()


def _text_prefix(node: PageElement, limit: int = _MAX_ATTRIBUTION_CHARS) -> str:
    """About the first ``limit`` characters of a node's text, one line per rendered line.

    Stops after ``limit`` characters or ``_MAX_PEEK_NODES`` nodes instead of walking the whole
    subtree: it is called for many nested elements, and a full walk each time is quadratic.
    """
    parts: list[str] = []
    size = 0
    visited = 0
    stack: list[PageElement] = [node]
    while stack and size < limit and visited < _MAX_PEEK_NODES:
        visited += 1
        current = stack.pop()
        if isinstance(current, Tag):
            name = current.name.lower()
            if name in _SKIPPED:
                continue
            if name in _BLOCKS:
                parts.append("\n")
            stack.extend(reversed(current.contents))
        elif _is_text(current):
            value = str(current)
            parts.append(_SPACES.sub(" ", value))
            size += len(value)
    lines = (line.strip() for line in "".join(parts).split("\n"))
    return "\n".join(line for line in lines if line)[:limit]


def _is_boundary(node: PageElement) -> bool:
    return isinstance(node, Tag) and node.name.lower() in _BLOCKS


def _is_blank_node(node: PageElement) -> bool:
    if isinstance(node, Tag):
        return node.name.lower() == "br"
    return not _is_text(node) or not str(node).strip()


def _line_before(node: PageElement) -> list[PageElement]:
    """The inline nodes on the text line that ends just before ``node``."""
    found: list[PageElement] = []
    sibling = node.previous_sibling
    while sibling is not None and len(found) < _MAX_LOOKBACK and not _is_boundary(sibling):
        found.append(sibling)
        sibling = sibling.previous_sibling
    return found


def _attribution_nodes(quote: Tag) -> list[PageElement]:
    """The "On <date>, <name> wrote:" line above a quote, as the nodes that make it up.

    It is either the last line of text before the quote (Gmail, mail.ru, Yandex put it
    there, ended by a <br> or inside the preceding paragraph) or a block of its own
    (Thunderbird's moz-cite-prefix, Sparrow's <p>).
    """
    sibling = quote.previous_sibling
    for _ in range(_MAX_LOOKBACK):
        if sibling is None or not _is_blank_node(sibling):
            break
        sibling = sibling.previous_sibling
    if sibling is None:
        return []
    if not _is_boundary(sibling):
        nodes = [sibling, *_line_before(sibling)]
        return nodes if _is_attribution_text(nodes) else []
    container = sibling
    for _ in range(8):
        if _is_attribution_text([container]):
            return [container]
        children = [child for child in _children(container) if not _is_blank_node(child)]
        if not children:
            return []
        last = children[-1]
        if _is_boundary(last):
            container = last
            continue
        nodes = [last, *_line_before(last)]
        return nodes if _is_attribution_text(nodes) else []
    return []


def _is_attribution_text(nodes: Iterable[PageElement]) -> bool:
    text = " ".join(_text_prefix(node, _MAX_ATTRIBUTION_CHARS + 1) for node in reversed(list(nodes)))
    # One rendered line only: a paragraph of the writer's ending in an attribution line is
    # searched for its last line instead.
    return len(text) <= _MAX_ATTRIBUTION_CHARS and "\n" not in text and is_attribution(text)


def _find_quotes(root: PageElement, *, keep_forwards: bool) -> tuple[set[int], PageElement | None]:
    """Ids of quote elements and their attributions, and the node where history starts."""
    skip: set[int] = set()
    # Elements with a top border and no text yet: history starts at the first of them if the
    # next text is a "From:" label. Deciding when that text is reached keeps this one pass.
    rules: list[Tag] = []
    stack: list[PageElement] = [root]
    while stack:
        node = stack.pop()
        if isinstance(node, Tag):
            if node.name.lower() in _SKIPPED:
                continue
            if _is_history_start(node):
                return skip, node
            if _has_top_rule(node):
                rules.append(node)
            if _is_quote_blockquote(node):
                skip.add(id(node))
                skip.update(id(item) for item in _attribution_nodes(node))
                continue
            if _ATTRIBUTION_CLASSES.intersection(_classes(node)):
                # Gmail also puts "---------- Forwarded message ---------" in its gmail_attr.
                kind = classify_marker(_text_prefix(node).split("\n", 1)[0])
                if kind is MarkerKind.FORWARD and keep_forwards:
                    stack.extend(reversed(node.contents))
                elif kind is not None:
                    return skip, node
                else:
                    skip.add(id(node))
                continue
            stack.extend(reversed(node.contents))
        elif _is_text(node) and (text := str(node)).strip():
            if rules:
                if header_field(text.strip()[:100]) == "from":
                    return skip, rules[0]
                rules.clear()
            kind = classify_marker(text) if len(text) <= _MAX_MARKER_CHARS else None
            if kind is not None and not (keep_forwards and kind is MarkerKind.FORWARD):
                return skip, node
    return skip, None


def remove_html_quotes(
    html: str,
    *,
    keep_forwards: bool = False,
    max_chars: int = DEFAULT_MAX_CHARS,
    max_tags: int = DEFAULT_MAX_TAGS,
) -> str:
    """Render HTML mail as text without the quoted history, found by how each client marks it.

    Returns *text*, as ``html_to_text`` does, not HTML: leaving nodes out while walking is
    linear, whereas cutting them out of the bs4 tree is not. Quote blockquotes (Apple Mail,
    Thunderbird, Gmail, mail.ru, Yandex) are left out with the attribution line above them,
    and answers written between them are kept. From a client's history marker (Outlook's
    divRplyFwdMsg, appendonsend and bordered header block, Yahoo's yahoo_quoted, Hotmail's
    stopSpelling rule, a "-----Original Message-----" line) to the end everything is left
    out. History with no structure at all (Outlook 2010's bare "From:" paragraph) is left
    for ``strip_quotes`` to find in the text.
    """
    document = HtmlDocument(html, max_chars=max_chars, max_tags=max_tags)
    return document.reply(keep_forwards=keep_forwards)
