"""Raw bytes to a plain `ParsedMail` value, with mail-parser doing the MIME work.

Parsing is pure: no I/O, no database. It never raises on bad mail (missing headers,
unknown charsets, broken encodings, path-traversal file names); what it had to repair is
listed in `defects`. It raises `ParseError` only when nothing can be read at all (MIME
nested beyond any sane depth), and the pipeline then quarantines the raw bytes.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import hashlib
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import mailparser
from mailparser.exceptions import MailParserError

from maildesk.config import LimitsConfig
from maildesk.errors import ParseError
from maildesk.parse import html as html_text
from maildesk.parse import quotes
from maildesk.parse.filenames import sanitize_filename
from maildesk.parse.headers import bytes_to_text, clean_line, decode_value, message_ids

log = logging.getLogger(__name__)
# mail-parser logs a warning for every odd part of every message; our defects list says it once
logging.getLogger("mailparser").setLevel(logging.ERROR)

_ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"\\]{1,64}@[^@\s<>()\[\],;:\"\\]{1,255}$")
_OLDEST_DATE = datetime(1980, 1, 1, tzinfo=UTC)
_HEADERS_KEPT = 500
# the markup by which clients mark quoted history (see parse/html.py); case-insensitive
_QUOTE_MARKUP = re.compile(
    r"<blockquote|divrplyfwdmsg|appendonsend|reference-message-container|stopspelling|zwchr"
    r"|outlookmessageheader|yahoo_quoted|border-top|moz-cite-prefix|gmail_attr|gmail_quote"
    r"|-----\s*original message",
    re.IGNORECASE,
)
# what Gmail ("[image: logo.png]") and Outlook ("[cid:image001.png@01DB...]") write in the
# plain part where the HTML shows a pasted image
_IMAGE_PLACEHOLDER = re.compile(
    r"^[ \t]*\[(?:image|cid):[^\]\n]{0,300}\][ \t]*$", re.IGNORECASE | re.MULTILINE
)


class _MailParser(mailparser.MailParser):
    """mail-parser without its `mail` and `mail_partial` summaries.

    They decode every header and part once more into dicts that maildesk never reads
    (it reads the properties), which cost a sixth of all parsing time.
    """

    def _make_mail(self, complete: bool = True) -> dict[str, object]:
        return {}


@dataclass(frozen=True)
class Address:
    """A mailbox: lower-cased address and the decoded display name."""

    email: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


@dataclass(frozen=True)
class AttachmentPart:
    """An attachment or inline image, with its decoded bytes (None when over the size limit)."""

    filename: str
    content_type: str
    size: int
    sha256: str
    payload: bytes | None
    content_id: str = ""
    inline: bool = False


@dataclass(frozen=True)
class ParsedMail:
    """Everything later stages need from one message, decoded and bounded."""

    message_id: str
    synthetic_id: bool
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    subject: str
    sender: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    date: datetime | None  # UTC, None when absent or implausible
    text: str  # the whole text: the plain part, or the HTML part as text
    html: str | None
    new_text: str  # text with quoted history and signature removed
    attachments: tuple[AttachmentPart, ...]
    headers: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    defects: tuple[str, ...] = ()
    size: int = 0
    # the spam model's SpamScore, when the parser pool scored the message beside parsing it
    spam: Any = None
    # the IssueRecord the parser pool read from the whole text, beside parsing it
    issue_record: Any = None

    def header(self, name: str) -> str:
        """The first value of a header, decoded, or ""."""
        values = self.headers.get(name.lower())
        return values[0] if values else ""

    @property
    def participants(self) -> tuple[Address, ...]:
        return self.to + self.cc


def synthetic_message_id(raw: bytes) -> str:
    """A stable Message-ID for mail that has none, derived from its bytes."""
    return f"{hashlib.sha256(raw).hexdigest()[:40]}@synthetic.maildesk.invalid"


def parse(raw: bytes, limits: LimitsConfig | None = None, now: datetime | None = None) -> ParsedMail:
    """Parse raw RFC 5322 bytes. `now` bounds plausible dates (mail from the future)."""
    limits = limits or LimitsConfig()
    defects: list[str] = []
    try:
        message = email.message_from_bytes(raw)  # compat32, as mail-parser builds it
        headers = _headers(message)
        # mail-parser parses every Received: line, which is half its work and nothing we read;
        # they stay in `headers` as text
        del message["Received"]
        mail = _MailParser(message)
    except MailParserError as exc:
        raise ParseError(f"unreadable MIME structure: {exc}") from exc
    except RecursionError as exc:
        raise ParseError("MIME nesting too deep to parse") from exc
    raw_message_id = message_ids(_first_raw(message, "message-id"), limit=1)
    if raw_message_id:
        message_id, synthetic = raw_message_id[0], False
    else:
        message_id, synthetic = synthetic_message_id(raw), True
        defects.append("no Message-ID: a synthetic one was derived from the bytes")

    senders = _addresses(mail.from_, defects, "From")
    if not senders:
        sender_header = _addresses(getattr(mail, "sender", None) or [], defects, "Sender")
        senders = sender_header
    text, html, new_text = _bodies(mail, limits, defects)
    attachments = _attachments(mail.attachments, limits, defects)

    return ParsedMail(
        message_id=message_id,
        synthetic_id=synthetic,
        in_reply_to=message_ids(_first_raw(message, "in-reply-to"), limit=10),
        references=message_ids(_first_raw(message, "references")),
        subject=decode_value(_first_raw(message, "subject"))[:998],
        sender=senders[0] if senders else None,
        to=tuple(_addresses(mail.to, defects, "To")),
        cc=tuple(_addresses(mail.cc, defects, "Cc")),
        reply_to=tuple(_addresses(mail.reply_to, defects, "Reply-To")),
        date=_date(mail, now, defects),
        text=text,
        html=html,
        new_text=new_text,
        attachments=attachments,
        headers=headers,
        defects=tuple(defects) + _mailparser_defects(mail),
        size=len(raw),
    )


def _first_raw(message: email.message.Message | None, name: str) -> str | None:
    """The first raw value of a header straight from the stdlib message (before any decoding)."""
    for key, value in message.raw_items() if message is not None else ():
        if key.lower() == name:
            return str(value)
    return None


class Headers(Mapping[str, tuple[str, ...]]):
    """Header values by lower-case name, decoded when first read.

    Most headers of most messages are never read (Received, DKIM, X-...), so decoding
    them all up front was a tenth of parsing time.
    """

    def __init__(self, raw: dict[str, list[str]]) -> None:
        self._raw = raw
        self._decoded: dict[str, tuple[str, ...]] = {}

    def __getitem__(self, name: str) -> tuple[str, ...]:
        name = name.lower()
        if name not in self._decoded:
            self._decoded[name] = tuple(decode_value(v)[:4000] for v in self._raw[name])
        return self._decoded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)


def _headers(message: email.message.Message | None) -> Headers:
    found: dict[str, list[str]] = {}
    if message is not None:
        for count, (key, value) in enumerate(message.raw_items()):
            if count >= _HEADERS_KEPT:
                break
            found.setdefault(clean_line(str(key)).lower()[:100], []).append(str(value))
    return Headers(found)


def _addresses(pairs: object, defects: list[str], header: str) -> list[Address]:
    out: list[Address] = []
    seen: set[str] = set()
    if not isinstance(pairs, list | tuple):
        return out
    for pair in pairs[:200]:
        try:
            name, email = pair
        except (TypeError, ValueError):
            continue
        email = clean_line(str(email or "")).strip("<>").lower()
        if not _ADDRESS.match(email):
            if email:
                defects.append(f"{header}: ignored malformed address {email[:80]!r}")
            continue
        if email in seen:
            continue
        seen.add(email)
        name = decode_value(name or "")[:200]
        if name.lower().strip("'\" ") == email:
            name = ""
        out.append(Address(email=email, name=name.strip("'\" ")))
    return out


def _date(mail: object, now: datetime | None, defects: list[str]) -> datetime | None:
    value = getattr(mail, "date", None)
    if not isinstance(value, datetime):
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    latest = (now or datetime.now(UTC)).astimezone(UTC) + timedelta(days=2)
    if not _OLDEST_DATE <= value <= latest:
        defects.append(f"implausible Date header {value.isoformat()}: arrival time used instead")
        return None
    return value


def _bodies(mail: object, limits: LimitsConfig, defects: list[str]) -> tuple[str, str | None, str]:
    """(whole text, HTML, new text): HTML is parsed once for both texts."""
    plain_parts, html_parts = _body_parts(getattr(mail, "message", None), limits, defects)
    if not plain_parts and not html_parts:
        # nothing readable by our walk (a message with no MIME headers at all): take mail-parser's view
        plain_parts = [p for p in getattr(mail, "text_plain", []) if isinstance(p, str) and p.strip()]
        html_parts = [p for p in getattr(mail, "text_html", []) if isinstance(p, str) and p.strip()]
    html = "\n".join(html_parts[:20]) if html_parts else None
    if html is not None and len(html) > limits.html:
        defects.append(f"HTML body cut at {limits.html} characters")
        html = html[: limits.html]
    plain = "\n\n".join(plain_parts[:20]).replace("\x00", "")
    # Building the HTML tree is the dearest step of parsing. When a plain alternative exists and
    # the HTML has none of the elements clients mark quoted history with, the HTML cannot say
    # more about what is new than the plain part does, so it is not parsed at all.
    wanted = html is not None and (not plain.strip() or _QUOTE_MARKUP.search(html) is not None)
    document = html_text.HtmlDocument(html, max_chars=limits.html) if html and wanted else None
    if not plain.strip() and document is not None:
        plain = document.whole
    if len(plain) > limits.text:
        defects.append(f"text cut at {limits.text} characters")
        plain = plain[: limits.text]
    plain = plain.replace("\r\n", "\n").replace("\r", "\n")
    try:
        new = quotes.new_text(_IMAGE_PLACEHOLDER.sub("", plain) or None, document)
    except RecursionError:
        defects.append("quote stripping gave up on this message: the whole text is kept")
        new = plain.strip()
    return plain, html, new


def _body_parts(
    message: email.message.Message | None, limits: LimitsConfig, defects: list[str]
) -> tuple[list[str], list[str]]:
    """The text/plain and text/html parts the sender wrote, in order.

    Attachments are not body text, and neither is anything inside an attached message
    (message/rfc822: a forwarded mail is the sender's attachment, not their words).
    """
    plain: list[str] = []
    html: list[str] = []
    if message is None:
        return plain, html
    stack = [message]
    seen = 0
    while stack and seen < limits.parts:
        part = stack.pop()
        seen += 1
        ctype = part.get_content_type()
        if part.is_multipart():
            if ctype == "message/rfc822" or part.get_content_disposition() == "attachment":
                continue
            children = part.get_payload()
            if isinstance(children, list):
                # a parsed multipart holds messages; a str here would be a payload set by hand
                stack.extend(c for c in reversed(children) if isinstance(c, email.message.Message))
            continue
        if ctype not in ("text/plain", "text/html") or part.get_content_disposition() == "attachment":
            continue
        if part.get_filename() and part is not message:
            continue
        text = _decode_part(part, defects)
        if not text.strip():
            continue
        if ctype == "text/plain":
            params = {k.lower(): str(v).lower() for k, v in part.get_params() or [] if isinstance(k, str)}
            if params.get("format") == "flowed":
                text = unflow(text, delsp=params.get("delsp") == "yes")
            plain.append(text)
        else:
            html.append(text)
    return plain, html


def _decode_part(part: email.message.Message, defects: list[str]) -> str:
    try:
        data = part.get_payload(decode=True)
    except (ValueError, TypeError, AssertionError, LookupError):
        data = None
    if not isinstance(data, bytes):  # None: nothing to decode (a Message only comes from a multipart)
        payload = part.get_payload()
        return payload if isinstance(payload, str) else ""
    charset = part.get_content_charset()
    text = bytes_to_text(data, charset)
    if charset and not _decodes(data, charset):
        defects.append(f"text declared as {charset} is not; read as UTF-8 or Windows-1252")
    return text


def _decodes(data: bytes, charset: str) -> bool:
    try:
        data.decode(charset)
        return True
    except (LookupError, UnicodeDecodeError, ValueError):
        return False


def unflow(text: str, delsp: bool = False) -> str:
    """Undo RFC 3676 format=flowed: a line ending in a space continues on the next line."""
    out: list[str] = []
    current: str | None = None
    current_depth = 0
    for raw in text.replace("\r\n", "\n").split("\n"):
        depth = len(raw) - len(raw.lstrip(">"))
        line = raw[depth:]
        if line.startswith(" "):
            line = line[1:]  # space-stuffing
        flowed = line.endswith(" ") and line != "-- "
        if current is not None and depth == current_depth:
            current += line
        else:
            if current is not None:
                out.append(">" * current_depth + (" " if current_depth else "") + current)
            current, current_depth = line, depth
        if flowed:
            if delsp:
                current = current[:-1]
            continue
        out.append(">" * current_depth + (" " if current_depth else "") + current)
        current = None
    if current is not None:
        out.append(">" * current_depth + (" " if current_depth else "") + current)
    return "\n".join(out)


def _attachments(items: list[dict], limits: LimitsConfig, defects: list[str]) -> tuple[AttachmentPart, ...]:
    out: list[AttachmentPart] = []
    for index, item in enumerate(items):
        if index >= limits.parts:
            defects.append(f"only the first {limits.parts} attachments were read")
            break
        content_type = clean_line(str(item.get("mail_content_type") or "application/octet-stream"))
        payload = item.get("payload") or ""
        try:
            if item.get("binary"):
                data = base64.b64decode(payload)
            elif isinstance(payload, bytes):
                data = payload
            else:
                data = str(payload).encode(item.get("charset") or "utf-8", "replace")
        except (binascii.Error, ValueError, LookupError):
            data = str(payload).encode("utf-8", "surrogateescape")
            defects.append(f"attachment {index}: payload could not be decoded, kept as sent")
        name = item.get("filename")
        if isinstance(name, bytes):
            name = bytes_to_text(name)
        filename = sanitize_filename(decode_value(name) if name else "", content_type)
        if name and filename != str(name):
            defects.append(f"attachment name {str(name)[:80]!r} made safe as {filename!r}")
        content_id = clean_line(str(item.get("content-id") or "")).strip("<>")[:200]
        disposition = str(item.get("content-disposition") or "").lower()
        oversized = len(data) > limits.attachment
        if oversized:
            defects.append(
                f"attachment {filename!r} is {len(data)} bytes, over the {limits.attachment} limit: "
                "not stored (the raw message keeps it)"
            )
        out.append(
            AttachmentPart(
                filename=filename,
                content_type=content_type[:200],
                size=len(data),
                sha256=hashlib.sha256(data).hexdigest(),
                payload=None if oversized else data,
                content_id=content_id,
                inline=bool(content_id) and not disposition.startswith("attachment"),
            )
        )
    return tuple(out)


def _mailparser_defects(mail: object) -> tuple[str, ...]:
    out = []
    for category in sorted(getattr(mail, "defects_categories", ()) or ()):
        out.append(f"MIME defect: {category}")
    return tuple(out)
