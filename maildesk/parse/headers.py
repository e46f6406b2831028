"""Header decoding that never raises: RFC 2047 words, raw 8-bit bytes, and hostile control characters.

Real mail carries headers in every state: encoded words in unknown charsets, broken
base64 inside `=?utf-8?B?...?=`, raw UTF-8 or Latin-1 bytes where only ASCII is allowed,
and CR/LF pairs meant to smuggle a second header into our replies. Everything here
returns a clean single-line string.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import quopri
import re

_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]+")
_FOLD = re.compile(r"\r?\n[ \t]*|\r[ \t]*")
_SPACES = re.compile(r"[ \t]+")
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,64})\?([bBqQ])\?([^?\s]*)\?=")
_BETWEEN_WORDS = re.compile(
    r"(=\?[^?\s]{1,64}\?[bBqQ]\?[^?\s]*\?=)[ \t]+(?==\?[^?\s]{1,64}\?[bBqQ]\?[^?\s]*\?=)"
)
_MSGID = re.compile(r"<([^<>\s]{1,990})>")
_BARE_MSGID = re.compile(r"[^<>\s,;]+@[^<>\s,;]+")
# fallbacks for charsets that are missing or that Python does not know ("unknown-8bit", "default")
_FALLBACK_CHARSETS = ("utf-8", "cp1252")


def bytes_to_text(data: bytes, charset: str | None = None) -> str:
    """Decode bytes with the declared charset if it is known and fits, else UTF-8, else cp1252."""
    candidates = ([charset] if charset else []) + list(_FALLBACK_CHARSETS)
    for name in candidates:
        try:
            codecs.lookup(name)
            return data.decode(name)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return data.decode("latin-1")


def _undo_surrogates(value: str) -> str:
    # the stdlib parser keeps raw 8-bit header bytes as surrogate escapes
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return bytes_to_text(value.encode("utf-8", "surrogateescape"))
    return value


def clean_line(value: str) -> str:
    """One line of printable text: folding undone, control characters (CR, LF, NUL) removed."""
    value = _FOLD.sub(" ", value)
    value = _CONTROL.sub(" ", value)
    return _SPACES.sub(" ", value).strip()


def decode_value(value: object) -> str:
    """A header value as readable text: encoded words decoded, raw bytes guessed, one clean line."""
    if value is None:
        return ""
    text = _undo_surrogates(str(value))
    text = _FOLD.sub(" ", text)
    if "=?" not in text:
        return clean_line(text)
    # whitespace between two adjacent encoded words is not part of the text (RFC 2047 6.2)
    text = _BETWEEN_WORDS.sub(r"\1", text)
    return clean_line(_ENCODED_WORD.sub(_decode_word, text))


def _decode_word(match: re.Match[str]) -> str:
    charset, encoding, payload = match.group(1), match.group(2).lower(), match.group(3)
    charset = charset.split("*", 1)[0]  # RFC 2231 language suffix
    try:
        if encoding == "b":
            data = base64.b64decode(payload + "=" * (-len(payload) % 4), validate=False)
        else:
            data = quopri.decodestring(payload.replace("_", " ").encode("ascii", "replace"), header=True)
    except (binascii.Error, ValueError):
        return match.group(0)  # leave a broken word as written rather than lose it
    return bytes_to_text(data, charset)


def message_ids(value: object, limit: int = 100) -> tuple[str, ...]:
    """Message-IDs in a References/In-Reply-To value, without brackets, in order, deduplicated.

    A hostile message can carry 20,000 References; the first (the thread root) and the
    last `limit - 1` (the nearest ancestors) are the ones threading needs.
    """
    if value is None:
        return ()
    text = _undo_surrogates(str(value))
    found = _MSGID.findall(text) or _BARE_MSGID.findall(text)
    seen: dict[str, None] = {}
    for mid in found:
        seen.setdefault(mid, None)
    ids = list(seen)
    if len(ids) > limit:
        ids = [ids[0], *ids[-(limit - 1) :]]
    return tuple(ids)
