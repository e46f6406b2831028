"""Writing a finished message as it goes on the wire, fast, for the common all-ASCII case.

The email package takes about 2 ms to build and serialise one message, which made rendering
the slowest part of the outbox. `compose` writes plain-ASCII messages directly instead and
keeps their bytes (WireMessage), checking every header value on the way: printable ASCII
only, so no CR or LF can start a header of its own. Anything else is left to the email
package, which encodes or refuses it.
"""

from __future__ import annotations

import binascii
import re
import secrets
from collections.abc import Sequence
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP, SMTPUTF8, Policy, default

# a header for `compose`: text, one (display name, address) mailbox, or a list of mailboxes
HeaderValue = str | tuple[str, str] | list[tuple[str, str]]

FOLD_AT = 78  # header lines are folded to this length where they can be (RFC 5322 2.1.1)
_PRINTABLE = re.compile(r"[\x20-\x7e]*\Z")  # ASCII without CR, LF or any other control character
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR_SPEC = re.compile(rf"{_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\Z")  # dot-atom@domain
_SPECIALS = frozenset('()<>@,:;."[]\\')  # a display name with one of these is quoted (RFC 5322 3.2.3)


class WireMessage(EmailMessage):
    """A message made by `compose`, which keeps the exact bytes it is sent as.

    `as_bytes(policy=SMTP)` returns those bytes for as long as no header, payload or part
    has changed since (they are ASCII, so SMTPUTF8 gets them too); after a change, or for
    another policy, the email package generates the message again as usual.
    """

    _wire: bytes
    _sealed: tuple[object, ...]

    def _seal(self, wire: bytes) -> WireMessage:
        self._wire, self._sealed = wire, self._state()
        return self

    def _state(self) -> tuple[object, ...]:
        """Every part with its headers and payload as stored: equal only while nothing changed."""
        state = []
        for part in self.walk():
            payload = part._payload  # type: ignore[attr-defined]
            state.append(
                (part, tuple(part.raw_items()), tuple(payload) if isinstance(payload, list) else payload)
            )
        return tuple(state)

    def as_bytes(self, unixfrom: bool = False, policy: Policy | None = None) -> bytes:
        if not unixfrom and (policy is SMTP or policy is SMTPUTF8) and self._state() == self._sealed:
            return self._wire
        return super().as_bytes(unixfrom, policy)


def compose(headers: Sequence[tuple[str, HeaderValue]], text: str, html: str | None = None) -> EmailMessage:
    """A message with these headers, `text` and (when given) `html` as its alternative.

    The common case is written directly, which is many times faster than the email package:
    headers of printable ASCII only (so no CR or LF can start a header of its own), folded at
    spaces, display names quoted where RFC 5322 needs it; bodies as UTF-8 quoted-printable,
    in which the "=_" boundary cannot occur (RFC 2045 6.7). Anything else (a non-ASCII name or
    subject, text that would read as an RFC 2047 encoded word, an address that is not a plain
    dot-atom) is left to the email package, which encodes it or refuses it.
    """
    lines = _header_lines(headers)
    if lines is None:
        return _compose_with_email_package(headers, text, html)
    message = WireMessage(policy=default)
    for name, value in lines:
        message.set_raw(name, value)
    message.set_raw("MIME-Version", "1.0")
    wire = [f"{name}: {value}\r\n" for name, value in lines]
    wire.append("MIME-Version: 1.0\r\n")
    # the parts keep LF line ends, as the email package does; the wire has CRLF
    plain = _quoted_printable(text)
    if html is None:
        _set_text(message, "plain", plain)
        wire += [_text_head("plain"), "\r\n", plain.replace("\n", "\r\n")]
    else:
        rich = _quoted_printable(html)
        boundary = f"=_{secrets.token_hex(12)}"
        message.set_raw("Content-Type", f'multipart/alternative; boundary="{boundary}"')
        message.set_payload([_set_text(EmailMessage(policy=default), "plain", plain),  # type: ignore[arg-type]
                             _set_text(EmailMessage(policy=default), "html", rich)])  # fmt: skip
        wire += [
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n',
            f"--{boundary}\r\n", _text_head("plain"), "\r\n", plain.replace("\n", "\r\n"),
            f"\r\n--{boundary}\r\n", _text_head("html"), "\r\n", rich.replace("\n", "\r\n"),
            f"\r\n--{boundary}--\r\n",
        ]  # fmt: skip
    return message._seal("".join(wire).encode("ascii"))


def _header_lines(headers: Sequence[tuple[str, HeaderValue]]) -> list[tuple[str, str]] | None:
    """(name, folded value) for each header, or None when one needs the email package."""
    lines = []
    for name, value in headers:
        if isinstance(value, str):
            if not _PRINTABLE.match(value) or "=?" in value:
                return None
        else:
            mailboxes = []
            for display, address in [value] if isinstance(value, tuple) else value:
                if not _ADDR_SPEC.match(address) or not _PRINTABLE.match(display) or "=?" in display:
                    return None
                if not _SPECIALS.isdisjoint(display):
                    display = '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'
                mailboxes.append(f"{display} <{address}>" if display else address)
            value = ", ".join(mailboxes)
        folded = _fold(name, value)
        if folded is None:
            return None
        lines.append((name, folded))
    return lines


def _fold(name: str, value: str) -> str | None:
    """`value` with CRLF inserted before spaces so that lines stay within FOLD_AT where they can."""
    if len(name) + 2 + len(value) <= FOLD_AT:
        return value
    if "  " in value or value.strip(" ") != value:
        return None  # a folded line must not be only whitespace: keep to single spaces
    words = value.split(" ")
    lines = [f"{name}: {words[0]}"]
    for word in words[1:]:
        if len(lines[-1]) + 1 + len(word) > FOLD_AT:
            lines.append(f" {word}")
        else:
            lines[-1] += f" {word}"
    if max(map(len, lines)) > 998:  # the hard limit (RFC 5322 2.1.1): one word too long
        return None
    return "\r\n".join(lines)[len(name) + 2 :]


def _quoted_printable(text: str) -> str:
    """UTF-8 `text` as quoted-printable with LF line ends, ending in one."""
    return binascii.b2a_qp(b"\n".join(text.encode("utf-8").splitlines()) + b"\n").decode("ascii")


def _text_head(subtype: str) -> str:
    return f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n'


def _set_text(part: EmailMessage, subtype: str, body: str) -> EmailMessage:
    part.set_raw("Content-Type", f'text/{subtype}; charset="utf-8"')
    part.set_raw("Content-Transfer-Encoding", "quoted-printable")
    part.set_payload(body)
    return part


def _compose_with_email_package(
    headers: Sequence[tuple[str, HeaderValue]], text: str, html: str | None
) -> EmailMessage:
    message = EmailMessage(policy=default)
    for name, value in headers:
        # headerregistry, not formataddr: it takes internationalised addresses (RFC 6532)
        if isinstance(value, tuple):
            message[name] = Address(value[0], addr_spec=value[1])
        elif isinstance(value, list):
            message[name] = [Address(display, addr_spec=address) for display, address in value]
        else:
            message[name] = value
    message.set_content(text, cte="quoted-printable")
    if html is not None:
        message.add_alternative(html, subtype="html")
    return message
