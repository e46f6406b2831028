"""Subjects: the ticket tag `[MD-1042]`, and reply/forward prefixes in the languages clients use.

Clients prefix replies and forwards in their own language and stack them ("Re: AW: RE: Fwd:",
"Re[2]:", "RE :", "Réf. :", "SV:", "Antw:", "回复："), and lists or gateways add bracketed
tags ("[EXTERNAL]", "[acme-list]"). `subject_key` strips all of it so that two subjects of
one conversation compare equal.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

# reply and forward prefixes: English, German, Dutch, Scandinavian, French, Spanish/Portuguese,
# Italian, Polish, Czech, Turkish, Finnish, Greek, Chinese, Japanese, Korean, Hebrew, Russian
_PREFIX_WORDS = (
    "re",
    "fw",
    "fwd",
    "aw",
    "wg",
    "antw",
    "antwort",
    "sv",
    "vs",
    "vb",
    "tr",
    "ref",
    "réf",
    "rép",
    "rep",
    "rif",
    "r",
    "res",
    "enc",
    "rv",
    "odp",
    "pd",
    "fs",
    "ynt",
    "ilt",
    "atb",
    "vl",
    "vá",
    "απ",
    "σχετ",
    "προθ",
    "回复",
    "回覆",
    "答复",
    "转发",
    "轉寄",
    "返信",
    "転送",
    "답장",
    "전달",
    "השב",
    "הועבר",
    "на",
    "пересл",
    "отв",
)
_PREFIX = re.compile(
    r"^\s*(?:"
    r"(?:" + "|".join(re.escape(w) for w in _PREFIX_WORDS) + r")\.?"  # Re, Réf.
    r"\s*(?:\[\d{1,4}\]|\(\d{1,4}\)|\^\d{1,4}|\*\d{1,4})?"  # Re[2], Re(2), Re^2
    r"\s*[:：]"  # "RE :" (French spacing) and the full-width colon
    r"|\[[^\[\]]{0,60}\]"  # [EXTERNAL], [acme-list], [MD-12]
    r"|\([^()]{0,20}\)\s*(?=\S)"  # (fwd)
    r")\s*",
    re.IGNORECASE,
)
_SPACE = re.compile(r"\s+")
_GENERIC = frozenset({"", "no subject", "(no subject)", "kein betreff", "sans objet", "sin asunto"})


@lru_cache(maxsize=16)
def _tag_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(r"\[\s*" + re.escape(prefix) + r"\s*[-#: ]?\s*(\d{1,9})\s*\]", re.IGNORECASE)


def ticket_numbers(subject: str, prefix: str) -> list[int]:
    """Ticket numbers tagged in a subject, in order: "Re: [MD-12] x" -> [12]."""
    return [int(n) for n in _tag_pattern(prefix).findall(subject or "")]


def strip_prefixes(subject: str) -> str:
    """The subject without reply/forward prefixes and bracketed tags, as a person reads it."""
    subject = subject or ""
    for _ in range(50):  # bounded: a hostile subject could stack thousands of prefixes
        stripped = _PREFIX.sub("", subject, count=1)
        if stripped == subject:
            break
        subject = stripped
    return _SPACE.sub(" ", subject).strip()


def subject_key(subject: str) -> str:
    """A normalised subject for matching replies to tickets ("" when too generic to match on)."""
    key = subject or ""
    for _ in range(5):  # normalising can expose another prefix or space: repeat to a fixed point
        before = key
        key = unicodedata.normalize("NFKC", strip_prefixes(key)).casefold()
        key = _SPACE.sub(" ", key).strip(" .:-_!?")[:255]
        if key == before:
            break
    return "" if key in _GENERIC else key


def is_reply_subject(subject: str) -> bool:
    """True when the subject starts with a reply/forward prefix."""
    return bool(_PREFIX.match(subject or "")) and not (subject or "").lstrip().startswith("[")


def tag_subject(subject: str, prefix: str, number: int) -> str:
    """The subject with the ticket tag, added once: "Printer broken" -> "[MD-12] Printer broken"."""
    if number in ticket_numbers(subject, prefix):
        return subject
    return f"[{prefix}-{number}] {strip_prefixes(subject) or subject}".strip()
