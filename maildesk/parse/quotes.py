"""Find what the writer of a plain-text reply newly wrote: strip quoted history and signatures.

Like github/email_reply_parser and mailgun/talon this works on lines, but it keeps inline
answers: `>`-quoted blocks are removed wherever they are and the text between them stays,
while *unquoted* history (Outlook's header block, "-----Original Message-----", a bare
"On ... wrote:" with the old text below it) can only be recognised by its first line, so
everything from that line on is dropped.

Every function here is total and runs in linear time: regular expressions only ever see short
lines (long ones cannot be markers) and have no nested unbounded repeats, so a megabyte of
hostile text costs about as much as a megabyte of ordinary text.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from maildesk.parse.html import HtmlDocument

__all__ = [
    "MarkerKind",
    "classify_marker",
    "header_field",
    "is_attribution",
    "new_text",
    "strip_quotes",
    "strip_signature",
]


class MarkerKind(enum.Enum):
    """What a separator line introduces: the history of a reply, or a forwarded message."""

    REPLY = "reply"
    FORWARD = "forward"


# Markers, attributions and header labels are short; longer lines are never tested against a
# pattern, which is what keeps a 1 MB line cheap.
_MAX_MARKER_LEN = 200
_MAX_ATTRIBUTION_LEN = 400
_MAX_ATTRIBUTION_LINES = 4
# Attributions stacked at the end with nothing below them; a real message has one or two.
_MAX_TRAILING_ATTRIBUTIONS = 10

_REPLY_PHRASES = (
    r"original message|ursprüngliche nachricht|originalnachricht|message d'origine"
    r"|mensaje original|messaggio originale|oorspronkelijk bericht|origineel bericht"
    r"|oryginalna wiadomość|wiadomość oryginalna|исходное сообщение|původní zpráva"
    r"|original meddelelse|ursprungligt meddelande|opprinnelig melding|alkuperäinen viesti"
    r"|eredeti üzenet|mensagem original|orijinal ileti|原始邮件|原始郵件|元のメッセージ"
)
_FORWARD_PHRASES = (
    r"forwarded message|forwarded e-?mail|weitergeleitete nachricht|message transféré"
    r"|message réexpédié|mensaje reenviado|messaggio inoltrato|doorgestuurd bericht"
    r"|przekazana wiadomość|wiadomość przekazana|пересылаемое сообщение|пересланное сообщение"
    r"|videresendt meddelelse|vidarebefordrat meddelande|välitetty viesti|továbbított üzenet"
    r"|mensagem encaminhada|iletilen ileti|转发的邮件|轉寄郵件"
)


def _ruled(phrases: str) -> re.Pattern[str]:
    # "-----Original Message-----", "---------- Forwarded message ---------": the phrase must
    # carry a rule of dashes (or = _ *) on at least one side, so prose mentioning it is kept.
    rule = r"[-=_*]{2,}[-=_* ]{0,30}"
    return re.compile(
        rf"(?:{rule}(?:{phrases})[-=_* ]{{0,30}}|(?:{phrases})\s*{rule}):?",
        flags=re.IGNORECASE,
    )


_LETTER = re.compile(r"[^\W\d_]")
_REPLY_SEPARATOR = _ruled(_REPLY_PHRASES)
_FORWARD_SEPARATOR = _ruled(_FORWARD_PHRASES)
# Apple Mail and others introduce a forward with a sentence instead of a rule.
_FORWARD_INTRO = re.compile(
    r"(?:begin forwarded message|anfang der weitergeleiteten nachricht"
    r"|début du message (?:réexpédié|transféré)|inicio del mensaje reenviado"
    r"|inizio messaggio inoltrato|begin doorgestuurd bericht|início da mensagem reencaminhada"
    r")\s*:",
    flags=re.IGNORECASE,
)

# "From:", "*Von:*", "De :" ... mapped to the header they are, so a block can be judged by how
# many distinct headers it has. Labels are looked up, not matched, to keep the regex trivial.
_HEADER_LABEL = re.compile(r"[\s*]{0,4}([^\W\d_][^\W\d_'.-]{0,24}(?: [^\W\d_]{1,12}){0,2})\s*\**\s*[:：]")
_FIELDS = {
    "from": (
        "from",
        "von",
        "de",
        "da",
        "van",
        "od",
        "от",
        "fra",
        "från",
        "lähettäjä",
        "feladó",
        "kimden",
        "发件人",
        "寄件者",
        "差出人",
        "absender",
        "remitente",
        "mittente",
        "expéditeur",
        "nadawca",
        "afzender",
    ),
    "date": (
        "sent",
        "date",
        "gesendet",
        "datum",
        "envoyé",
        "enviado",
        "enviada",
        "enviado el",
        "enviada em",
        "enviado em",
        "fecha",
        "inviato",
        "data",
        "verzonden",
        "wysłano",
        "wysłane",
        "отправлено",
        "дата",
        "sendt",
        "skickat",
        "lähetetty",
        "elküldve",
        "gönderildi",
        "tarih",
        "发送时间",
        "日期",
        "寄件日期",
        "送信日時",
        "odesláno",
        "sent at",
    ),
    "to": (
        "to",
        "an",
        "à",
        "a",
        "para",
        "aan",
        "do",
        "кому",
        "til",
        "till",
        "vastaanottaja",
        "címzett",
        "kime",
        "收件人",
        "收件者",
        "宛先",
        "komu",
        "destinatario",
        "destinataire",
    ),
    "subject": (
        "subject",
        "betreff",
        "objet",
        "asunto",
        "assunto",
        "oggetto",
        "onderwerp",
        "temat",
        "тема",
        "emne",
        "ämne",
        "aihe",
        "tárgy",
        "konu",
        "主题",
        "主旨",
        "件名",
        "předmět",
    ),
    "cc": ("cc", "bcc", "kopie", "copia", "kopia", "копия", "cópia", "kopio", "másolat"),
}
_FIELD_OF = {label: field for field, labels in _FIELDS.items() for label in labels}
_MAX_HEADER_BLOCK = 10

_RULE_LINE = re.compile(r"\s*[-_=~—–*]{5,}\s*")

# Words by which mail clients say "X wrote", in the languages our customers write in.
_VERB_WORDS = frozenset(
    {"wrote", "writes", "schrieb", "schreibt", "escribió", "escribio", "scrisse", "schreef", "pisze",
     "napisał", "napisała", "napisal", "escreveu", "skrev", "kirjoitti", "írta", "napsal", "napísal",
     "yazdı", "quoting", "citando", "написал", "написала", "написав", "пишет", "έγραψε"}
)  # fmt: skip
_VERB_PHRASES = ("a écrit", "a ecrit", "ha scritto", "zitat von", "写道", "寫道", "のメッセージ")
_WORD = re.compile(r"\w+")


def _has_verb(text: str) -> bool:
    # A set lookup per word: a regex alternation of these words is several times slower.
    lowered = text.lower()
    return any(word in _VERB_WORDS for word in _WORD.findall(lowered)) or any(
        phrase in lowered for phrase in _VERB_PHRASES
    )


_EMAIL = re.compile(r"[\w.+-]@[\w-]+\.[\w.-]|<[^<>\s]{1,80}@[^<>\s]{1,80}>|\[mailto:")
_DATE = re.compile(r"\b\d{1,2}:\d{2}\b|\b(?:19|20)\d{2}\b|\b\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b|\d{4}年")
# Lines that begin an attribution ("On Tue, ...", "Am 03.11.2026 ...", "2026-11-03 10:02 ...",
# "Thu, 26 Jun 2014 ..."); only trusted when the line also has a digit, so prose such as
# "On your remote host you can run:" is not taken for one.
_OPENER = re.compile(
    r"\s*(?:on|am|le|el|il|op|em|den|dne|dňa|dana|på|w dniu|в|στις|quoting|zitat von|citando"
    r"|(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*,?|\d{1,4}[./-]\d{1,2}[./-]\d{1,4}|\d{4}年)\b",
    flags=re.IGNORECASE,
)
_COLON_END = (":", "：")
# Whitespace plus the invisible direction marks right-to-left clients put after the colon.
_TRAILING_JUNK = " \t\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\ufeff"
_RULES = ("--", "__", "==", "**", "—")


def _lines(text: str) -> list[str]:
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def _is_blank(line: str) -> bool:
    return not line.strip()


class _Lines:
    """Lines of a body with what the scans ask about each computed once.

    Without the caches a hostile body of half a million ":" or "From: a" lines makes every
    line re-test its neighbours; with them each line is classified a bounded number of times.
    """

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines
        self.blank: list[bool] = []
        self.quoted: list[bool] = []
        for line in lines:
            stripped = line.lstrip()
            self.blank.append(not stripped or stripped.isspace())
            self.quoted.append(stripped.startswith(">"))
        self._signals: dict[int, int] = {}
        self._fields: dict[int, str | None] = {}

    def __len__(self) -> int:
        return len(self.lines)

    def colon_end(self, index: int) -> bool:
        line = self.lines[index]
        return len(line) <= _MAX_ATTRIBUTION_LEN and line.rstrip(_TRAILING_JUNK).endswith(_COLON_END)

    def signals(self, index: int) -> int:
        """Which of a "wrote" verb (1), an address (2) and a date (4) the line has."""
        if index not in self._signals:
            line = self.lines[index]
            found = 0
            if len(line) <= _MAX_ATTRIBUTION_LEN:
                found = _has_verb(line) | bool(_EMAIL.search(line)) << 1 | bool(_DATE.search(line)) << 2
            self._signals[index] = found
        return self._signals[index]

    def field(self, index: int) -> str | None:
        if index not in self._fields:
            line = self.lines[index]
            self._fields[index] = header_field(line) if ":" in line[:60] or "：" in line[:60] else None
        return self._fields[index]

    def next_content(self, index: int) -> int | None:
        while index < len(self.lines):
            if not self.blank[index]:
                return index
            index += 1
        return None


def classify_marker(line: str) -> MarkerKind | None:
    """Say whether one line is a separator that starts quoted history or a forwarded message.

    Callers that handle forwards separately (a forward is a new request, not a reply) use this
    to tell "---------- Forwarded message ---------" from "-----Original Message-----".
    """
    stripped = line.strip()
    if not stripped or len(stripped) > _MAX_MARKER_LEN:
        return None
    if not (
        any(rule in stripped for rule in _RULES) or (stripped.endswith(_COLON_END) and len(stripped) > 12)
    ):
        return None  # a separator has a rule or is a sentence ending in a colon: skip the regexes
    if not _LETTER.search(stripped):
        return None  # a bare rule ("-----", a list footer's "____") names no separator
    if _FORWARD_SEPARATOR.fullmatch(stripped) or _FORWARD_INTRO.fullmatch(stripped):
        return MarkerKind.FORWARD
    if _REPLY_SEPARATOR.fullmatch(stripped):
        return MarkerKind.REPLY
    if stripped.startswith("--") and stripped.endswith("--") and _has_verb(stripped):
        return MarkerKind.REPLY  # Zoho: "---- On Tue, 03 Nov 2026 ... John <j@x> wrote ----"
    return None


def is_attribution(text: str, *, strict: bool = False) -> bool:
    """Whether a (possibly wrapped) line reads like "On <date>, <name> wrote:" in any language.

    The loose test (a colon at the end plus a "wrote" verb, an address or a date) is for lines
    directly above quoted text; ``strict`` asks for two of those signals and is for lines with
    no `>` quote below them, where a false hit would throw away the writer's text.
    """
    flat = " ".join(text.split()).rstrip(_TRAILING_JUNK)
    if not flat or len(flat) > _MAX_ATTRIBUTION_LEN or not flat.endswith(_COLON_END):
        return False
    verb = _has_verb(flat)
    email = _EMAIL.search(flat) is not None
    date = _DATE.search(flat) is not None
    if strict:
        return (verb and (email or date)) or (email and date)
    return verb or email or date


def _is_opener(line: str) -> bool:
    return bool(_OPENER.match(line)) and any(ch.isdigit() for ch in line)


def _attribution_start(text: _Lines, end: int, *, strict: bool) -> int | None:
    """Index of the first line of an attribution that ends on line ``end``, if there is one.

    Clients wrap long attributions, so look up to four lines back, but stop at a blank or
    quoted line. An opener line ("On <date>...") fixes the start; without one, take the
    shortest span that is a whole attribution rather than a lone "wrote:".
    """
    if not text.colon_end(end):
        return None
    first = end
    while (
        first > 0
        and end - first + 1 < _MAX_ATTRIBUTION_LINES
        and not text.blank[first - 1]
        and not text.quoted[first - 1]
        and len(text.lines[first - 1]) <= _MAX_ATTRIBUTION_LEN
    ):
        first -= 1
    found = 0
    for index in range(first, end + 1):
        found |= text.signals(index)
    # Cheap rejection before joining lines: the loose test needs one signal, the strict two.
    if found == 0 or (strict and found in (1, 2, 4)):
        return None
    lines = text.lines
    for start in range(end, first - 1, -1):
        if _is_opener(lines[start]):
            joined = "\n".join(lines[start : end + 1])
            return start if is_attribution(joined, strict=strict) else None
    for start in range(end, first - 1, -1):
        joined = "\n".join(lines[start : end + 1])
        if is_attribution(joined, strict=strict) and _has_name_part(joined):
            return start
    return None


def _has_name_part(text: str) -> bool:
    # "wrote:" alone is the tail of a wrapped attribution, not a whole one.
    words = re.findall(r"\w+", text[:_MAX_ATTRIBUTION_LEN])
    return len(words) >= 2


def header_field(line: str) -> str | None:
    """Which header a line of a quoted header block labels: "from", "date", "to", "subject", "cc".

    Knows Outlook's localized labels ("Von:", "De :", "Enviado:", "*From:*" ...); None for a
    line that is not labelled. The HTML side uses it to recognise header blocks by structure.
    """
    match = _HEADER_LABEL.match(line[:60])
    if not match:
        return None
    return _FIELD_OF.get(match.group(1).casefold())


def _header_block_end(text: _Lines, start: int) -> int | None:
    """End (exclusive) of an e-mail header block ("From: / Sent: / To: / Subject:") at start.

    A block needs From plus a date, or From plus two other headers, and an address or a digit
    somewhere, so a customer's own "To: support" or "From: my laptop / To: the printer" is not
    mistaken for quoted history. Wrapped recipient lists are
    allowed as continuation lines.
    """
    fields: set[str] = set()
    continuations = 0
    concrete = False  # real headers carry an address or a date somewhere
    index = start
    while index < len(text) and index - start < _MAX_HEADER_BLOCK:
        if text.blank[index] or text.quoted[index]:
            break
        line = text.lines[index][:_MAX_ATTRIBUTION_LEN]
        concrete = concrete or "@" in line or any(char.isdigit() for char in line)
        field = text.field(index)
        if field is None:
            if index == start or continuations >= 2:
                break
            continuations += 1
        else:
            fields.add(field)
        index += 1
    if concrete and "from" in fields and ("date" in fields or len(fields) >= 3):
        return index
    return None


def _rule_above(text: _Lines, index: int) -> int:
    """Move a cut up to the "_____" or "-----" rule that Outlook draws above its header block."""
    above = index - 1
    blanks = 0
    while above >= 0 and text.blank[above] and blanks < 2:
        above -= 1
        blanks += 1
    if above >= 0 and len(text.lines[above]) <= _MAX_MARKER_LEN and _RULE_LINE.fullmatch(text.lines[above]):
        return above
    return index


def _history_start(text: _Lines, *, keep_forwards: bool) -> int:
    """Index of the first line of unquoted history; ``len(text)`` if there is none."""
    index = 0
    while index < len(text):
        if text.blank[index] or text.quoted[index]:
            index += 1
            continue
        line = text.lines[index]
        if ":" not in line and "：" not in line and not any(rule in line for rule in _RULES):
            index += 1  # markers, header labels and attributions all have one of these
            continue
        kind = classify_marker(line)
        if kind is MarkerKind.FORWARD and keep_forwards:
            following = text.next_content(index + 1)
            block_end = _header_block_end(text, following) if following is not None else None
            index = block_end if block_end is not None else index + 1
            continue
        if kind is not None:
            return index
        if text.field(index) is not None and _header_block_end(text, index) is not None:
            return _rule_above(text, index)
        if text.colon_end(index):
            following = text.next_content(index + 1)
            if following is None or not text.quoted[following]:
                start = _attribution_start(text, index, strict=True)
                if start is not None:
                    return start
        index += 1
    return len(text)


def _drop_quoted_blocks(text: _Lines, end: int) -> list[str]:
    """Remove `>` blocks and the attribution above each; keep text written between them.

    A removed block leaves one blank line, so answers written between quotes stay separate
    paragraphs. Only lines before ``end`` (where unquoted history starts) are looked at.
    """
    kept: list[str] = []
    kept_index: list[int] = []  # where each kept line came from, to undo an attribution
    index = 0
    while index < end:
        if not text.quoted[index]:
            kept.append(text.lines[index])
            kept_index.append(index)
            index += 1
            continue
        # The attribution, if any, ends on the last non-blank line kept before the block;
        # lines removed earlier were quotes, which stop the look-back anyway.
        last = len(kept) - 1
        while last >= 0 and _is_blank(kept[last]):
            last -= 1
        if last >= 0 and kept_index[last] >= 0:
            start = _attribution_start(text, kept_index[last], strict=False)
            if start is not None:
                cut = last - (kept_index[last] - start)
                del kept[cut:], kept_index[cut:]
        kept.append("")
        kept_index.append(-1)
        last_quoted = index
        while index < end and (text.quoted[index] or text.blank[index]):
            if text.quoted[index]:
                last_quoted = index
            index += 1
        index = last_quoted + 1
    return kept


def _drop_trailing_attributions(lines: list[str]) -> list[str]:
    # An attribution left at the very end introduced history that was already cut (or that an
    # HTML converter dropped): "On <date>, John wrote:" with nothing below it.
    end = len(lines)
    for _ in range(_MAX_TRAILING_ATTRIBUTIONS):
        while end > 0 and _is_blank(lines[end - 1]):
            end -= 1
        offset = max(end - _MAX_ATTRIBUTION_LINES, 0)
        if end == 0:
            return []
        text = _Lines(lines[offset:end])
        start = _attribution_start(text, len(text) - 1, strict=False)
        if start is None:
            return lines[:end]
        joined = "\n".join(text.lines[start:])
        if not (_has_verb(joined) or _EMAIL.search(joined)):
            return lines[:end]
        end = offset + start
    return lines[:end]


def _join(lines: Sequence[str]) -> str:
    out: list[str] = []
    for line in lines:
        if _is_blank(line):
            if out and out[-1] != "":
                out.append("")
        else:
            out.append(line)
    while out and out[-1] == "":
        out.pop()
    return "\n".join(out)


def strip_quotes(text: str, *, keep_forwards: bool = False) -> str:
    """Remove quoted history from a plain-text body and return what the writer added.

    `>` blocks are dropped together with their attribution line; text between them (inline
    answers) and after them (bottom posting) is kept. From the first unquoted history marker
    on (Outlook header block, "-----Original Message-----", "On ... wrote:" over unquoted old
    text, a forward marker) everything is dropped, since where unquoted history ends cannot
    be told. With ``keep_forwards`` a forwarded message is kept in full. Line endings come back
    as "\\n", blank-line runs collapsed to one; the result may be empty.
    """
    lines = _Lines(_lines(text))
    kept = _drop_quoted_blocks(lines, _history_start(lines, keep_forwards=keep_forwards))
    return _join(_drop_trailing_attributions(kept)).strip("\n")


# -- signatures --------------------------------------------------------------------------------

_SIGNATURE_WINDOW = 60  # lines from the end in which a signature may start
_MAX_PEELS = 10

_DASHES = re.compile(r"\s*(?:--|---|—|–)\s*")
_DASH_NAME = re.compile(r"\s*--\s?[^\W\d_][\w.' ]{0,40}")
_NAME_SIGN_OFF = re.compile(r"(?:-(?=[^\W\d_])|[—–]\s?)[^\W\d_][\w.']*(?: [\w.']+){0,3}")
_FOOTER_RULE = re.compile(r"\s*(?:_{4,}|={4,})\s*")
_LIST_ITEM = re.compile(r"\s*(?:[-*•+]|\d{1,3}[.)])")
_LINK_TAIL = r"(?:\s*(?:<[^<>\s]{1,300}>|\([^()\s]{1,300}\)|\[[^\[\]\s]{1,300}\]))?[.!]?"
_DEVICE = r"[\w'&+.-]{1,30}"
_MOBILE = re.compile(
    r"(?:"
    r"sent from my " + _DEVICE + r"(?: " + _DEVICE + r"){0,4}"
    r"|sent from my (?:samsung|galaxy|huawei|htc|sony|xperia|lg|motorola|moto|nokia|xiaomi"
    r"|oneplus|pixel|google|verizon|at&t|t-mobile|sprint|blackberry|windows phone|iphone|ipad"
    r"|android|kindle)\b[^\n]{0,80}"
    r"|sent from (?:mail for windows(?: 1[01])?|outlook|yahoo mail|gmail|aol|samsung mobile"
    r"|windows mail|proton ?mail|fastmail|mailbird|spark|airmail|bluemail|blue mail"
    r"|edison mail|zoho mail|icloud|my mobile)(?: " + _DEVICE + r"){0,5}"
    r"|sent (?:with|using|via|from) (?:sparrow|airmail|spark|blackberry|mailbox|newton|polymail|proton ?mail"
    r"|the mail\.com|bluemail|aquamail|k-9 mail|the samsung|mobile)\b[^\n]{0,60}"
    r"|get outlook for (?:ios|android|mac|windows)"
    r"|(?:envoyé|envoye) (?:de|depuis) (?:mon|ma) " + _DEVICE + r"(?: " + _DEVICE + r"){0,3}"
    r"|von meinem(?:/meiner)? " + _DEVICE + r"(?: " + _DEVICE + r"){0,3} gesendet"
    r"|gesendet (?:von|mit) (?:meinem |der )?" + _DEVICE + r"(?: " + _DEVICE + r"){0,4}"
    r"|enviado (?:desde|de|do) (?:mi|meu|o meu) " + _DEVICE + r"(?: " + _DEVICE + r"){0,3}"
    r"|inviato da (?:il mio |dal mio )?" + _DEVICE + r"(?: " + _DEVICE + r"){0,3}"
    r"|inviato dal mio " + _DEVICE + r"(?: " + _DEVICE + r"){0,3}"
    r"|verzonden (?:met|vanaf|van) (?:mijn )?" + _DEVICE + r"(?: " + _DEVICE + r"){0,3}"
    r"|wysłane z (?:mojego )?" + _DEVICE + r"(?: " + _DEVICE + r"){0,3}"
    r"|отправлено (?:с|из) (?:моего )?" + _DEVICE + r"(?: " + _DEVICE + r"){0,3}"
    r"|(?:skickat|sendt) (?:från|fra) min " + _DEVICE + r"(?: " + _DEVICE + r"){0,3}"
    r")" + _LINK_TAIL,
    flags=re.IGNORECASE,
)
_DISCLAIMER = re.compile(
    r"\s*\**\s*(?:confidentiality notice|confidentiality note|disclaimer|legal notice"
    r"|this (?:e-?mail|message|communication|transmission)\b[^\n]{0,80}"
    r"\b(?:confidential|privileged|intended (?:solely |only )?for)"
    r"|the information (?:contained )?in this (?:e-?mail|message|communication)"
    r"|if you (?:are not the intended recipient|have received this (?:e-?mail|message) in error)"
    r"|diese (?:e-?mail|nachricht) (?:enthält|ist) vertraulich"
    r"|ce (?:message|courriel|e-?mail) (?:et (?:toutes )?les pièces jointes )?(?:est|sont)"
    r" confidentiel)",
    flags=re.IGNORECASE,
)


def _signature_fits(lines: Sequence[str], index: int, after: int) -> bool:
    """Whether line ``index``, with ``after`` non-blank lines below it, starts a signature."""
    line = lines[index]
    if _DISCLAIMER.match(line[:_MAX_MARKER_LEN]) and after <= 15:
        return _starts_paragraph(lines, index)
    if len(line) > _MAX_MARKER_LEN:
        return False
    if line == "-- ":
        return after <= 20  # the RFC 3676 delimiter is deliberate; allow long signatures
    if _DASHES.fullmatch(line) or _DASH_NAME.fullmatch(line) or _FOOTER_RULE.fullmatch(line):
        return after <= 10
    if after == 0 and _MOBILE.fullmatch(line.strip()):
        return True
    if after == 0 and _NAME_SIGN_OFF.fullmatch(line.rstrip()) and len(line.strip()) <= 40:
        return _starts_paragraph(lines, index) and not _after_list_item(lines, index)
    return False


def _starts_paragraph(lines: Sequence[str], index: int) -> bool:
    return index == 0 or _is_blank(lines[index - 1])


def _after_list_item(lines: Sequence[str], index: int) -> bool:
    above = index - 1
    while above >= 0 and _is_blank(lines[above]):
        above -= 1
    return above >= 0 and bool(_LIST_ITEM.match(lines[above][:10]))


def strip_signature(text: str) -> str:
    """Remove a trailing signature: "-- " blocks, "Sent from my iPhone" lines, list footers.

    Only the end of the text is looked at, and each kind of signature must be short and last
    (a "Sent from my ..." line only when nothing follows it), so the same words in the middle
    of a message are kept. Signatures are peeled from the bottom one at a time, which handles
    "-- \\nJane\\nSent from my iPhone". The result may be empty.
    """
    lines = _lines(text)
    end = len(lines)
    for _ in range(_MAX_PEELS):
        while end > 0 and _is_blank(lines[end - 1]):
            end -= 1
        after = 0
        for index in range(end - 1, max(end - _SIGNATURE_WINDOW, 0) - 1, -1):
            if _signature_fits(lines, index, after):
                end = index
                break
            after += not _is_blank(lines[index])
        else:
            break
    return _join(lines[:end]).strip("\n")


def new_text(plain: str | None, html: str | HtmlDocument | None) -> str:
    """The text a customer newly wrote in a message, for the ticket and the classifier.

    HTML is preferred (clients mark quotes structurally there); plain text is used when there
    is no HTML or it renders to nothing. Quotes, then the signature, are stripped. When that
    leaves nothing, because the message is only a quote or a forward without comment, the
    first non-empty of these is returned instead: the text without quotes (signature kept),
    then the whole text; "" only if the message has no text at all.
    """
    # html.py uses this module's attribution test, so import it here to avoid a cycle.
    from maildesk.parse.html import HtmlDocument

    document = HtmlDocument(html) if isinstance(html, str) and html else html or None
    reply = document.reply() if document is not None else ""
    whole = reply
    without_quotes = strip_quotes(reply)
    if not without_quotes.strip():
        # Only a quote, or nothing visible: the whole rendering is paid only in this rare case.
        whole = document.whole if document is not None else ""
        if not whole.strip():
            whole = reply = plain or ""
            without_quotes = strip_quotes(reply)
    for candidate in (strip_signature(without_quotes), without_quotes, whole):
        if candidate.strip():
            return candidate.strip()
    return ""
