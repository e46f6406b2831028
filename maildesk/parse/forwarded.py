"""Find the original message inside a forward: who wrote it, when, about what, and their words.

When a colleague forwards a customer's mail to the desk, the message's From is the colleague;
the customer is in the forwarded part. Clients write that part in a few fixed shapes: a ruled
marker line then a header block (Gmail's "---------- Forwarded message ---------", Thunderbird's
"-------- Forwarded Message --------"), a sentence then a header block (Apple Mail's "Begin
forwarded message:"), a bare header block under a rule (Outlook's From/Sent/To/Subject, its
"-----Original Message-----" or OWA's line of underscores), or the whole message attached as
message/rfc822. Labels, markers and dates are localized; the labels and markers known to
`maildesk.parse.quotes` are used here, so both modules read header blocks alike.

Outlook writes its header block the same way for replies and forwards, so a bare block counts
as a forward only when the subject's first prefix says so ("FW:", "WG:", "TR:", "RV:", ...);
reply history ("On ... wrote:", `>` quotes, a block under "RE:") found before any forward
means the mail is a reply. Everything here works on short lines with bounded look-ahead, never
raises, and costs time linear in the text.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.errors
import email.message
import email.utils
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from maildesk.errors import ParseError
from maildesk.parse import quotes
from maildesk.parse.message import Address, ParsedMail, parse

__all__ = ["Forwarded", "find_forwarded", "parse_date"]


@dataclass(frozen=True)
class Forwarded:
    """The message found inside a forward; `note` is what the forwarder wrote above it."""

    sender: Address
    subject: str
    date: datetime | None  # aware UTC when the block gives one that parses
    text: str  # the original message's words: no deeper quoted history, no signature
    form: str  # "gmail", "outlook", "apple", "thunderbird", "rfc822" or "generic"
    note: str  # "" when the forwarder wrote nothing


# Forwards of forwards are followed this deep when the middle ones add no words of their own.
_MAX_DEPTH = 4
_MAX_LINE = 400  # longer lines are never labels, markers or attributions
_MAX_BLOCK_LINES = 16
_MAX_EXTRA_LABELS = 6
_MAX_GAP = 3  # blank lines between a marker and its header block
_MAX_PARTS = 200  # MIME parts walked when looking for an attached message
_RFC822_TYPE = re.compile(rb"message/rfc822", re.IGNORECASE)
_HEADER_START = re.compile(rb"\s{0,10}[!-9;-~]{1,76}:")

# Non-breaking and invisible characters that clients and HTML rendering put around labels.
_INVISIBLE = dict.fromkeys(
    map(ord, "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff\u202a\u202b\u202c\u202d\u202e")
)
_INVISIBLE.update(dict.fromkeys(map(ord, "\u00a0\u2007\u202f\u3000"), " "))

# "From:", "*Von:*", "De :", "Enviado el:" and the value after them; HTML tables (Thunderbird's
# header table) render as "Betreff: | value".
_LABELLED = re.compile(
    r"[\s*_]{0,4}([^\W\d_][^\W\d_'.-]{0,24}(?:[ -][^\W\d_]{1,12}){0,2})\s*[*_]{0,2}\s*[:：][\s*_|]*(.*)"
)
# Labels that may sit in a forwarded header block besides From/Date/To/Cc/Subject.
_EXTRA_LABELS = frozenset(
    {"reply-to", "antwort an", "répondre à", "responder a", "rispondi a", "beantwoorden",
     "sender", "sent by", "organization", "organisation", "organisatie", "newsgroups",
     "importance", "priority", "wichtigkeit", "priorität", "priorité", "importancia",
     "prioriteit", "urgenza", "attachments", "anlagen", "pièces jointes", "datos adjuntos",
     "bijlagen", "allegati", "on behalf of", "user-agent", "x-mailer", "message-id",
     "in-reply-to", "references", "mail-followup-to", "return-path"}
)  # fmt: skip
_REPLY_TO_LABELS = frozenset({"reply-to", "antwort an", "répondre à", "responder a", "rispondi a", "sender"})
_RULE_LINE = re.compile(r"[\s\-_=~—–*]{5,}")

# Gmail draws 10 dashes before its marker, Thunderbird 8; Mutt writes the sender into its own.
_MUTT_MARKER = re.compile(r"-{3,}\s*forwarded message from\s+(.{1,300}?)\s*-{3,}", re.IGNORECASE)
_END_MARKER = re.compile(
    r"-{3,}\s*(?:end (?:of )?forwarded message|ende der weitergeleiteten nachricht)\s*-{3,}", re.IGNORECASE
)

# Subject prefixes by what they say; the first one decides ("RE: FW: x" is a reply).
_FORWARD_PREFIXES = frozenset(
    {"fw", "fwd", "wg", "tr", "rv", "enc", "i", "doorst", "vb", "vl", "pd", "ilt", "i̇lt", "προθ",
     "πρθ", "转发", "轉寄", "転送", "전달", "הועבר", "пересл", "fs"}
)  # fmt: skip
_REPLY_PREFIXES = frozenset(
    {"re", "aw", "antw", "antwort", "sv", "r", "res", "rif", "odp", "ynt", "ref", "réf", "rép", "rep",
     "atb", "απ", "σχετ", "回复", "回覆", "答复", "返信", "답장", "השב", "отв", "на"}
)  # fmt: skip
_SUBJECT_PREFIX = re.compile(r"\s*(?:\[[^\[\]]{0,60}\]\s*)*([^\W\d_]{1,8})\.?\s*(?:\[\d{1,4}\])?\s*[:：]")

_ANGLE_ADDRESS = re.compile(r"<\s*(?:mailto:)?([^<>\s]{1,64}@[^<>\s]{1,255})\s*>", re.IGNORECASE)
_MAILTO_ADDRESS = re.compile(r"\[\s*mailto:([^\[\]\s]{1,64}@[^\[\]\s]{1,255})\s*\]", re.IGNORECASE)
_PAREN_ADDRESS = re.compile(r"\(\s*(?:mailto:)?([^()\s]{1,64}@[^()\s]{1,255})\s*\)", re.IGNORECASE)
_BARE_ADDRESS = re.compile(r"[\w.+'&-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63}){1,8}")
_VALID_ADDRESS = re.compile(
    r"[^@\s<>()\[\],;:\"\\]{1,64}@[^@\s<>()\[\],;:\"\\.]{1,63}(?:\.[^@\s<>()\[\],;:\"\\.]{1,63}){1,8}"
)


@dataclass(frozen=True)
class _Block:
    """A header block read from lines: its fields and where it ends."""

    fields: dict[str, str]
    first: str  # the field the block starts with ("subject" in Thunderbird, "from" elsewhere)
    from_label: str  # the From label as written ("from", "von", "de" ...)
    extra: tuple[str, ...]  # values of Reply-To/Sender-like labels, for a From without address
    end: int  # index of the first line after the block


@dataclass(frozen=True)
class _Found:
    sender: Address
    subject: str
    date: datetime | None
    body: list[str]
    form: str
    note: str


# -- entry point ---------------------------------------------------------------------------------


def find_forwarded(mail: ParsedMail, raw: bytes | None = None) -> Forwarded | None:
    """The original message in a forwarded mail, or None for ordinary mail and replies.

    An inline forward is looked for in ``mail.text`` (the plain part, or the HTML as text);
    failing that, an attached message/rfc822 is read, from ``mail.attachments`` or, when the
    attached message has no Content-Disposition and so is no attachment there, from ``raw``.
    None as well when the forwarded part names no sender address (Exchange's "From: Last,
    First" of an internal sender): a name alone cannot be a ticket's requester.
    """
    return _find(mail, raw, _outer_offset(mail), depth=0)


def _find(mail: ParsedMail, raw: bytes | None, offset: timedelta | None, depth: int) -> Forwarded | None:
    lines = mail.text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    found = _scan(lines, _prefix_kind(mail.subject), offset, depth)
    if found is not None:
        return Forwarded(
            sender=found.sender,
            subject=found.subject,
            date=found.date,
            text=quotes.new_text("\n".join(found.body), None),
            form=found.form,
            note=found.note,
        )
    report = mail.header("content-type").lower().startswith("multipart/report")
    if report or _prefix_kind(mail.subject) == "reply":
        return None  # an answer with a message attached, or a bounce quoting what it returns
    for attached in _attached_messages(mail, raw):
        result = _from_attachment(attached, mail, depth)
        if result is not None:
            return result
    return None


# -- inline forwards -----------------------------------------------------------------------------


def _scan(lines: list[str], prefix: str | None, offset: timedelta | None, depth: int) -> _Found | None:
    """The first forwarded part in ``lines``, unless reply history comes before it."""
    norm = _View([_normalise(line) for line in lines])
    index = 0
    while index < len(norm):
        line = norm[index]
        stripped = line.strip()
        if not stripped or len(stripped) > _MAX_LINE:
            index += 1
            continue
        if stripped.startswith(">"):
            # Quoted text before any forward is reply history, unless the quote is itself a
            # forward (Apple Mail quotes "Begin forwarded message:" with everything below it).
            if depth >= _MAX_DEPTH:
                return None
            quoted = _quoted_region(lines, index)
            inner = _scan([_dequote(line) for line in quoted], prefix, offset, depth + 1)
            if inner is None or _note_words(inner.note):
                return None
            return _Found(
                inner.sender, inner.subject, inner.date, inner.body, inner.form, _note(lines[:index])
            )
        if ":" not in stripped and "：" not in stripped and "--" not in stripped and "__" not in stripped:
            index += 1
            continue
        found = _at(lines, norm, index, prefix, offset, depth)
        if found is not None:
            return None if found is _REPLY else found
        index += 1
    return None


# A sentinel: the line starts reply history, so the mail is no forward.
_REPLY = _Found(Address(""), "", None, [], "", "")


def _at(
    lines: list[str],
    norm: _View,
    index: int,
    prefix: str | None,
    offset: timedelta | None,
    depth: int,
) -> _Found | None:
    """What starts at line ``index``: a forward, reply history (`_REPLY`) or nothing (None).

    Called for many lines of a hostile body, so nothing here copies more than a few lines
    until a forward with a sender is certain.
    """
    stripped = norm[index].strip()
    mutt = _MUTT_MARKER.fullmatch(stripped)
    kind = quotes.classify_marker(stripped) if mutt is None else quotes.MarkerKind.FORWARD
    if kind is not None:
        start = _skip_blank(norm, index + 1, _MAX_GAP)
        quoted = start < len(norm) and norm[start].lstrip().startswith(">")
        # Apple Mail may quote the header block under its marker: read it without the quotes
        window = _View(_dequoted_window(lines, start)) if quoted else None
        block = _read_block(window, 0) if window is not None else _read_block(norm, start)
        if kind is quotes.MarkerKind.FORWARD:
            if block is None:
                return None
            form = _marker_form(stripped, block)
        elif block is None or not _is_forward(prefix, block):
            return _REPLY  # "-----Original Message-----" over a reply, or over nothing we can read
        else:
            # Outlook's "-----Original Message-----" has five dashes; Android's "-------- " eight
            form = "generic" if stripped.startswith("------") else "outlook"
        return _found(block, lines, start if quoted else None, form, index, offset, depth)
    if norm.field(index) is not None:
        block = _read_block(norm, index)
        if block is None or not _outlook_shaped(block):
            return None
        if not _is_forward(prefix, block):
            return _REPLY
        return _found(block, lines, None, "outlook", index, offset, depth)
    if stripped.endswith((":", "：")) and quotes.is_attribution(stripped, strict=True):
        return _REPLY  # "On Mon, 2 Nov 2026 at 10:02, Anna <anna@...> wrote:"
    return None


def _found(
    block: _Block,
    lines: list[str],
    quoted_from: int | None,
    form: str,
    marker: int,
    offset: timedelta | None,
    depth: int,
) -> _Found | None:
    """The forward whose header block was read, if it names a sender; ``marker`` is the line
    where the forwarded part starts, ``quoted_from`` where its `>`-quoted block starts."""
    sender = _sender(block)
    if sender is None:
        return None
    if quoted_from is None:
        body = lines[block.end :]
    else:
        body = [_dequote(line) for line in _quoted_region(lines, quoted_from)][block.end :]
    for position, line in enumerate(body):
        if len(line) <= _MAX_LINE and _END_MARKER.fullmatch(_normalise(line).strip()):
            body = body[:position]  # Mutt closes what it forwarded
            break
    note = _note(lines[:marker])
    found = _Found(
        sender=sender,
        subject=_clean_value(block.fields.get("subject", "")),
        date=parse_date(block.fields.get("date", ""), offset, month_first=block.from_label == "from"),
        body=body,
        form=form,
        note=note,
    )
    if depth < _MAX_DEPTH and not quotes.strip_quotes("\n".join(body)).strip():
        # Nothing of its own above another forward: the original is further down.
        nested = _scan(body, "forward", offset, depth + 1)
        if nested is not None:
            return _Found(nested.sender, nested.subject, nested.date, nested.body, nested.form, note)
    return found


class _View:
    """Normalised lines, each line's label read at most once.

    A hostile body of "From: a@b / Date: 1" lines makes every line start a block read that
    looks at the next ones; without the cache each line would be matched several times.
    """

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self._labels: dict[int, tuple[str | None, str, str] | None] = {}

    def __len__(self) -> int:
        return len(self.lines)

    def __getitem__(self, index: int) -> str:
        return self.lines[index]

    def label(self, index: int) -> tuple[str | None, str, str] | None:
        if index not in self._labels:
            self._labels[index] = _label_of(self.lines[index])
        return self._labels[index]

    def field(self, index: int) -> str | None:
        labelled = self.label(index)
        return labelled[0] if labelled is not None else None


def _read_block(norm: _View, start: int) -> _Block | None:
    """The header block at ``start``: From plus at least one of Date, Subject, To, and a value
    that looks real (an address or a digit), so prose with a "From:" is not taken for one."""
    fields: dict[str, str] = {}
    first = ""
    from_label = ""
    extra: list[str] = []
    extras = 0
    last: str | None = None
    index = start
    while index < len(norm) and index - start < _MAX_BLOCK_LINES:
        line = norm[index]
        if not line.strip():
            # HTML rendering may put a blank line between two header lines
            following = norm.field(index + 1) if index + 1 < len(norm) else None
            if following is not None and following not in fields:
                index += 1
                continue
            break
        field, label, value = norm.label(index) or (None, "", "")
        if field is not None:
            if field in fields:
                break  # a second From: starts the next block (quoted history inside)
            fields[field] = value
            first = first or field
            if field == "from":
                from_label = label
            last = field
        elif label in _EXTRA_LABELS and fields and extras < _MAX_EXTRA_LABELS:
            extras += 1
            if label in _REPLY_TO_LABELS:
                extra.append(value)
            last = None
        elif last in ("from", "to", "cc") and _continues(fields[last], line):
            fields[last] = f"{fields[last]} {line.strip()}"
        else:
            break
        index += 1
    if "from" not in fields or len(fields) < 2:
        return None
    values = " ".join(fields.values())
    if "@" not in values and not any(char.isdigit() for char in values):
        return None
    return _Block(fields, first, from_label, tuple(extra), index)


def _label_of(line: str) -> tuple[str | None, str, str] | None:
    """(field or None, label as written, value) for a labelled line; None for other lines."""
    if ":" not in line[:60] and "：" not in line[:60]:
        return None
    match = _LABELLED.match(line[:_MAX_LINE])
    if match is None:
        return None
    label = " ".join(match.group(1).casefold().split())
    return quotes.header_field(line[:_MAX_LINE]), label, match.group(2).strip()


def _continues(value: str, line: str) -> bool:
    # Wrapped recipient lists and Gmail's hard-wrapped "From: Name <\naddr>"
    stripped = line.strip()
    return (
        value.rstrip().endswith((",", ";", "<"))
        or stripped.startswith("<")
        or ("@" in stripped and ":" not in stripped)
    )


def _is_forward(prefix: str | None, block: _Block) -> bool:
    """Whether a bare (Outlook-style) header block is a forward rather than reply history.

    Only the subject can tell: the block reads the same under both. A forward whose "FW:" the
    sender deleted is taken for a reply; so is a bounce quoting the headers it returns.
    """
    if prefix == "vs":  # Danish/Norwegian forward, Finnish reply
        return block.from_label != "lähettäjä"
    return prefix == "forward"


def _outlook_shaped(block: _Block) -> bool:
    # Without a marker line, ask for what Outlook always writes: a date and a subject or recipient.
    return "date" in block.fields and ("subject" in block.fields or "to" in block.fields)


def _marker_form(marker: str, block: _Block) -> str:
    """Which client wrote a forward marker, by its shape and the header order below it."""
    if marker.endswith((":", "：")) and not marker.startswith(("-", "_", "=", "*")):
        return "apple"  # "Begin forwarded message:", "Anfang der weitergeleiteten Nachricht:"
    dashes = len(marker) - len(marker.lstrip("-"))
    trailing = len(marker) - len(marker.rstrip("-"))
    if block.first == "subject" and dashes >= 8:
        return "thunderbird"
    if dashes >= 9 and block.first == "from":
        return "gmail"
    if dashes == 8 and trailing == 8:
        return "thunderbird"
    return "generic"


# -- helpers on lines ----------------------------------------------------------------------------


def _normalise(line: str) -> str:
    return line.translate(_INVISIBLE) if len(line) <= _MAX_LINE else line


def _dequote(line: str) -> str:
    stripped = line.lstrip()
    if not stripped.startswith(">"):
        return line
    stripped = stripped[1:]
    return stripped[1:] if stripped.startswith(" ") else stripped


def _dequoted_window(lines: Sequence[str], start: int) -> list[str]:
    """The `>`-quoted (or blank) lines from ``start`` on, dequoted, as many as a block can use."""
    window: list[str] = []
    for line in lines[start : start + _MAX_BLOCK_LINES + 1]:
        if line.strip() and not line.lstrip().startswith(">"):
            break
        window.append(_normalise(_dequote(line)))
    return window


def _quoted_region(lines: Sequence[str], start: int) -> list[str]:
    """Lines from ``start`` up to the first non-blank line that is not `>`-quoted."""
    end = start
    while end < len(lines) and (lines[end].lstrip().startswith(">") or not lines[end].strip()):
        end += 1
    return list(lines[start:end])


def _skip_blank(norm: _View, index: int, limit: int) -> int:
    skipped = 0
    while index < len(norm) and not norm[index].strip() and skipped < limit:
        index += 1
        skipped += 1
    return index


def _note(lines: Sequence[str]) -> str:
    """What stands above the forwarded part, without the rule Outlook draws over its block;
    runs of blank lines are one blank line."""
    end = len(lines)
    while end > 0 and (not lines[end - 1].strip() or _is_rule(lines[end - 1])):
        end -= 1
    kept: list[str] = []
    for line in lines[:end]:
        if line.strip() or (kept and kept[-1].strip()):
            kept.append(line if line.strip() else "")
    return "\n".join(kept).strip()


def _is_rule(line: str) -> bool:
    return len(line) <= _MAX_LINE and bool(_RULE_LINE.fullmatch(_normalise(line)))


def _note_words(note: str) -> bool:
    return any(char.isalnum() for char in note)


# -- subjects and the outer message --------------------------------------------------------------


def _prefix_kind(subject: str) -> str | None:
    """Say "forward", "reply", "vs" (ambiguous) or None, by the first prefix of a subject."""
    match = _SUBJECT_PREFIX.match(subject[:200])
    if match is None:
        return None
    word = match.group(1).casefold()
    if word == "vs":
        return "vs"
    if word in _FORWARD_PREFIXES:
        return "forward"
    if word in _REPLY_PREFIXES:
        return "reply"
    return None


def _outer_offset(mail: ParsedMail) -> timedelta | None:
    """The UTC offset of the outer Date header: the forwarder's clock, by which clients write
    the forwarded part's time when they give no zone."""
    parsed = _rfc_date(mail.header("date"))
    return parsed.utcoffset() if parsed is not None else None


# -- senders -------------------------------------------------------------------------------------


def _sender(block: _Block) -> Address | None:
    found = _address(block.fields.get("from", ""))
    if found is not None and found.email:
        return found
    name = found.name if found is not None else ""
    for value in block.extra:  # "From: Name" with the address only on a Reply-To/Sender line
        other = _address(value)
        if other is not None and other.email:
            return Address(other.email, name or other.name)
    return None


def _address(value: str) -> Address | None:
    """Read "Name <addr>", "addr", "Name [mailto:addr]" or "Name (addr)" as an Address.

    The email is "" when only a name is given; None when the value is empty.
    """
    value = _clean_value(value)[:_MAX_LINE]
    if not value:
        return None
    for pattern in (_ANGLE_ADDRESS, _MAILTO_ADDRESS, _PAREN_ADDRESS):
        match = pattern.search(value)
        if match is not None:
            address = match.group(1)
            name = value[: match.start()]
            break
    else:
        bare = _BARE_ADDRESS.search(value)
        if bare is None:
            return Address("", _clean_name(value))
        address, name = bare.group(0), value[: bare.start()] + value[bare.end() :]
    address = address.strip().strip(".,;").lower()
    if not _VALID_ADDRESS.fullmatch(address):
        return Address("", _clean_name(name))
    name = _clean_name(name)
    return Address(address, "" if name.lower() == address else name)


def _clean_value(value: str) -> str:
    return " ".join(value.replace("*", " ").split()).strip()


def _clean_name(name: str) -> str:
    name = " ".join(name.split()).strip(" \t\"'<>,;:")
    return name[:200]


# -- dates ---------------------------------------------------------------------------------------

_MONTH_NAMES = (
    ("jan", "january", "januar", "janv", "janvier", "ene", "enero", "januari", "jän", "jänner"),
    ("feb", "february", "februar", "fév", "févr", "février", "fevr", "febrero", "februari"),
    ("mar", "march", "mär", "märz", "mrz", "mars", "marzo", "maart", "mrt"),
    ("apr", "april", "avr", "avril", "abr", "abril"),
    ("may", "mai", "mayo", "mei"),
    ("jun", "june", "juni", "juin", "junio"),
    ("jul", "july", "juli", "juil", "juillet", "julio"),
    ("aug", "august", "août", "aout", "ago", "agosto", "augustus"),
    ("sep", "sept", "september", "septembre", "septiembre", "set"),
    ("oct", "october", "okt", "oktober", "octobre", "octubre"),
    ("nov", "november", "novembre", "noviembre"),
    ("dec", "december", "dez", "dezember", "déc", "décembre", "dic", "diciembre"),
)
_MONTHS = {name: number for number, names in enumerate(_MONTH_NAMES, start=1) for name in names}
_ZONES = {
    "utc": 0, "gmt": 0, "ut": 0, "z": 0, "wet": 0, "west": 60, "bst": 60, "cet": 60, "mez": 60,
    "cest": 120, "mesz": 120, "eet": 120, "oez": 120, "eest": 180, "oesz": 180, "est": -300,
    "edt": -240, "cst": -360, "cdt": -300, "mst": -420, "mdt": -360, "pst": -480, "pdt": -420,
}  # fmt: skip
_TIME = re.compile(r"(?<!\d)(\d{1,2}):(\d{2})(?::(\d{2}))?(?:\s*([ap])\.?\s?m\b\.?)?")
_NUMERIC_OFFSET = re.compile(
    r"(?:(?:gmt|utc)\s*([+-])(\d{1,2})(?::?(\d{2}))?)|(?:([+-])(\d{2}):?(\d{2}))(?!\d)"
)
_ISO_DATE = re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")
_DOTTED_DATE = re.compile(r"(?<!\d)(\d{1,2})\.\s?(\d{1,2})\.\s?(\d{4}|\d{2})(?!\d)")
_SLASHED_DATE = re.compile(r"(?<!\d)(\d{1,2})([/-])(\d{1,2})[/-](\d{4}|\d{2})(?!\d)")
_ORDINAL = re.compile(r"(?<=\d)(?:st|nd|rd|th|er|e)\b")
_TOKEN = re.compile(r"[^\W\d_]+|\d+")
_OLDEST = datetime(1980, 1, 1, tzinfo=UTC)
_LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def parse_date(
    value: str, fallback: timedelta | None = None, *, month_first: bool = False
) -> datetime | None:
    """A forwarded header's date as aware UTC, or None when it cannot be read.

    Reads RFC 5322 dates and what clients write in EN/DE/FR/ES/NL/IT ("Monday, November 2,
    2026 3:47 PM", "Mo., 2. Nov. 2026 um 17:41 Uhr", "mardi 3 novembre 2026 02:14", "martes,
    3 de noviembre de 2026 10:02", "3 November 2026 at 08:12:44 CET", "11/2/26 10:00 (GMT+01:00)").
    A time without a zone is taken in ``fallback`` (the forwarder's offset), else UTC; 2/11/2026
    is read day first unless ``month_first``.
    """
    value = _clean_value(_normalise(value[:200]))
    if not value:
        return None
    parsed = _rfc_date(value)
    if parsed is None:
        parsed = _loose_date(value.casefold(), fallback, month_first)
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone(fallback or timedelta(0)))
    parsed = parsed.astimezone(UTC)
    return parsed if _OLDEST <= parsed < _LATEST else None


def _rfc_date(value: str) -> datetime | None:
    if not value or not any(char.isdigit() for char in value):
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value[:200])
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # parsedate accepts loose text; only trust it with a zone (else the loose reader decides)
    return parsed if parsed.tzinfo is not None else None


def _loose_date(value: str, fallback: timedelta | None, month_first: bool) -> datetime | None:
    value = _ORDINAL.sub("", value)
    hour = minute = second = 0
    zone: timedelta | None = None
    time = _TIME.search(value)
    rest = value
    if time is not None:
        hour, minute, second = int(time.group(1)), int(time.group(2)), int(time.group(3) or 0)
        if time.group(4):
            hour = hour % 12 + (12 if time.group(4) == "p" else 0)
        after = value[time.end() :]
        zone = _zone(after)
        rest = value[: time.start()] + " " + _NUMERIC_OFFSET.sub(" ", after)
    day_month_year = _numeric_date(rest, month_first) or _worded_date(rest)
    if day_month_year is None:
        return None
    day, month, year = day_month_year
    try:
        parsed = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    offset = zone if zone is not None else fallback
    return parsed.replace(tzinfo=timezone(offset)) if offset is not None else parsed


def _zone(text: str) -> timedelta | None:
    numeric = _NUMERIC_OFFSET.search(text)
    if numeric is not None:
        sign, hours, minutes = numeric.group(1, 2, 3) if numeric.group(1) else numeric.group(4, 5, 6)
        if int(hours) <= 14 and int(minutes or 0) < 60:
            delta = timedelta(hours=int(hours), minutes=int(minutes or 0))
            return -delta if sign == "-" else delta
    for word in _TOKEN.findall(text[:40]):
        if word in _ZONES:
            return timedelta(minutes=_ZONES[word])
    return None


def _numeric_date(text: str, month_first: bool) -> tuple[int, int, int] | None:
    iso = _ISO_DATE.search(text)
    if iso is not None:
        return int(iso.group(3)), int(iso.group(2)), int(iso.group(1))
    dotted = _DOTTED_DATE.search(text)
    if dotted is not None:
        return int(dotted.group(1)), int(dotted.group(2)), _year(dotted.group(3))
    slashed = _SLASHED_DATE.search(text)
    if slashed is not None:
        first, second = int(slashed.group(1)), int(slashed.group(3))
        year = _year(slashed.group(4))
        if first > 12 or (second <= 12 and not month_first) or slashed.group(2) == "-":
            return first, second, year
        return second, first, year
    return None


def _year(text: str) -> int:
    return int(text) + 2000 if len(text) == 2 else int(text)


def _worded_date(text: str) -> tuple[int, int, int] | None:
    """Day, month and year from "mar. 3 nov. 2026", "Nov 2, 2026", "2. November 2026" ...

    The month is the month word nearest the year (so the French "mar." for Tuesday loses
    to "nov."), the day the number of at most two digits nearest the month.
    """
    tokens = _TOKEN.findall(text[:200])
    years = [i for i, token in enumerate(tokens) if len(token) == 4 and token.isdigit()]
    if not years:
        return None
    year_at = years[0]
    months = [i for i, token in enumerate(tokens) if token in _MONTHS]
    if not months:
        return None
    month_at = min(months, key=lambda i: abs(i - year_at))
    days = [
        i for i, token in enumerate(tokens) if len(token) <= 2 and token.isdigit() and 0 < int(token) < 32
    ]
    if not days:
        return None
    day_at = min(days, key=lambda i: (abs(i - month_at), i < month_at))
    return int(tokens[day_at]), _MONTHS[tokens[month_at]], int(tokens[year_at])


# -- attached messages ---------------------------------------------------------------------------


def _attached_messages(mail: ParsedMail, raw: bytes | None) -> Iterator[bytes]:
    """Bytes of each attached message/rfc822, from the parsed attachments, else from ``raw``."""
    found = False
    for attachment in mail.attachments:
        if attachment.content_type.lower() == "message/rfc822" and attachment.payload:
            found = True
            yield _undo_base64(attachment.payload)
    if found or not raw or _RFC822_TYPE.search(raw) is None:
        return  # the stdlib's parse of the whole message is paid only when one may be there
    try:
        message = email.message_from_bytes(raw)
        parts = message.walk()
        for count, part in enumerate(parts):
            if count >= _MAX_PARTS:
                return
            if part.get_content_type() != "message/rfc822":
                continue
            payload = part.get_payload()
            inner = payload[0] if isinstance(payload, list) and payload else None
            if isinstance(inner, email.message.Message):
                yield inner.as_bytes()
    except (RecursionError, ValueError, TypeError, LookupError, UnicodeError, email.errors.MessageError):
        return


def _undo_base64(payload: bytes) -> bytes:
    """An attached message as bytes, also when the sender base64-encoded it (RFC 2046 forbids
    that for message/rfc822, and the parser then hands over the base64 text)."""
    if _HEADER_START.match(payload[:1000]):
        return payload
    try:
        decoded = base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        return payload
    return decoded if _HEADER_START.match(decoded[:1000]) else payload


def _from_attachment(attached: bytes, outer: ParsedMail, depth: int) -> Forwarded | None:
    try:
        # parse_date reads the attached Date below, so parse's window of plausible dates (and
        # the clock it would read for it) does not matter here
        inner = parse(attached, now=_LATEST)
    except ParseError:
        return None
    if depth < _MAX_DEPTH and not _note_words(quotes.strip_quotes(inner.text)):
        nested = _find(inner, attached, _outer_offset(inner), depth + 1)
        if nested is not None:  # the attached message only forwards another: that is the original
            return Forwarded(
                nested.sender, nested.subject, nested.date, nested.text, nested.form, outer.text.strip()
            )
    if inner.sender is None:
        return None
    return Forwarded(
        sender=inner.sender,
        subject=inner.subject,
        date=parse_date(inner.header("date")),
        text=inner.new_text,
        form="rfc822",
        note=outer.text.strip(),
    )
