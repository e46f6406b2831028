"""Bounces: who could not be reached, why, and which of our messages it was.

`looks_like_bounce` is the cheap gate run on every message's headers; `parse_bounce` reads the
raw bytes of the few that pass. A delivery status notification (RFC 3464, `multipart/report;
report-type=delivery-status`) is read field by field with the stdlib. Bounces without one
(qmail, Sendmail, Exim, old Postfix, Exchange and Microsoft 365 text, Gmail, Yahoo, SES) are
recognised by their notification text; flufl.bounce (GNU Mailman's detectors) is the fallback
that finds failed addresses in formats nobody here wrote a recogniser for. It only ever sees the
notification text of mail from a mail system: on whole messages its heuristics also read an
out-of-office's ", colleague@example," and a DSN forwarded as an attachment as failures, and its
generic patterns skip every domain that contains a hyphen.

Only mail from a mail system is a bounce: a top-level report, or a mailer-daemon / postmaster
sender, an empty Return-Path or X-Failed-Recipients together with a known notification text.
A customer forwarding a bounce ("FW: Undeliverable: ...") is a person asking a question and
gets None, as do newsletters about "delivery", read receipts (MDNs) and out-of-office replies.

`parse_bounce` never raises; it reads at most MAX_BYTES of the message, MAX_PARTS parts and
MAX_TEXT characters of notification text, so time and memory are bounded for any input.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.message
import email.parser
import html
import logging
import quopri
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, TypeGuard

from flufl.bounce import all_failures

from maildesk.parse.headers import bytes_to_text, clean_line, decode_value, message_ids

if TYPE_CHECKING:
    from maildesk.pipeline import MailContext, Verdict

__all__ = ["Bounce", "FailedRecipient", "looks_like_bounce", "parse_bounce"]

log = logging.getLogger(__name__)
# flufl.bounce logs every detector it runs at INFO; our reasons say what was found
logging.getLogger("flufl.bounce").setLevel(logging.WARNING)

MAX_BYTES: Final = 1 << 20  # a notification and the returned headers fit in the first few kB
MAX_BOUNDARIES: Final = 100  # real bounces nest three or four multiparts; the stdlib recurses per level
MAX_PARTS: Final = 200
MAX_DEPTH: Final = 12
MAX_TEXT: Final = 64_000  # characters of notification text matched against
MAX_HTML: Final = 256_000  # characters of HTML read before tags are stripped
MAX_RECIPIENTS: Final = 100
MAX_FIELD: Final = 1000
MAX_HEADER_VALUES: Final = 20

# report types that are reports but never bounces: read receipts (RFC 8098), abuse feedback
# (RFC 5965), TLS reports (RFC 8460)
_NOT_BOUNCE_REPORTS: Final = frozenset({"disposition-notification", "feedback-report", "tlsrpt"})
_DSN_TYPES: Final = frozenset(
    {"message/delivery-status", "message/global-delivery-status", "text/delivery-status"}
)
_ORIGINAL_TYPES: Final = frozenset(
    {"message/rfc822", "message/global", "text/rfc822-headers", "message/rfc822-headers",
     "message/global-headers"}
)  # fmt: skip
# "error" is not an RFC 3464 action, but OpenSMTPD has sent it for failures
_COUNTED_ACTIONS: Final = frozenset({"failed", "delayed", "error"})
_SUCCESS_ACTIONS: Final = frozenset({"delivered", "relayed", "expanded"})

_ADDRESS_CHARS = r"[^\s<>@,;:\"()\[\]\\]"
_ADDRESS = re.compile(rf"{_ADDRESS_CHARS}{{1,64}}@{_ADDRESS_CHARS}{{1,255}}")
_STATUS_FIELD = re.compile(r"\s*([245])\.(\d{1,3})\.(\d{1,3})(?!\d)")
# an enhanced status code inside free text, not part of an IP address or a version number
_STATUS_IN_TEXT = re.compile(r"(?<![\w.])([245])\.(\d{1,3})\.(\d{1,3})(?!\d)(?!\.\d)")
_SMTP_CODE = re.compile(r"(?<![\w.:/-])([245])[0-5]\d(?=[ \t:-]|$)", re.MULTILINE)
_REPORT_TYPE = re.compile(r"report-type\s*=\s*\"?([\w.-]{1,64})", re.IGNORECASE)
_BOUNDARY = re.compile(rb"boundary\s*=", re.IGNORECASE)

_DAEMON = re.compile(
    r"\b(?:mailer[-_.]?daemon|mail[-_.]?daemon)\b"
    r"|(?:^|[\s<\"'(:])(?:postmaster|double-bounce|mdaemon"
    r"|microsoftexchange329e71ec88ae4615bbc36ab6ce41109e)@"
    r"|\bmail delivery (?:subsystem|system|service)\b|\bdelivery subsystem\b",
    re.IGNORECASE,
)
# Subjects MTAs give their bounces, matched at the start: a prefix such as "FW:" means a person
# is passing one on. Localised ones are Exchange's, in the languages customers write in.
_BOUNCE_SUBJECT = re.compile(
    r"\s*(?:"
    r"undelivered mail|undeliverable|undelivered|undeliverable mail|non[- ]?deliverable"
    r"|delivery status|mail failed|failure delivery"
    r"|delivery (?:failure|failed|notification: delivery has failed|has failed|delayed)"
    r"|(?:permanent |temporary )?delivery failure"
    r"|message delivery failure|mail delivery failure|mail delivery failed|mail delivery problem"
    r"|failure notice|returned mail|return(?:ed)? to sender|mail system error"
    r"|delayed mail|warning: message \S+ delayed|message not delivered|mail could not be delivered"
    r"|could not send message|unzustellbar|nicht zustellbar|unzustellbare nachricht"
    r"|zustellung fehlgeschlagen|(?:übermittlung|zustellung) verzögert"
    r"|non remis|non distribuable|message non remis|échec de la (?:remise|distribution)"
    r"|remise différée|no se puede entregar|no entregado|entrega retrasada|error al entregar"
    r"|onbestelbaar|kan niet worden bezorgd|niet bezorgd|bezorging vertraagd"
    r"|non recapitabile|mancato recapito|não é possível entregar|não entregue|falha na entrega"
    r"|kan inte levereras|det går inte att leverera|kan ikke leveres|ei voi toimittaa"
    r"|niedostarczalne|nie można dostarczyć|nedoručitelné|teslim edilemedi"
    r"|配信不能|无法投递|無法傳遞|无法送达"
    r")",
    re.IGNORECASE,
)
_REPLY_OR_FORWARD = re.compile(
    r"\s*(?:re|fw|fwd|aw|wg|tr|sv|vs|antw|doorst|rv|r|i|enc|res|odp|pd|ynt|ilt)\s*(?:\[\d+\])?\s*:",
    re.IGNORECASE,
)


# Notification texts by the MTA that writes them, most distinctive first.
_FORMATS: Final[tuple[tuple[str, re.Pattern[str]], ...]] = tuple(
    (name, re.compile(pattern, re.IGNORECASE | re.MULTILINE))
    for name, pattern in (
        ("qmail", r"This is the qmail-send program|I'm afraid I wasn't able to deliver your message"),
        ("yahoo", r"Sorry, we were unable to deliver your message to the following address"),
        (
            "gmail",
            r"\*\* (?:Address not found|Message not delivered|Delivery incomplete|Message blocked) \*\*"
            r"|Your message wasn't delivered to"
            r"|Delivery to the following recipients? (?:failed|has been delayed)"
            r"|There was a temporary problem delivering your message",
        ),
        (
            "office365",
            r"Your message to \S+ couldn't be delivered|Your message couldn't be delivered"
            r"|More Info for Email Admins",
        ),
        (
            "exchange",
            r"Delivery has failed to these recipients or groups|did not reach the following recipient"
            r"|Your message did not reach some or all of the intended recipients"
            r"|Diagnostic information for administrators"
            r"|Die Übermittlung an folgende Empfänger oder Gruppen ist fehlgeschlagen"
            r"|Diagnoseinformationen für Administratoren"
            r"|La remise aux destinataires ou groupes suivants a échoué"
            r"|Uw bericht kan niet worden bezorgd bij de volgende geadresseerden of groepen",
        ),
        ("ses", r"An error occurred while trying to deliver the mail to the following recipients"),
        (
            "postfix",
            r"This is the (?:mail system|Postfix program) at host|^\s*The Postfix program\s*$"
            r"|I'm sorry to have to inform you that your message could not\s+be delivered",
        ),
        (
            "sendmail",
            r"-{3,}\s*The following addresses had (?:permanent fatal|transient non-fatal) errors"
            r"|-{3,}\s*Transcript of session follows",
        ),
        (
            "exim",
            r"This message was created automatically by mail delivery software"
            r"|A message that you sent (?:could not be|has not yet been) delivered"
            r" to one or more of its\s+recipients",
        ),
    )
)
_FORMAT_NAMES: Final = {
    "dsn": "delivery status notification (RFC 3464)",
    "qmail": "qmail bounce",
    "yahoo": "Yahoo bounce",
    "gmail": "Gmail bounce",
    "office365": "Microsoft 365 non-delivery report",
    "exchange": "Exchange non-delivery report",
    "ses": "Amazon SES bounce",
    "postfix": "Postfix bounce",
    "sendmail": "Sendmail bounce",
    "exim": "Exim bounce",
    "other": "bounce from an unrecognised mail system",
}
# where a text-only bounce stops reporting and starts quoting the returned message
_COPY_MARKER = re.compile(
    r"^[ \t>]*(?:-{2,}[ \t]*Below this line is a copy of the message"
    r"|-{2,}[ \t]*This is a copy of the message"
    r"|-{2,}[ \t]*(?:Original|Unsent|Returned) message(?: follows)?"
    r"|-{2,}[ \t]*(?:The )?(?:original )?message header"
    r"|Original message headers:|Original Message Headers|Message (?:contents|headers) follow"
    r"|Ursprüngliche Nachrichtenkopfzeilen|En-têtes de message d'origine)",
    re.IGNORECASE | re.MULTILINE,
)
_TEMPORARY = re.compile(
    r"THIS IS A WARNING ONLY|has not yet been delivered|still being retried|will be retried"
    r"|Delivery attempts will continue|will (?:continue to|keep) try|Delivery incomplete"
    r"|temporary problem delivering|has been delayed|Delivery is delayed|transient non-fatal errors"
    r"|Zustellung verzögert|Übermittlung verzögert",
    re.IGNORECASE,
)
# wording only final failures use ("could not be delivered" is also in Postfix's delay warning)
_PERMANENT = re.compile(
    r"permanent (?:error|fatal)|failed permanently|I've given up|has failed to these"
    r"|couldn't be delivered|wasn't delivered to|ist fehlgeschlagen",
    re.IGNORECASE,
)
# lines that name a failed recipient in a notification text
_RECIPIENT_LINES: Final = (
    # "<a@b>: host ... said: 550 ..." (Postfix, qmail, Yahoo), "a@b: 550 ..." (OpenSMTPD)
    re.compile(
        rf"^<?({_ADDRESS.pattern})>?(?: \(expanded from <[^<>\n]{{0,300}}>\))?:(?:[ \t]|$)", re.MULTILINE
    ),
    re.compile(rf"^[ \t]*<?({_ADDRESS.pattern})>?[ \t]*$", re.MULTILINE),
    re.compile(
        r"(?:wasn't delivered to|Your message to|delivering your (?:message|mail) to)"
        rf"\s+<?({_ADDRESS.pattern})>?",
        re.IGNORECASE,
    ),
    re.compile(
        r"Delivery to the following recipients? (?:failed|has been delayed)[^\n]*\n"
        rf"\s*<?({_ADDRESS.pattern})>?",
        re.IGNORECASE,
    ),
)
# a diagnostic as Exchange, Microsoft 365, Gmail, Yahoo and qmail put it in their text
_DIAGNOSTIC_LINES: Final = (
    re.compile(r"Remote Server returned '([^'\n]{1,1000})'", re.IGNORECASE),
    re.compile(r"Reported error:[ \t]*([^\n]{1,1000})", re.IGNORECASE),
    re.compile(r"The response from the remote server was:[ \t]*\n[ \t]*([^\n]{1,1000})", re.IGNORECASE),
    re.compile(r"Remote host said:[ \t]*([^\n]{1,1000})", re.IGNORECASE),
)
_LEADING_ADDRESS = re.compile(rf"<?({_ADDRESS.pattern})>?:\s*")
_RULE_LINE = re.compile(r"^[ \t]*-{3,}[^\n]*$", re.MULTILINE)
_PARAGRAPH = re.compile(r"\n[ \t]*\n")
_QUOTED_MESSAGE_ID = re.compile(
    r"^[ \t>]*Message-ID:[ \t]*(?:\n[ \t]+)?<([^<>\s]{1,250}@[^<>\s]{1,250})>", re.IGNORECASE | re.MULTILINE
)
_QUOTED_SUBJECT = re.compile(
    r"^[ \t>]*Subject:[ \t]*([^\n]*(?:\n[ \t]+[^\n]*){0,10})", re.IGNORECASE | re.MULTILINE
)
_NAMED_SUBJECT = re.compile(r"^[ \t]*The subject of the message is:[ \t]*([^\n]{1,998})", re.MULTILINE)
_BLOCK_TAGS = re.compile(r"<(?:br|/p|/div|/tr|/li|/h\d|/table|/pre|/td)\b[^<>]{0,200}>", re.IGNORECASE)
_TAG = re.compile(r"<[^<>]*>")
_SKIPPED_ELEMENT = re.compile(r"<(style|script|head)\b")
_FIELD = re.compile(r"([!-9;-~]{1,64})[ \t]*:[ \t]*(.*)")


@dataclass(frozen=True)
class FailedRecipient:
    """One recipient a bounce reports as failed or delayed, with the status the MTA gave (RFC 3463)."""

    address: str  # lower-cased
    status: str  # "5.1.1"; "5.0.0" / "4.0.0" when the bounce names no code
    action: str  # "failed" or "delayed"
    diagnostic: str  # the remote server's answer, one line, "" when absent
    permanent: bool  # failed with a 5.x.x status: the address will not work if retried


@dataclass(frozen=True)
class Bounce:
    """What a bounce says: the failed recipients (in report order) and the message that bounced."""

    recipients: tuple[FailedRecipient, ...]
    format: str  # "dsn", or the mail system whose text was recognised ("exim", ...), or "other"
    original_message_id: str  # without angle brackets, "" when the bounce does not say
    original_subject: str
    reasons: tuple[str, ...]

    @property
    def permanent(self) -> bool:
        return any(r.permanent for r in self.recipients)


def looks_like_bounce(headers: Mapping[str, tuple[str, ...]], sender: str, subject: str) -> bool:
    """Whether a message may be a bounce, from its decoded headers alone (as ParsedMail.headers).

    Cheap and generous: it only decides which messages are worth `parse_bounce`. An
    out-of-office sent with an empty Return-Path passes, a read receipt never does.
    """
    content_type = _first(headers, "content-type").lower()
    if content_type.startswith("multipart/report"):
        report_type = _REPORT_TYPE.search(content_type)
        return not (report_type and report_type.group(1).lower() in _NOT_BOUNCE_REPORTS)
    if headers.get("x-failed-recipients"):
        return True
    if _DAEMON.search(sender) or _DAEMON.search(_first(headers, "from")):
        return True
    if any(value.strip() == "<>" for value in headers.get("return-path", ())):
        return True
    return bool(_BOUNCE_SUBJECT.match(subject))


def parse_bounce(raw: bytes) -> Bounce | None:
    """Read a bounce from raw RFC 5322 bytes; None when the message is not one.

    A report listing only delivered, relayed or expanded recipients (a success notice) is not
    a bounce. Never raises: unreadable input is logged and treated as not a bounce.
    """
    try:
        return _parse(raw[:MAX_BYTES])
    except Exception:
        # a screen must not take a message down with it: whatever the stdlib, flufl.bounce or a
        # regular expression meets in hostile mail, the message goes on as normal mail
        log.warning("bounce parser failed; treating the message as not a bounce", exc_info=True)
        return None


# ------------------------------------------------------------------------------------------ parsing


@dataclass(frozen=True)
class _Headers:
    values: Mapping[str, tuple[str, ...]]
    sender: str
    subject: str

    def first(self, name: str) -> str:
        return _first(self.values, name)


@dataclass
class _Parts:
    reports: list[list[dict[str, str]]]  # the field blocks of each delivery-status part
    originals: list[email.message.Message]
    plain: list[str]
    html: list[str]


def _parse(raw: bytes) -> Bounce | None:
    end = min((i for i in (raw.find(b"\r\n\r\n"), raw.find(b"\n\n")) if i >= 0), default=len(raw))
    head = _read_headers(email.parser.BytesHeaderParser().parsebytes(raw[: end + 4]))
    if not looks_like_bounce(head.values, head.sender, head.subject):
        return None
    if len(_BOUNDARY.findall(raw, 0, MAX_BYTES)) > MAX_BOUNDARIES:
        log.info("bounce candidate with over %d MIME boundaries not read", MAX_BOUNDARIES)
        return None
    message = email.message_from_bytes(raw)  # compat32: tolerant of every header it meets
    parts = _walk(message)
    text = _notification_text(parts)
    original_id, original_subject = _original(parts, text, head)
    bounce, successes = _from_dsn(parts, text, original_id, original_subject)
    if bounce is not None or successes:
        return bounce  # a report of delivered or relayed recipients only is a success notice
    return _from_text(text, head, original_id, original_subject)


def _read_headers(message: email.message.Message) -> _Headers:
    wanted = {
        "content-type", "from", "subject", "return-path", "x-failed-recipients", "to", "cc",
        "delivered-to", "x-original-to", "in-reply-to", "references",
    }  # fmt: skip
    values: dict[str, list[str]] = {}
    for name, value in message.raw_items():
        key = name.lower()
        if key in wanted and len(values.setdefault(key, [])) < MAX_HEADER_VALUES:
            # message_ids reads References from the raw value; everything else decoded
            values[key].append(
                str(value)[:20_000] if key == "references" else decode_value(value)[:MAX_FIELD]
            )
    frozen = {key: tuple(found) for key, found in values.items()}
    return _Headers(frozen, _first(frozen, "from"), _first(frozen, "subject"))


def _walk(message: email.message.Message) -> _Parts:
    """The parts of the report itself: a returned message (message/*) is not entered."""
    parts = _Parts([], [], [], [])
    stack: list[tuple[email.message.Message, int]] = [(message, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        content_type = part.get_content_type()
        if content_type in _DSN_TYPES:
            parts.reports.append(_dsn_blocks(part))
        elif content_type in _ORIGINAL_TYPES:
            parts.originals.append(part)
        elif content_type.startswith("message/"):
            continue
        elif part.is_multipart():
            payload = part.get_payload()
            if depth < MAX_DEPTH and isinstance(payload, list):
                stack.extend(
                    (child, depth + 1) for child in reversed(payload[:MAX_PARTS]) if _is_message(child)
                )
        elif content_type == "text/plain" and not _is_attachment(part):
            parts.plain.append(_text(part, MAX_TEXT))
        elif content_type == "text/html" and not _is_attachment(part):
            parts.html.append(_text(part, MAX_HTML))
    return parts


def _is_attachment(part: email.message.Message) -> bool:
    return str(part.get("content-disposition", "")).strip().lower().startswith("attachment")


def _text(part: email.message.Message, limit: int) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    charset = part.get_content_charset()
    text = bytes_to_text(data[: limit * 4], charset if isinstance(charset, str) else None)
    return text.replace("\r\n", "\n").replace("\r", "\n")[:limit]


def _notification_text(parts: _Parts) -> str:
    plain = "\n\n".join(p for p in parts.plain if p.strip())
    if plain.strip():
        return plain[:MAX_TEXT]
    return "\n\n".join(_html_to_text(h) for h in parts.html)[:MAX_TEXT]


def _html_to_text(markup: str) -> str:
    """Enough of an HTML notification to match texts in: no tree, linear in the input."""
    lower = markup.lower()
    kept: list[str] = []
    position = 0
    while position < len(markup):
        skipped = _SKIPPED_ELEMENT.search(lower, position)
        if skipped is None:
            kept.append(markup[position:])
            break
        kept.append(markup[position : skipped.start()])
        end = lower.find(f"</{skipped.group(1)}", skipped.end())
        close = lower.find(">", end) if end >= 0 else -1
        if close < 0:
            break
        position = close + 1
    text = _BLOCK_TAGS.sub("\n", "".join(kept))
    text = html.unescape(_TAG.sub(" ", text)).replace("\xa0", " ")
    return "\n".join(line.strip() for line in text.split("\n"))


# ------------------------------------------------------------------------------------------ DSN


def _dsn_blocks(part: email.message.Message) -> list[dict[str, str]]:
    """The field blocks of a delivery-status part, field names lower-cased, values decoded."""
    payload = part.get_payload()
    if isinstance(payload, list):
        # compat32 parses each block into a Message; a base64 or quoted-printable report
        # (rare, but legal) is rebuilt as text and decoded below
        encoding = str(part.get("content-transfer-encoding", "")).strip().lower()
        if encoding not in ("base64", "quoted-printable"):
            return [_block_fields(block) for block in payload[: MAX_RECIPIENTS + 1] if _is_message(block)]
        text = "\n\n".join(
            _block_text(block) for block in payload[: MAX_RECIPIENTS + 1] if _is_message(block)
        )
        data = _decode_transfer(text.encode("ascii", "replace"), encoding)
    else:
        decoded = part.get_payload(decode=True)
        if not isinstance(decoded, bytes):
            return []
        data = decoded
    text = bytes_to_text(data[: MAX_TEXT * 4], "utf-8").replace("\r\n", "\n")[:MAX_TEXT]
    return [_text_fields(block) for block in _PARAGRAPH.split(text)[: MAX_RECIPIENTS + 1]]


def _is_message(value: object) -> TypeGuard[email.message.Message]:
    return isinstance(value, email.message.Message)


def _block_fields(block: email.message.Message) -> dict[str, str]:
    fields: dict[str, str] = {}
    for name, value in block.raw_items():
        fields.setdefault(name.strip().lower(), decode_value(value)[:MAX_FIELD])
    return fields


def _block_text(block: email.message.Message) -> str:
    lines = [f"{name}: {value}" for name, value in block.raw_items()]
    payload = block.get_payload()
    if isinstance(payload, str):
        lines.append(payload)
    return "\n".join(lines)


def _decode_transfer(data: bytes, encoding: str) -> bytes:
    if encoding == "base64":
        try:
            return base64.b64decode(b"".join(data.split()), validate=False)
        except (binascii.Error, ValueError):
            return data
    return quopri.decodestring(data)


def _text_fields(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    name = ""
    for line in block.split("\n")[:200]:
        if line[:1] in (" ", "\t") and name:
            fields[name] = (fields[name] + " " + line.strip())[:MAX_FIELD]
            continue
        match = _FIELD.match(line)
        if match:
            name = match.group(1).lower()
            fields.setdefault(name, decode_value(match.group(2))[:MAX_FIELD])
    return fields


def _is_recipient_block(block: Mapping[str, str]) -> bool:
    return "action" in block or "final-recipient" in block or "original-recipient" in block


def _from_dsn(parts: _Parts, text: str, original_id: str, original_subject: str) -> tuple[Bounce | None, int]:
    """The bounce a DSN reports, and how many recipients it reports as delivered, relayed or expanded."""
    recipients: dict[str, FailedRecipient] = {}
    reporting = ""
    unnamed = successes = 0
    for report in parts.reports:
        for block in report:
            reporting = reporting or block.get("reporting-mta", "")
            if not _is_recipient_block(block):
                continue
            action = block.get("action", "").split(maxsplit=1)[0].lower() if block.get("action") else ""
            if action in _SUCCESS_ACTIONS:
                successes += 1
            if action not in _COUNTED_ACTIONS:
                continue  # delivered, relayed, expanded: not a failure; anything else unreadable
            action = "delayed" if action == "delayed" else "failed"
            # the address we sent to, if the MTA kept it; else where it ended up
            address = _dsn_address(block.get("original-recipient", "")) or _dsn_address(
                block.get("final-recipient", "")
            )
            if not address:
                unnamed += 1
                continue
            diagnostic = clean_line(block.get("diagnostic-code", ""))[:MAX_FIELD] or _diagnostic_for(
                text, address
            )
            status = _status(block.get("status", ""), diagnostic, action)
            recipients.setdefault(
                address, FailedRecipient(address, status, action, diagnostic, _is_permanent(action, status))
            )
    if not recipients and not unnamed:
        return None, successes
    found = tuple(recipients.values())[:MAX_RECIPIENTS]
    origin = f" from {reporting}" if reporting else ""
    reasons = [f"bounce: {_FORMAT_NAMES['dsn']}{origin}"]
    if unnamed:
        reasons.append(f"{unnamed} failed recipient(s) without a readable address")
    return _bounce(found, "dsn", original_id, original_subject, reasons), successes


def _dsn_address(value: str) -> str:
    """The address from "rfc822; a@b.example", "rfc822;<a@b.example>" or a bare address."""
    kind, _, rest = value.partition(";")
    address = rest if rest else kind
    match = _ADDRESS.search(address.strip())
    return match.group(0).rstrip(".").lower() if match else ""


def _status(reported: str, diagnostic: str, action: str) -> str:
    """The RFC 3463 status: the reported one, made specific from the diagnostic where it says X.0.0."""
    in_diagnostic = _STATUS_IN_TEXT.search(diagnostic)
    detail = ".".join(in_diagnostic.groups()) if in_diagnostic else ""
    field = _STATUS_FIELD.match(reported)
    status = ".".join(field.groups()) if field else ""
    if status.startswith("2"):
        status = ""  # a success status on a failed or delayed recipient says nothing
    if status.endswith(".0.0") and detail[:1] == status[:1]:
        # X.0.0 means only "failed" or "delayed"; Exim writes 5.0.0 for every remote error
        return detail
    if status:
        return status
    if detail and not detail.startswith("2"):
        return detail
    code = _SMTP_CODE.search(diagnostic)
    if code and code.group(1) != "2":
        return f"{code.group(1)}.0.0"
    return "4.0.0" if action == "delayed" else "5.0.0"


def _is_permanent(action: str, status: str) -> bool:
    # a delayed message is still being retried; a failed one with 4.x.x was given up on
    # (queue lifetime), but the address itself may well work next time
    return action == "failed" and status.startswith("5")


# ------------------------------------------------------------------------------------------ text


def _from_text(text: str, head: _Headers, original_id: str, original_subject: str) -> Bounce | None:
    """A bounce without a readable DSN, recognised by its notification text and its sender."""
    if _REPLY_OR_FORWARD.match(head.subject):
        return None  # someone passing a bounce on, or answering one
    from_system = bool(_DAEMON.search(head.sender)) or bool(head.values.get("x-failed-recipients"))
    null_sender = any(value.strip() == "<>" for value in head.values.get("return-path", ()))
    report = _COPY_MARKER.split(text, maxsplit=1)[0]
    name = next((name for name, marker in _FORMATS if marker.search(report)), "")
    if name and not (from_system or null_sender):
        return None  # a person quoting a bounce
    if not name:
        # an unknown mail system: only when two of sender, envelope and subject say so
        if sum((from_system, null_sender, bool(_BOUNCE_SUBJECT.match(head.subject)))) < 2:
            return None
        name = "other"
    temporary, permanent = _flufl_failures(report, head)
    ours = _our_addresses(head)
    addresses = [a for a in _text_recipients(report) if a not in ours]
    source = "the notification text"
    if not addresses:
        addresses = [a for a in sorted(temporary | permanent) if a not in ours]
        source = "flufl.bounce"
    delayed = bool(_TEMPORARY.search(report)) and not _PERMANENT.search(report)
    recipients = []
    for address in addresses[:MAX_RECIPIENTS]:
        action = "delayed" if delayed or address in temporary else "failed"
        diagnostic = _diagnostic_for(report, address)
        status = _status("", diagnostic, action)
        recipients.append(FailedRecipient(address, status, action, diagnostic, _is_permanent(action, status)))
    reasons = [f"bounce: {_FORMAT_NAMES[name]} from {head.sender or 'an unnamed sender'}"]
    if recipients:
        reasons.append(f"failed addresses found in {source}")
    else:
        reasons.append("no failed address could be read")
    if not original_subject:
        named = _NAMED_SUBJECT.search(report)
        original_subject = decode_value(named.group(1)) if named else ""
    return _bounce(tuple(recipients), name, original_id, original_subject, reasons)


def _text_recipients(report: str) -> list[str]:
    found: dict[int, str] = {}
    for pattern in _RECIPIENT_LINES:
        for match in pattern.finditer(report):
            found.setdefault(match.start(), match.group(1).rstrip(".").lower())
    unique: dict[str, None] = {}
    for _, address in sorted(found.items()):
        unique.setdefault(address, None)
    return [a for a in unique if not _DAEMON.search(f" {a}")]


def _our_addresses(head: _Headers) -> frozenset[str]:
    """Addresses the bounce was sent to: never the failed recipient, though its text names them."""
    values = [v for key in ("to", "cc", "delivered-to", "x-original-to") for v in head.values.get(key, ())]
    return frozenset(match.group(0).lower() for value in values for match in _ADDRESS.finditer(value))


def _flufl_failures(report: str, head: _Headers) -> tuple[frozenset[str], frozenset[str]]:
    """Temporary and permanent failures flufl.bounce finds in the notification text alone."""
    message = email.message.Message()
    message["From"] = head.sender
    for value in head.values.get("x-failed-recipients", ()):
        message["X-Failed-Recipients"] = value
    # a str payload as it is: with a charset, set_payload would base64 the text flufl reads by line
    message.set_payload(report)
    try:
        temporary, permanent = all_failures(message)
    except Exception:
        # flufl.bounce re-raises whatever one of its detectors raised
        log.info("flufl.bounce failed on a notification text", exc_info=True)
        return frozenset(), frozenset()
    return _flufl_addresses(temporary), _flufl_addresses(permanent)


def _flufl_addresses(found: frozenset[bytes]) -> frozenset[str]:
    addresses = (_ADDRESS.fullmatch(a.decode("ascii", "replace").strip().lower()) for a in found)
    return frozenset(m.group(0) for m in addresses if m)


def _diagnostic_for(report: str, address: str) -> str:
    """The remote server's answer about one address: its paragraph with a code, or a known line."""
    if not report:
        return ""
    paragraphs = [p for p in _PARAGRAPH.split(report)[:500] if address in p.lower()]
    for paragraph in paragraphs:
        for pattern in _DIAGNOSTIC_LINES:
            match = pattern.search(paragraph)
            if match:
                return clean_line(match.group(1))[:MAX_FIELD]
    for paragraph in paragraphs:
        if _STATUS_IN_TEXT.search(paragraph) or _SMTP_CODE.search(paragraph) or "(#" in paragraph:
            return _paragraph_diagnostic(paragraph, address)
    for pattern in _DIAGNOSTIC_LINES:  # Microsoft 365 and Gmail name the address elsewhere
        match = pattern.search(report)
        if match:
            return clean_line(match.group(1))[:MAX_FIELD]
    return _paragraph_diagnostic(paragraphs[0], address) if paragraphs else ""


def _paragraph_diagnostic(paragraph: str, address: str) -> str:
    lines = [line for line in _RULE_LINE.sub("", paragraph).split("\n") if line.strip()]
    if lines and lines[0].strip().strip("<>:").lower() == address:
        lines = lines[1:]  # the address on a line of its own, as Exim, qmail and Yahoo write it
    text = clean_line(" ".join(lines))
    lead = _LEADING_ADDRESS.match(text)
    if lead and lead.group(1).lower() == address:
        text = text[lead.end() :]  # "<a@b>: host ... said: 550 ..." as Postfix writes it
    return text[:MAX_FIELD]


# ------------------------------------------------------------------------------------------ original


def _original(parts: _Parts, text: str, head: _Headers) -> tuple[str, str]:
    """Message-ID (without brackets) and subject of the message that bounced, where known."""
    subject = ""
    for part in parts.originals:
        headers = _original_headers(part)
        if headers is not None:
            subject = subject or decode_value(_raw_first(headers, "subject"))[:998]
            ids = message_ids(_raw_first(headers, "message-id"), limit=1)
            if ids:
                return ids[0], subject
    for report in parts.reports:  # Gmail names it in the DSN
        for block in report[:1]:
            ids = message_ids(block.get("x-original-message-id"), limit=1)
            if ids:
                return ids[0], subject
    quoted_id, quoted_subject = _quoted_original(text)
    if quoted_id:
        return quoted_id, subject or quoted_subject
    # Exchange, Gmail and Exim refer to the bounced message the way a reply does
    ids = message_ids(head.first("in-reply-to"), limit=1) or message_ids(head.first("references"))[-1:]
    return (ids[0] if ids else ""), subject


def _original_headers(part: email.message.Message) -> email.message.Message | None:
    payload = part.get_payload()
    if isinstance(payload, list):
        first = payload[0] if payload else None
        return first if isinstance(first, email.message.Message) else None
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return None
    return email.parser.BytesHeaderParser().parsebytes(data[:MAX_TEXT])


def _raw_first(message: email.message.Message, name: str) -> str | None:
    for key, value in message.raw_items():
        if key.lower() == name:
            return str(value)
    return None


def _quoted_original(text: str) -> tuple[str, str]:
    """Message-ID and subject from the original's headers quoted in a text-only bounce."""
    marker = _COPY_MARKER.search(text)
    copy = text[marker.start() :] if marker else text
    found = _QUOTED_MESSAGE_ID.search(copy)
    if not found:
        return "", ""
    start = copy.rfind("\n\n", 0, found.start()) + 1
    end = copy.find("\n\n", found.end())
    block = copy[start : end if end >= 0 else len(copy)][:MAX_TEXT]
    subject = _QUOTED_SUBJECT.search(block)
    return found.group(1), decode_value(subject.group(1))[:998] if subject else ""


# ------------------------------------------------------------------------------------------ helpers


def _bounce(
    recipients: tuple[FailedRecipient, ...],
    name: str,
    original_id: str,
    original_subject: str,
    reasons: list[str],
) -> Bounce:
    for recipient in recipients[:10]:
        kind = "permanent" if recipient.permanent else "temporary"
        why = f": {recipient.diagnostic[:200]}" if recipient.diagnostic else ""
        reasons.append(f"{recipient.address} {recipient.action}, {recipient.status} ({kind}){why}")
    if original_id:
        reasons.append(f"returned message {original_id}")
    return Bounce(recipients, name, original_id, original_subject, tuple(reasons))


def _first(headers: Mapping[str, tuple[str, ...]], name: str) -> str:
    values = headers.get(name)
    return values[0] if values else ""


def check(ctx: MailContext) -> Verdict | None:
    """A delivery report: recorded on the ticket of the message that bounced, never answered."""
    from maildesk.pipeline import Action, Verdict

    mail = ctx.parsed
    assert mail is not None
    sender = mail.sender.email if mail.sender else ""
    if not looks_like_bounce(mail.headers, sender, mail.subject):
        return None
    bounce = parse_bounce(ctx.raw)
    if bounce is None:
        return None
    ctx.bounce = bounce
    failed = ", ".join(
        f"{r.address} {r.status or ''} ({'permanent' if r.permanent else 'temporary'})".replace("  ", " ")
        for r in bounce.recipients
    )
    reasons = (
        f"delivery report ({bounce.format})",
        *([f"failed: {failed}"] if failed else []),
        *bounce.reasons,
    )
    return Verdict(Action.RECORD_ONLY, "bounce", reasons, may_open=False)
