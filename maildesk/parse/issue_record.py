"""The issue record seed 003 asks for, read from a customer's mail: when, phone, where, what, errors.

Seed 003 lists what registering an issue needs: the date and time of the occurrence, the
caller's phone, the building and room, the module, page or resource affected, the error
messages, and whether this is the first time. `extract` takes what the mail already says, so
that the request for information asks only for the rest (`IssueRecord.missing`).

Precision comes before recall: a value found by mistake means the desk never asks for
something it needs. So every pattern wants a clear cue (a label, "since", "ago", quotes after
an error word, a number shaped like a phone), and ambiguous ones ("on Monday", a bare date)
must sit in a sentence that reads as the past. Quoted history is removed first
(`strip_quotes`), so dates in "On ... wrote:" lines and the desk's own acknowledgement are never
read. The signature (from the sign-off on) is searched for the phone and the location only;
a forwarded message ("see below") only for error messages, since its dates and phones are
someone else's. Where a mail names several things, the subject's first mention is the resource.

Speed: Python's regex engine needs tens of microseconds per kilobyte for every pattern run over
a whole text, so no field is found that way. Each part of the mail is lower-cased once
(position for position) and split into its set of words; the trigger words of a field that the
set holds are located with `str.find`, and the field's patterns run anchored there. A typical
2 KB mail takes a few hundred microseconds (`bench/issue_record.py`); the input is capped, so
hostile text costs milliseconds at most.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Final

from maildesk.parse.quotes import strip_quotes

__all__ = ["FIELDS", "IssueRecord", "extract"]

log = logging.getLogger(__name__)

# What each field is called when it is asked for, in the order seed 003 lists them.
FIELDS: Final = (
    ("occurred", "the date and time the problem occurred"),
    ("phone", "a phone number we can reach you on"),
    ("location", "the building and room, if the problem is on site"),
    ("resource", "the module, page or resource affected"),
    ("errors", "any error message, word for word (a screenshot helps)"),
    ("first_time", "whether this is the first time it has happened"),
)


@dataclass(frozen=True)
class IssueRecord:
    """What a mail says about an issue; "" / () / None where it says nothing (or nothing clear)."""

    occurred: str = ""  # as written, whitespace collapsed: "yesterday at 14:30", "seit Montag"
    phone: str = ""  # as written: "+41 44 123 45 67", "(555) 123-4567", "ext. 3131"
    location: str = ""  # building, floor, room, site joined by ", ": "Building B, room 2.14"
    resource: str = ""  # "the billing module", "VPN", "printer HP-4200 on floor 2"
    errors: tuple[str, ...] = ()  # word for word: "Access denied", "0x80070005", "ORA-12154"
    first_time: bool | None = None  # True: first time; False: again, recurring; None: not said

    def missing(self) -> list[str]:
        """Human phrases for what is still missing, in seed 003's order, for the request mail."""
        present = {
            "occurred": bool(self.occurred),
            "phone": bool(self.phone),
            "location": bool(self.location),
            "resource": bool(self.resource),
            "errors": bool(self.errors),
            "first_time": self.first_time is not None,
        }
        return [phrase for name, phrase in FIELDS if not present[name]]

    def as_dict(self) -> dict[str, object]:
        """The fields as plain JSON-ready values (errors as a list)."""
        return {
            "occurred": self.occurred,
            "phone": self.phone,
            "location": self.location,
            "resource": self.resource,
            "errors": list(self.errors),
            "first_time": self.first_time,
        }


# What the customer newly wrote is at the top, so long mails are cut; this bounds the cost.
_MAX_INPUT = 100_000
_MAX_BODY = 20_000
_MAX_SUBJECT = 500
_MAX_ERRORS = 5
_MAX_ERROR_LEN = 300
_MAX_VALUE = 80
_NOTHING = frozenset({"", "n/a", "na", "-", "--", "none", "?", "unknown", "keine", "aucun"})

# One character for one, so positions found in the normalised text slice the original.
_NORMALISE = str.maketrans(
    {"\u00a0": " ", "\u202f": " ", "\u2007": " ", "\u2009": " ", "\t": " ", "\u2019": "'", "\u2018": "'"}
)
_SPACES = re.compile(r"\s+")
_SUBJECT_PREFIX = re.compile(
    r"^(?:\s*(?:re|aw|wg|fw|fwd|tr|sv|antw|rép|ref)\s*(?:\[\d+\])?\s*:|\s*\[[^\]\n]{0,40}\])+",
    flags=re.IGNORECASE,
)


def _flat(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


_PLAIN = frozenset("abcdefghijklmnopqrstuvwxyzäöüßàâçéèêëîïôûù' -")


def _alternation(branches: Iterable[str], depth: int = 2) -> str:
    """The branches as one alternation, grouped by leading letters: "s(?:ince ...|eit ...)|y...".

    The regex engine tries every branch of a flat alternation at every position; grouped, it
    compares a letter or two and descends into one group, which makes a scan of the whole
    text five to ten times faster. Every branch must begin with a letter for the engine to
    skip quickly to where a match can start. Order is kept, so earlier branches still win.
    """
    groups: dict[str, list[str]] = {}
    for number, branch in enumerate(branches):
        plain = depth > 0 and branch[:1] in _PLAIN and branch[1:2] not in ("?", "*", "+", "{")
        groups.setdefault(branch[0] if plain else f"#{number}", []).append(branch)
    parts: list[str] = []
    for key, members in groups.items():
        if key.startswith("#"):
            parts.extend(members)
        elif len(members) == 1:
            parts.append(members[0])
        else:
            parts.append(key + "(?:" + _alternation([member[1:] for member in members], depth - 1) + ")")
    return "|".join(parts)


def _wordset(words: str) -> frozenset[str]:
    """A set of words written as one string, so that long lists stay short on the page."""
    return frozenset(words.split())


def _words(*words: str) -> str:
    """An alternation of literal words, longest first, so that "modules" is tried before "module"."""
    return _alternation([re.escape(word) for word in sorted(words, key=len, reverse=True)])


# Punctuation becomes a space before the text is split into words ("can't" -> "can t").
_SPLIT = str.maketrans(
    dict.fromkeys("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~“”„«»‹›‘’–—…•·°§€£\n\r\t\x0b\x0c\x85\u2028\u2029", " ")
)


_DIGIT_RUN = re.compile(r"[0-9]+")


class _Part:
    """A stretch of the mail (subject, body, signature) with a lower-cased copy of equal length.

    Fields are found from trigger words: the set of distinct words is computed once, and only
    the triggers it holds are looked up with `str.find`; patterns then run anchored there.
    Python's regex engine needs tens of microseconds per kilobyte for each pattern scanned over
    the whole text, so this is what keeps a mail well under a millisecond.
    """

    __slots__ = ("_digits", "_positions", "_spaced", "_words", "low", "signature", "text")

    def __init__(self, text: str, *, signature: bool = False) -> None:
        self.signature = signature
        self.text = text.translate(_NORMALISE)
        low = self.text.lower()
        if len(low) != len(self.text):  # "İ" lowers to two characters; keep such letters as they are
            low = "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in self.text)
        self.low = low
        self._spaced = ""
        self._words: frozenset[str] | None = None
        self._digits: list[int] | None = None
        self._positions: dict[str, list[int]] = {}

    @property
    def words(self) -> frozenset[str]:
        if self._words is None:
            # punctuation turned into spaces, one character for one, with a space at either end
            self._spaced = " " + self.low.translate(_SPLIT) + " "
            self._words = frozenset(self._spaced.split())
        return self._words

    def positions(self, word: str) -> list[int]:
        """Where `word` stands as a whole word (between spaces once punctuation is blanked out)."""
        if word in self._positions:
            return self._positions[word]
        found: list[int] = []
        if word in self.words:
            spaced, needle = self._spaced, " " + word + " "
            start = spaced.find(needle)
            while start >= 0:
                found.append(start)  # the leading space in `spaced` makes this the word's index in `low`
                start = spaced.find(needle, start + len(word) + 1)
        self._positions[word] = found
        return found

    def hits(self, triggers: frozenset[str]) -> list[tuple[int, str]]:
        """(position, word) of every trigger word in the text, in text order."""
        present = self.words & triggers
        return sorted((position, word) for word in present for position in self.positions(word))

    @property
    def digit_starts(self) -> list[int]:
        """Where each run of digits starts."""
        if self._digits is None:
            self._digits = [match.start() for match in _DIGIT_RUN.finditer(self.low)]
        return self._digits

    def starts_word(self, position: int) -> bool:
        return position == 0 or not self.low[position - 1].isalnum()

    def ends_word(self, position: int) -> bool:
        return position >= len(self.low) or not (self.low[position].isalnum() or self.low[position] == "'")

    def line(self, start: int, end: int) -> str:
        first = self.low.rfind("\n", 0, start) + 1
        last = self.low.find("\n", end)
        return self.low[first : last if last >= 0 else len(self.low)]


def _first_words(phrases: Iterable[str], *, plurals: bool = False) -> frozenset[str]:
    """The word each phrase starts with, as `_Part.words` splits it ("bldg." -> "bldg")."""
    firsts = {phrase.translate(_SPLIT).split()[0] for phrase in phrases}
    return frozenset(firsts | {word + "s" for word in firsts} if plurals else firsts)


# -- body and signature ------------------------------------------------------------------------

_SIGN_OFF = re.compile(
    r"[*_]*(?:(?:best|kind|warm|kindest|many thanks(?: and)?|with best|with kind|all the best)\s+"
    r"(?:regards|wishes)|regards|best|br|rgds|cheers|sincerely|yours(?: sincerely| truly)?"
    r"|(?:many )?thanks?(?: (?:a lot|so much|in advance|again|and regards|& regards|for your (?:help|support"
    r"|time)|for looking into (?:this|it)))?"
    r"|thank you(?: very much| in advance| for your (?:help|support|time))?"
    r"|thx|ty|mit freundlichen gr(?:ü|ue|u)(?:ß|ss)en|freundliche gr(?:ü|ue|u)(?:ß|ss)e"
    r"|(?:viele|liebe|beste|herzliche)? ?gr(?:ü|ue|u)(?:ß|ss)e?|mfg|lg|vg"
    r"|(?:vielen )?dank(?:e)?(?: schön| im voraus| sehr| für (?:ihre|deine|eure) hilfe)?"
    r"|(?:bien )?cordialement|bien à vous|(?:meilleures |sincères )?salutations(?: distinguées)?"
    r"|merci(?: d'avance| beaucoup| par avance| pour votre aide| et bonne journée)?|bonne journée"
    r"|sent from my [^\n]{1,40}|sent from [^\n]{1,30} for (?:ios|android)|get outlook for \w+"
    r"|envoyé de mon [^\n]{1,30}|von meinem [^\n]{1,30} gesendet|--|__+)"
    r"[*_]*[ ,.!]*(?P<name>.*)"
)
# What may follow a sign-off on its line: a name ("Thanks, Anna", "Regards, Jean-Luc M.")
_NAME = re.compile(r"(?:[A-ZÀ-Þ][\w'.-]*(?: [A-ZÀ-Þ][\w'.-]*){0,3})?[,.!]?\s*")
_SIGNATURE_LINES = 15  # a signature has at most this many non-blank lines
_LONG_LINE_WORDS = 10


def _is_sign_off(line: str) -> bool:
    """ "Best regards", "Thanks, Anna", "Mit freundlichen Grüssen", "Sent from my iPhone"."""
    if len(line) > 90:
        return False
    match = _SIGN_OFF.fullmatch(line.lower())
    return match is not None and _NAME.fullmatch(line, match.start("name")) is not None


def _split_signature(text: str) -> tuple[str, str]:
    """Body and signature: the signature starts at the first sign-off with only a short tail."""
    lines = text.split("\n")
    content = [index for index, line in enumerate(lines) if line.strip()]
    if len(content) < 2:
        return text, ""
    window = content[-_SIGNATURE_LINES - 1 :]
    for position, index in enumerate(window):
        if index == content[0] or not _is_sign_off(lines[index].strip()):
            continue  # the first line is the greeting or the request itself
        tail = [lines[i] for i in window[position + 1 :]]
        if sum(len(t.split()) >= _LONG_LINE_WORDS for t in tail) <= 2:
            return "\n".join(lines[:index]), "\n".join(lines[index:])
    return text, ""


# -- phone -------------------------------------------------------------------------------------

_SEP = r"[ ./-]"
_PHONE = re.compile(
    # international: +41 44 123 45 67, +41 (0)44 123 45 67, +1 (555) 123-4567, 0041 44 ...
    r"(?:\+|00(?=[1-9]))\d{1,3}(?: ?\(0?\d{0,4}\))?(?:" + _SEP + r"?\d{1,5}){1,6}"
    # North American: (555) 123-4567, 555-123-4567, 555.123.4567
    r"|\(\d{3}\) ?\d{3}[ .-]\d{4}|\d{3}([.-])\d{3}\1\d{4}"
    # national, with a trunk 0: 044 123 45 67, 030/1234567, 01 23 45 67 89, 020 7946 0958
    r"|0\d{1,4}(?:" + _SEP + r"?\d{2,8}){1,4}"
)
_PHONE_END = re.compile(r"[\w-]|[.:/]\d")
_EXTENSION = re.compile(r" ?,? ?(?:ext\.?|extension|x|dw|durchwahl|poste) ?:? ?\d{1,6}(?!\w)")
_PHONE_LABEL_WORDS = (
    "phone number", "phone no.", "phone no", "phone", "telephone", "telefonnummer", "telefon", "téléphone",
    "tel.", "tel", "tél.", "tél", "mobile phone", "mobile", "mob.", "mob", "cell phone", "cellphone", "cell",
    "handy", "natel", "portable", "direct line", "direct", "durchwahl", "intern", "ext.", "ext", "extension",
    "poste", "call me on", "call me at", "call me under", "reach me on", "reach me at", "reach me under",
    "my number is", "my phone number is", "my extension is", "erreichbar unter", "joignable au", "au numéro",
    "au numero",
)  # fmt: skip
_PHONE_LABEL = re.compile(
    "(?:" + _words(*_PHONE_LABEL_WORDS) + r")(?![a-zäöüéè])(?: is)? ?[.:|]? ?(?=[+(\d])"
)
# signature lines such as "T +41 44 ...", "M: 079 ...", "P | (555) ..."
_LETTER_LABEL = re.compile(r"[tmp](?:[*_]{0,2}) ?[.:|]? ?(?=[+(\d])")
_LETTER_LABELS = frozenset({"t", "m", "p"})
_EXTENSION_LABELS = ("ext", "extension", "durchwahl", "poste", "intern")
_LABELLED_NUMBER = re.compile(r"\+?\(?\d[\d ()./-]{0,22}\d|\d")
_FAX = re.compile(r"(?<![^\W_])(?:fax|telefax|f) ?[.:|]? ?$")
_NOT_PHONE_BEFORE = re.compile(
    r"\b(?:ticket|case|order|invoice|incident|ref|reference|serial|s/n|sn|asset|inventory|po|iban|id|account"
    r"|employee|personnel|personalnummer|version|build|kb|error|code|port|ip|room|raum|salle)\b[^\n\d]{0,12}$"
)
# The desk's own number or a vendor's hotline is not the caller's.
_SUPPORT_LINE = re.compile(r"support|help ?desk|service ?desk|hotline|helpline|customer service|kundendienst")
_DATE_SHAPE = re.compile(r"\d{1,2}\.\d{1,2}\.\d{2,4}|\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}/\d{2,4}")


_CLAUSE_END = re.compile(r"[.!?][\"”')]*\s|\n")


def _clause_before(low: str, position: int) -> str:
    """The text from the start of the clause `position` is in, at most 50 characters back."""
    start = max(0, position - 50)
    for end in _CLAUSE_END.finditer(low, start, position):
        start = end.end()
    return low[start:position]


def _phone_ok(part: _Part, start: int, end: int, *, labelled: bool) -> bool:
    candidate = part.low[start:end]
    digits = sum(ch.isdigit() for ch in candidate)
    before = part.low[max(0, start - 30) : start]
    if _FAX.search(before) or _NOT_PHONE_BEFORE.search(before) or _DATE_SHAPE.search(candidate):
        return False
    line = part.line(start, end)
    if _SUPPORT_LINE.search(_clause_before(part.low, start)):
        return False
    if part.signature and sum(any(ch.isalpha() for ch in word) for word in line.split()) >= _LONG_LINE_WORDS:
        return False  # a disclaimer's "call +1 800 ..." below the name is not the caller's
    if labelled:
        return 3 <= digits <= 15
    if not 8 <= digits <= 15:
        return False
    if candidate.startswith("0") and not candidate.startswith("00"):
        # a national number keeps one separator style ("044 123 45 67", "01.23.45.67.89");
        # mixed ones are dates, times or versions run together
        separators = {ch for ch in candidate[1:] if not ch.isdigit()} - {"/"}
        if len(separators) > 1 or digits > 12:
            return False
    return True


def _with_extension(part: _Part, end: int) -> int:
    match = _EXTENSION.match(part.low, end)
    return match.end() if match else end


_PHONE_LABEL_TRIGGERS = _first_words(_PHONE_LABEL_WORDS) | _LETTER_LABELS


def _at_line_start(part: _Part, position: int) -> bool:
    """Whether only spaces and markdown emphasis stand between the line's start and `position`."""
    line_start = part.low.rfind("\n", 0, position) + 1
    return not part.low[line_start:position].strip(" *_>-|")


def _labelled(part: _Part, triggers: frozenset[str], pattern: re.Pattern[str]) -> Iterator[re.Match[str]]:
    """Lines such as "Location: Building B" or "Date | 2026-11-02": `pattern` matched at a label word."""
    for position, _ in part.hits(triggers):
        if _at_line_start(part, position):
            match = pattern.match(part.low, position)
            if match:
                yield match


def _labelled_phone(part: _Part) -> str:
    labels: list[tuple[int, int, str, bool]] = []
    for position, word in part.hits(_PHONE_LABEL_TRIGGERS):
        letter = word in _LETTER_LABELS
        if letter and not _at_line_start(part, position):
            continue
        found = (_LETTER_LABEL if letter else _PHONE_LABEL).match(part.low, position)
        if found:
            labels.append((position, found.end(), found.group(), letter))
    for start, end, label, letter in labels:
        match = _LABELLED_NUMBER.match(part.low, end)
        if not match:
            continue
        number = match.group().rstrip(" ./-(")
        number_end = match.start() + len(number)
        if letter and sum(ch.isdigit() for ch in number) < 8:
            continue  # "T 3131" is too thin to trust; "ext 3131" is fine
        if _FAX.search(part.low, max(0, start - 8), start):
            continue
        if _phone_ok(part, end, number_end, labelled=True):
            keep_label = label.startswith(_EXTENSION_LABELS) and len(number) <= 6
            first = start if keep_label else end
            return _flat(part.text[first : _with_extension(part, number_end)])
    return ""


def _plain_phone(part: _Part) -> str:
    low = part.low
    for digit in part.digit_starts:
        start = digit - 1 if digit > 0 and low[digit - 1] in "+(" else digit
        if start > 0 and (low[start - 1].isalnum() or low[start - 1] in "+-./:"):
            continue
        match = _PHONE.match(low, start)
        if not match or _PHONE_END.match(low, match.end()):
            continue
        if _phone_ok(part, start, match.end(), labelled=False):
            return _flat(part.text[start : _with_extension(part, match.end())])
    return ""


def _phone(parts: Iterable[_Part]) -> str:
    for part in parts:
        found = _labelled_phone(part) or _plain_phone(part)
        if found:
            return found
    return ""


# -- occurrence --------------------------------------------------------------------------------

_WD_EN = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WD_DE = ("montag", "dienstag", "mittwoch", "donnerstag", "freitag", "samstag", "sonntag")
_WD_FR = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_MONTHS = tuple(
    sorted(
        _wordset(
            """january february march april may june july august september october november december jan
            feb mar apr jun jul aug sep sept oct nov dec januar jänner februar märz juni juli oktober dezember
            janvier février fevrier mars avril mai juin juillet août aout septembre octobre novembre décembre
            decembre"""
        )
    )
)
_MONTH = "(?:" + _words(*_MONTHS) + ")"
_CLOCK = (
    r"(?:(?:[01]?\d|2[0-3])(?:[:.][0-5]\d(?::[0-5]\d)?(?: ?(?:am|pm|a\.m\.|p\.m\.|uhr|h))?"
    r"|h(?:[0-5]\d)?| ?(?:am|pm|a\.m\.|p\.m\.)| ?uhr(?: ?[0-5]\d)?)"
    r"|noon|midday|midnight|mittag|mitternacht|midi|minuit)(?![\w:])"
)
# after a day word and a preposition a bare hour is a time: "this morning around 9"
_HOUR = r"(?:" + _CLOCK + r"|(?:[01]?\d|2[0-3])(?: ?o'clock)?(?![\w:/]|[.,]\d| ?%))"
_AFTER_DAY = (
    r"(?:,? (?:at |around |about |um |gegen |vers |à )?(?:ca\.? |approx\.? |about |around |etwa )?"
    + _HOUR
    + r")?"
)
_PARTS_OF_DAY = r"(?:morning|afternoon|evening|night)"
_UNITS = r"(?:minutes?|hours?|days?|weeks?)"
_STRONG_DAYS = [
    "the day before yesterday", r"yesterday(?: " + _PARTS_OF_DAY + ")?",
    r"this (?:morning|afternoon|evening)",
    r"last (?:night|evening|week(?:end)?|month|" + _words(*_WD_EN) + ")", "earlier today", "over the weekend",
    r"a few " + _UNITS + " ago", r"a couple of " + _UNITS + " ago", r"an? (?:minute|hour|day|week) ago",
    *(number + " " + _UNITS + " ago" for number in ("one", "two", "three", "four", "five", "six", "several")),
    r"past (?:" + _words(*_WD_EN) + ")",
    r"this past (?:" + _words(*_WD_EN) + ")", "vorgestern",
    r"gestern(?: (?:morgen|früh|vormittag|mittag|nachmittag|abend|nacht))?",
    r"heute (?:morgen|früh|vormittag|mittag|nachmittag)",
    r"letzte[nrs]? (?:woche|nacht|wochenende|monat|" + _words(*_WD_DE) + ")",
    "am wochenende", "übers wochenende",
    r"vor (?:einer|einem|zwei|drei|vier|fünf|ein paar|wenigen) (?:minuten?|stunden?|tag(?:en)?|wochen?)",
    "avant-hier", r"hier (?:matin|soir|après-midi|apres-midi)", "ce matin", r"cet apr[èe]s-midi", "ce soir",
    r"la semaine derni[èe]re", "le week-end dernier", "le weekend dernier",
    r"il y a (?:une|un|deux|trois|quelques) (?:minutes?|heures?|jours?|semaines?)",
    *(day + " " + _PARTS_OF_DAY for day in _WD_EN),
    *(day + "(?:morgen|vormittag|nachmittag|abend)" for day in _WD_DE),
    *(day + r" (?:dernier|matin|soir|apr[èe]s-midi)" for day in _WD_FR),
]  # fmt: skip
_STRONG_DAY = "(?:" + "|".join(_STRONG_DAYS) + ")"
_WEAK_DAYS = [
    "today", "heute", "aujourd'hui", *("on " + day for day in _WD_EN), *("am " + day for day in _WD_DE),
    *("le " + day for day in _WD_FR), *_WD_FR,
]  # fmt: skip
_SINCE_WORDS = ("ever since", "since", "seit", "depuis", "dès")
_SINCE_WHAT = (
    r"(?:" + _STRONG_DAY + r"|yesterday|today|this morning|the weekend|last \w+|(?:" + _words(*_WD_EN) + r")"
    r"|gestern|heute(?: morgen| früh)?|(?:"
    + _words(*_WD_DE)
    + r")|hier|ce matin|(?:"
    + _words(*_WD_FR)
    + r")"
    r"|(?:a|two|three|a few|several|einigen|ein paar|zwei|drei|quelques|deux|trois) (?:days?|hours?|weeks?"
    r"|tagen|stunden|wochen|jours|heures|semaines)|noon|midday|mittag|midi|the (?:[0-3]?\d(?:st|nd|rd"
    r"|th)? (?:of )?" + _MONTH + r"))"
)
# Day words, each branch beginning with a letter; numbers are found by _NUMBERED below.
_OCCURRED_WORDS = re.compile(
    r"(?:"
    + _alternation(
        [*(word + " " + _SINCE_WHAT + _AFTER_DAY for word in _SINCE_WORDS)]
        + [r"for the (?:past|last) (?:(?:a few|few|couple of|two|three|several|\d{1,2}) )?" + _UNITS]
        + [day + _AFTER_DAY for day in _STRONG_DAYS]
        + [day + _AFTER_DAY for day in _WEAK_DAYS]
        + [month + r"\.? [0-3]?\d(?:st|nd|rd|th)?(?:,? 20\d{2})?" for month in _MONTHS]
        + [r"hier(?: (?:à|vers) " + _HOUR + ")?"]
    )
    + r")(?![\w'])"
)
# Dates, times and "2 hours ago", tried where a number starts.
_NUMBERED = re.compile(
    r"(?P<date>(?:20\d{2}-[01]\d-[0-3]\d(?:[ t](?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d)?)?"
    r"|[0-3]?\d\.[01]?\d\.(?:(?:20)?\d{2}(?!\d))?|[0-3]?\d/[01]?\d/(?:20)?\d{2}(?!\d)"
    r"|[0-3]?\d(?:st|nd|rd|th|er|\.)? (?:of )?" + _MONTH + r"\.?(?:,? 20\d{2})?)"
    r"(?:,? (?:at |um |à |around |gegen |vers )?(?:ca\.? )?" + _CLOCK + r")?(?![\w/]))"
    r"|(?P<clock>" + _CLOCK + r")"
    r"|(?P<span>\d{1,2} (?:minutes?|hours?|days?|weeks?|minuten|stunden|tagen?|wochen|jours|heures|semaines)"
    r"(?: ago| now| already)?)(?![\w'])"
)
_LEFT_OF_NUMBER = re.compile(
    r"(?:(?:ever since|since|seit dem|seit|depuis le|depuis|dès le|dès|on the|on|am|le|dem|the|at|around"
    r"|about|approx\.?|approximately|roughly|shortly after|shortly before|just after|um|gegen|vers|à|ca\.?"
    r"|circa|etwa|kurz nach|kurz vor|environ|aux alentours de|for the past|for the last|for|vor|il y a) )+$"
)
_DAY_AFTER_TIME = re.compile(r" (?:" + _STRONG_DAY + "|" + "|".join(_WEAK_DAYS) + r")(?![\w'])")
_OCCURRED_LABEL = re.compile(
    r"(?:date(?: ?(?:&|and|/|et) ?(?:time|heure))?|time|when|occurred|occurrence|date of (?:the )?"
    r"(?:occurrence|incident|issue|problem)|datum(?: ?/ ?uhrzeit)?|zeitpunkt|uhrzeit|date et heure|quand)"
    r"[*_]* ?[:|] ?(?P<value>[^\n]{1,80})$",
    flags=re.MULTILINE,
)
_BEFORE_NOT_PAST = re.compile(
    r"(?:until|till|by|before|due|bis|bis zum|bis am|jusqu'à|jusqu'au|avant|from|ab|von|next|à partir de"
    r"|à partir du|starting|expires?|expiring|valid|ends?|ending|like|wie|comme|same as) $"
)
# "it worked fine last week", "lief gestern noch": when it last worked, not when it broke
_LAST_GOOD = re.compile(
    r"(?:worked(?: fine| well| ok| normally| perfectly)?|was (?:still )?(?:working|fine|ok|okay)"
    r"|were (?:still )?(?:working|fine)|lief(?: noch)?|ging(?: noch)?|funktionierte(?: noch)?"
    r"|fonctionnait(?: encore)?|marchait(?: encore)?) (?:fine |well |normally |noch |encore )?"
    r"(?:until |till |up to |bis )?$"
)
_PAST_CUE = re.compile(
    r"\b(?:was|were|happened|occurred|started|stopped|began|failed|crashed|froze|got|had|did|didn't"
    r"|couldn't|could not|wasn't|weren't|noticed|received|tried|saw|appeared|went|lost|broke|died"
    r"|since|worked|working|hat|hatte|war|wurde|ging|konnte|habe|ist \w+ (?:ge\w+|\w+t)|kam|gab|erschien"
    r"|stürzte|fiel|trat|meldete"
    r"|aufgetreten|ausgefallen|abgestürzt|a eu|j'ai|n'a|n'ai|s'est|était|planté)\b"
)
_FUTURE_CUE = re.compile(
    r"\b(?:will|shall|going to|tomorrow|next|until|till|deadline|due|expires?|scheduled|planned|meeting"
    r"|appointment|on leave|vacation|holiday|could you|can you|would you|werde|nächste[nrsm]?|bis"
    r"|fällig|demain|prochaine?|jusqu|sera|prévu|termin|rendez-vous)\b"
)
_STRONG_WORDS = re.compile(
    r"\b(?:yesterday|this (?:morning|afternoon|evening)|last|ago|earlier|weekend|past|gestern|vorgestern"
    r"|heute (?:morgen|früh|vormittag|mittag|nachmittag)|letzte|avant-hier|ce matin|cet|ce soir|derni|il y a"
    r"|since|seit|depuis|dès|hier (?:matin|soir|apr))"
    r"|(?:morning|afternoon|evening|night|morgen|vormittag|nachmittag|abend)$"
)
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n")
_FRENCH_WORDS = _wordset("""avec bonjour depuis est je la le les merci mon nous pas pour sur une""")
_GERMAN_WORDS = _wordset("""bitte danke das der die ein eine hallo ich ist mit nicht seit und""")
_OCCURRED_TRIGGERS = (
    _wordset(
        """ever since seit depuis dès for the yesterday this last earlier over a an one two three four five
        six several past vorgestern gestern heute letzte letzten letzter letztes am übers vor avant hier ce
        cet la le il today aujourd on"""
    )
    | frozenset((*_WD_EN, *_WD_DE, *_WD_FR, *_MONTHS))
    | {day + part for day in _WD_DE for part in ("morgen", "vormittag", "nachmittag", "abend")}
)
_OCCURRED_LABELS = _wordset("""date datum occurred occurrence quand time uhrzeit when zeitpunkt""")


def _sentence(low: str, start: int, end: int) -> str:
    head = max(0, start - 200)
    for match in _SENTENCE_END.finditer(low, head, start):
        head = match.end()
    tail = _SENTENCE_END.search(low, end, end + 200)
    return low[head : tail.start() if tail else min(len(low), end + 200)]


_SINCE_BEFORE = re.compile(r"\b(?:since|seit|depuis)\b[^.,;:!?\n]{0,30}$")
_YEARLESS = re.compile(r"\d{1,2}[./]\d{1,2}[./]?(?!\d)")


def _valid_date(value: str) -> bool:
    """Dotted and slashed dates must be calendar-shaped, so "1.2.3" and "3.14." are not dates."""
    for first, second in re.findall(r"(\d{1,2})[./](\d{1,2})[./]", value):
        day, month = int(first), int(second)
        if not (1 <= day <= 31 and 1 <= month <= 31 and min(day, month) <= 12):
            return False
    return True


_PREFIX_WORDS = _wordset(
    """a about after alentours am approx approx. approximately around at aux before ca. circa de dem depuis
    dès environ etwa ever for gegen il just kurz last le nach on past roughly seit shortly since the um
    vers vor y à"""
)


def _number_prefix(low: str, start: int) -> str:
    """The words before a number that make it a time: "since about ", "am ", "il y a ", or ""."""
    words = low[max(0, start - 40, low.rfind("\n", 0, start) + 1) : start].split(" ")
    if words[-1] != "":
        return ""  # the number is glued to something
    taken = 0
    for word in reversed(words[:-1]):
        if word not in _PREFIX_WORDS:
            break
        taken += 1
    while taken:
        prefix = " ".join(words[-taken - 1 :])
        if _LEFT_OF_NUMBER.fullmatch(prefix):
            return prefix
        taken -= 1
    return ""


def _word_occurrence(part: _Part, start: int) -> tuple[int, int, bool] | None:
    """(start, end, strong) of a day phrase at a trigger word: "since Monday", "gestern um 14 Uhr"."""
    match = _OCCURRED_WORDS.match(part.low, start)
    if not match:
        return None
    value = match.group()
    if value.startswith("hier") and not value.startswith("hier "):
        # "hier" is "yesterday" in French and "here" in German
        french = len(part.words & _FRENCH_WORDS) > len(part.words & _GERMAN_WORDS)
        return (start, match.end(), True) if french else None
    return start, match.end(), _STRONG_WORDS.search(value) is not None


def _numbered_occurrence(part: _Part, start: int) -> tuple[int, int, bool] | None:
    """(start, end, strong) of a date or time at a number, with the words that lead it: "am 2.11. um 9"."""
    low = part.low
    if start > 0 and low[start - 1] in ".:/-,":
        return None  # the middle of "2.14", "09:15", "E-42"
    match = _NUMBERED.match(low, start)
    if not match:
        return None
    end = match.end()
    prefix = _number_prefix(low, start)
    since = any(word in prefix for word in ("since", "seit", "depuis", "dès"))
    if match.group("span"):
        if not (
            match.group().endswith("ago")
            or since
            or prefix.endswith(("vor ", "il y a ", "past ", "last "))
            or (prefix.endswith("for ") and match.group().endswith((" now", " already")))  # "for 3 days now"
        ):
            return None
        return start - len(prefix), end, True
    if prefix.endswith("vor "):
        return None  # "vor 9 Uhr" is "before nine"
    if match.group("clock"):
        if not prefix or prefix.strip() in ("on", "the", "on the", "le", "dem"):
            return None  # a bare "9:15" may be anything; a time needs "at", "around", "um", ...
        day = _DAY_AFTER_TIME.match(low, end)
        if day:
            end = day.end()
        return (
            start - len(prefix),
            end,
            since or (day is not None and _STRONG_WORDS.search(day.group()) is not None),
        )
    if not _valid_date(match.group()):
        return None
    if not prefix and _YEARLESS.match(match.group()):
        return None  # "room 5.03." or "version 2.1." unless "am 2.11." or "since 3.11."
    return start - len(prefix), end, since


def _occurrence_candidates(part: _Part) -> Iterator[tuple[int, int, bool]]:
    """(start, end, strong) of each phrase that may say when it happened, in text order, lazily."""
    triggers = sorted(
        [(position, True) for position, _ in part.hits(_OCCURRED_TRIGGERS)]
        + [(position, False) for position in part.digit_starts]
    )
    taken_until = -1
    for position, word in triggers:
        if position < taken_until:
            continue  # the time in "yesterday at 14:30" belongs to the day phrase
        found = _word_occurrence(part, position) if word else _numbered_occurrence(part, position)
        if found:
            taken_until = found[1]
            yield found


def _occurred(parts: Iterable[_Part]) -> str:
    for part in parts:
        found = _occurred_in(part)
        if found:
            return found
    return ""


def _occurred_in(part: _Part) -> str:
    for label in _labelled(part, _OCCURRED_LABELS, _OCCURRED_LABEL):
        value = label.group("value").strip(" *_|")
        if value and (any(ch.isdigit() for ch in value) or _OCCURRED_WORDS.search(value)):
            start = label.start("value")
            return _flat(part.text[start : label.end("value")]).strip(" *_|,;")[:_MAX_VALUE]
    for start, end, strong in _occurrence_candidates(part):
        if _BEFORE_NOT_PAST.search(part.low, max(0, start - 20), start):
            continue
        if _LAST_GOOD.search(part.low, max(0, start - 30), start):
            continue
        if not strong and _SINCE_BEFORE.search(part.low, max(0, start - 40), start):
            strong = True  # "since the update on Tuesday", "seit dem Update am Dienstag"
        if not strong:
            sentence = _sentence(part.low, start, end)
            if not _PAST_CUE.search(sentence) or _FUTURE_CUE.search(sentence):
                continue
        return _flat(part.text[start:end]).rstrip(",")
    return ""


# -- location ----------------------------------------------------------------------------------

_BUILDINGS = (
    "building", "bldg.", "bldg", "gebäude", "geb.", "haus", "bâtiment", "batiment", "bât.", "trakt", "turm",
)  # fmt: skip
_LETTER_BUILDINGS = ("block", "tower")
_ROOMS = (
    "meeting room", "conference room", "salle de réunion", "room", "rm.", "rm", "office", "raum", "zimmer",
    "büro", "buero", "salle", "bureau", "pièce", "lab", "labo", "labor", "besprechungsraum", "sitzungszimmer",
)  # fmt: skip
_NAMED_ROOMS = ("meeting room", "conference room", "salle de réunion", "sitzungszimmer", "besprechungsraum")
_DESKS = ("desk", "seat", "workstation", "arbeitsplatz", "platz", "poste de travail")
_FLOORS = (
    "floor", "level", "stockwerk", "stock", "obergeschoss", "etage", "étage", "erdgeschoss", "untergeschoss",
    "dachgeschoss", "rez-de-chaussée", "og", "eg", "ug",
)  # fmt: skip
_SITES = ("campus", "site", "standort")
_LOCATION_TRIGGER = re.compile(
    "(?:"
    + _words(*_BUILDINGS, *_LETTER_BUILDINGS, "wing", *_ROOMS, *_DESKS, *_FLOORS, *_SITES)
    + ")(?![a-zäöüéèà])"
)
_ROOM_ID = r"(?:[A-Z]{1,3}[ -]?)?\d{1,4}(?:[.-]\d{1,4})*[A-Za-z]?(?![\w.-]*\d)|[A-Z](?:-?\d{1,4})?(?![\w-])"
_ROOM_RIGHT = re.compile(r" (?:(?:[Nn]o\.?|[Nn]r\.?|n°|[Nn]umber|#) ?)?(?:" + _ROOM_ID + ")")
_NAMED_ROOM = re.compile(r" [A-Z][a-z]{2,20}(?![\w-])")
_BUILDING_RIGHT = re.compile(r" (?:[Nn]o\.? |[Nn]r\.? |n° )?(?:[A-Z]{1,3}|[A-Z]{0,2}\d{1,3}[A-Z]?)(?![\w-])")
_LETTER_RIGHT = re.compile(r" [A-Z]{1,2}(?![\w-])")
_NAME_LEFT = re.compile(r"(?:(?:the|The|das|dem|im) )?(?:[A-Z][A-Za-z]{1,20}|[A-Z]{1,3}) $")
_WING_LEFT = re.compile(r"(?:the )?(?:north|south|east|west|new|old|main) $")
_FLOOR_LEFT = re.compile(
    r"(?:\d{1,2}(?:st|nd|rd|th)|first|second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|ground"
    r"|top|basement) $"
)
_FLOOR_RIGHT = re.compile(r" \d{1,2}(?!\w|\.\d)")
_GERMAN_FLOOR_LEFT = re.compile(r"\d{1,2}\. ?$")
_FRENCH_FLOOR_LEFT = re.compile(
    r"(?:\d{1,2} ?(?:e|er|ère|ème|eme)|premier|deuxième|troisième|quatrième|cinquième) $"
)
_ON_LEFT = re.compile(r"(?:on|at|auf) (?:the )?$")
_IM_LEFT = re.compile(r"(?:im|au) $")
_SITE_RIGHT = re.compile(r" [A-Z][\w-]{2,20}(?![\w-])")
_SITE_LEFT = re.compile(r"[A-Z][\w-]{2,20} $")
_LOCATION_LABEL = re.compile(
    r"(?:location|room|building|office|floor|site|standort|raum|gebäude|ort|lieu|salle|bâtiment"
    r"|emplacement|büro|bureau)[*_]* ?[:|] ?(?P<value>[^\n]{1,60})$",
    flags=re.MULTILINE,
)
_NOT_NAMES = _wordset(
    """a an and any at booking but camera client company confluence construction customer display every
    external for home in internal internet intranet is it jira job my new of office old on or our
    phone project remote same screen share sharepoint team teams test that the this to web your production
    staging development demo partner vendor support help knowledge download landing login"""
)
# capitalised words after "building" that are not its name
_NOT_PLACE_NAMES = _wordset(
    """today yesterday tomorrow please thanks since and but the this is was has we i it our monday tuesday
    wednesday thursday friday saturday sunday heute gestern morgen bitte danke seit und ist"""
)
_NOT_ROOM_IDS = re.compile(r"365|20[0-3]\d|19\d\d|\d{5,}")


def _location_at(part: _Part, start: int, end: int, word: str) -> tuple[str, int, int] | None:
    """(kind, start, end) of the location a trigger word stands in, if it names one."""
    text, low = part.text, part.low
    if word in _BUILDINGS or word in _LETTER_BUILDINGS:
        right = (_BUILDING_RIGHT if word in _BUILDINGS else _LETTER_RIGHT).match(text, end)
        if right:
            return "building", start, right.end()
        named = _NAMED_ROOM.match(text, end) if word in _BUILDINGS else None  # "Gebäude West"
        if named and named.group().strip().lower() not in _NOT_NAMES | _NOT_PLACE_NAMES:
            return "building", start, named.end()
        if word in ("building", "gebäude"):
            left = _NAME_LEFT.search(text, max(0, start - 30), start)
            if left and left.group().split()[-1].lower() not in _NOT_NAMES:
                return "building", left.start(), end
        return None
    if word == "wing":
        left = _WING_LEFT.search(low, max(0, start - 12), start)
        return ("building", left.start(), end) if left else None
    if word in _DESKS:  # "desk 6.42": only with a number, "help desk" is no place
        right = _ROOM_RIGHT.match(text, end)
        return ("desk", start, right.end()) if right and any(ch.isdigit() for ch in right.group()) else None
    if word in _ROOMS:
        right = _ROOM_RIGHT.match(text, end)
        if right and not _NOT_ROOM_IDS.fullmatch(right.group().strip(" #").split()[-1]):
            return "room", start, right.end()
        if word in _NAMED_ROOMS:
            named = _NAMED_ROOM.match(text, end)
            if named and named.group().strip().lower() not in _NOT_NAMES:
                return "room", start, named.end()
        return None
    if word == "level":  # "on level 3", not "level 2 support"
        left = _ON_LEFT.search(low, max(0, start - 8), start)
        right = _FLOOR_RIGHT.match(low, end)
        return (
            ("floor", start, right.end())
            if left and right and not _NEXT_NOT_RESOURCE.match(low, right.end())
            else None
        )
    if word == "floor":
        left = _FLOOR_LEFT.search(low, max(0, start - 12), start)
        if left:
            return "floor", left.start(), end
        right = _FLOOR_RIGHT.match(low, end)
        return ("floor", start, right.end()) if right else None
    if word in ("stock", "stockwerk", "obergeschoss", "etage", "og"):
        if word == "og" and text[start:end] != "OG":
            return None
        left = _GERMAN_FLOOR_LEFT.search(low, max(0, start - 5), start)
        if left:
            return "floor", left.start(), end
        right = _FLOOR_RIGHT.match(low, end) if word == "etage" else None
        return ("floor", start, right.end()) if right else None
    if word == "étage":
        left = _FRENCH_FLOOR_LEFT.search(low, max(0, start - 14), start)
        if left:
            return "floor", left.start(), end
        right = _FLOOR_RIGHT.match(low, end)
        return ("floor", start, right.end()) if right else None
    if word in ("erdgeschoss", "untergeschoss", "dachgeschoss", "rez-de-chaussée"):
        return "floor", start, end
    if word in ("eg", "ug"):
        left = _IM_LEFT.search(low, max(0, start - 3), start)
        return ("floor", left.start(), end) if left and text[start:end].isupper() else None
    if word in _SITES:
        right = _SITE_RIGHT.match(text, end)
        if right and right.group().strip().lower() not in _NOT_NAMES:
            return "site", start, right.end()
        left = _SITE_LEFT.search(text, max(0, start - 22), start)
        if left and left.group().strip().lower() not in _NOT_NAMES and word != "standort":
            return "site", left.start(), end
    return None


_LOCATION_TRIGGERS = _first_words(
    (*_BUILDINGS, *_LETTER_BUILDINGS, "wing", *_ROOMS, *_DESKS, *_FLOORS, *_SITES)
)
_LOCATION_LABELS = _wordset(
    """location room building office floor site standort raum gebäude ort lieu salle bâtiment emplacement
    büro bureau"""
)


def _location(written: Iterable[_Part], signature: _Part) -> str:
    """Labelled lines, else the building, floor, room and site named (in the signature if nowhere else)."""
    for group in (tuple(written), (signature,)):
        labelled = [
            _flat(part.text[label.start("value") : label.end("value")]).strip(" *_|")
            for part in group
            for label in _labelled(part, _LOCATION_LABELS, _LOCATION_LABEL)
        ]
        labelled = [value for value in labelled if _is_place(value)]
        if labelled:  # "Building: North Wing" and "Room: 214" on lines of their own
            return ", ".join(labelled)[:_MAX_VALUE]
        pieces: dict[str, str] = {}  # the first of each kind, in the order written
        for part in group:
            last_end = -1
            for position, _ in part.hits(_LOCATION_TRIGGERS):
                match = _LOCATION_TRIGGER.match(part.low, position)
                if match is None or position < last_end:
                    continue
                found = _location_at(part, position, match.end(), match.group())
                if found is not None:
                    kind, first, last_end = found
                    pieces.setdefault(kind, _flat(part.text[first:last_end]))
        if pieces:
            return ", ".join(pieces.values())[:_MAX_VALUE]
    return ""


def _is_place(value: str) -> bool:
    """Whether a labelled value names a place: not "n/a", and not the phone or web address that
    signatures put after "Office:" or "Site:"."""
    digits = sum(ch.isdigit() for ch in value)
    return (
        value.lower() not in _NOTHING
        and _has_alnum(value)
        and not value.startswith(("+", "("))
        and digits < 7
        and "@" not in value
        and "www." not in value.lower()
        and "://" not in value
    )


def _has_alnum(value: str) -> bool:
    return any(ch.isalnum() for ch in value)


# -- resource ----------------------------------------------------------------------------------

_VAGUE = (
    "module", "modul", "page", "portal", "portail", "app", "application", "applikation", "anwendung", "tool",
    "outil", "system", "software", "logiciel", "program", "programme", "programm", "platform", "plattform",
    "plateforme", "service", "server", "serveur", "site", "website", "web site", "form", "formular",
    "formulaire", "maske", "dashboard", "database", "datenbank", "drive", "laufwerk", "share", "screen",
    "report", "interface", "plugin", "add-in", "extension", "folder", "network", "seite", "phone",
)  # fmt: skip
_DEVICES = (
    "printer", "drucker", "imprimante", "scanner", "laptop", "notebook", "desktop", "computer", "ordinateur",
    "pc", "rechner", "monitor", "bildschirm", "écran", "docking station", "dockingstation", "dock",
    "keyboard", "tastatur", "clavier", "mouse", "maus", "souris", "headset", "webcam", "projector",
    "projecteur", "beamer", "desk phone", "ip phone", "conference phone", "badge reader", "card reader",
    "copier", "photocopier", "mfp", "mailbox", "postfach", "messagerie", "intranet", "tablet", "smartphone",
)  # fmt: skip
_GERMAN_SUFFIXES = _wordset(
    """modul seite portal programm system drucker laufwerk server anwendung software datenbank formular maske
    plattform postfach rechner"""
)
_GERMAN_SUFFIX_TUPLE = tuple(sorted(_GERMAN_SUFFIXES, key=len, reverse=True))
_GERMAN_NOUNS = _wordset(
    """drucker scanner laptop notebook bildschirm monitor beamer rechner computer pc dockingstation tastatur
    maus intranet postfach modul seite anwendung programm portal server laufwerk software applikation"""
)
_FRENCH_NOUNS = _wordset(
    """module page portail application logiciel serveur site outil plateforme formulaire imprimante scanner
    ordinateur écran messagerie intranet clavier souris projecteur"""
)
_HEAD = re.compile("(?:" + _words(*_VAGUE, *_DEVICES) + ")")
_DEVICE_TAIL = re.compile(
    r" (?P<model>[A-Z0-9][\w-]*\d[\w-]*)?(?: ?(?P<where>(?:on|in) (?:the )?(?:floor \d{1,2}"
    r"|\d{1,2}(?:st|nd|rd|th) floor|(?:first|second|third|fourth|fifth|ground|top) floor|room [\w.-]{1,10}"
    r"|meeting room \w+)))?"
)
_RIGHT_NAME = re.compile(r" (?:[A-Z][\w-]*\d[\w-]*|[A-Z]{2,}[\w-]*|\"[^\"\n]{1,40}\")(?![\w-])")
_FRENCH_LEFT = re.compile(r"(?<![\w'])(?:le|la|mon|ma|notre) $|l'$")
_FRENCH_RIGHT = re.compile(r" (?:de|d'|du|des) ?(?:la |l')?[\w-]{3,30}| [A-Z][\w-]{1,30}")
_GERMAN_LEFT = re.compile(r"(?:der|die|das|den|dem|des|mein(?:e|en|em)?|unser(?:e|en|em)?) $")
_GERMAN_NAME = re.compile(r" (?:[A-Z][\w-]*\d[\w-]*|[A-Z][\w-]{1,20}|\"[^\"\n]{1,40}\")(?![\w-])")
_NOT_GERMAN_RESOURCE = ("rückseite", "vorderseite", "innenseite", "außenseite", "aussenseite", "unterseite",
                        "oberseite", "kehrseite", "webseite")  # fmt: skip
_TOKEN = re.compile(r"[\w&+:./'-]+")
_STOP = _wordset(
    """a about access accessed accessing after afternoon again all also always am an and another any are
    aren't as at auf be because been before being black blank blue broken but by calling can can't
    cannot cell changed changing check checking cleared clearing clicking close closing configure
    configuring connect connected connecting correct could couldn't currently das de dead dear dem den
    der des did didn't die different do does doesn't down downloading du each ein eine einen empty
    entering entire error errors evening ever every find fix fixing following for from get gets getting
    got had has have he hello help her here hi his i if im in install installed installing into is isn't
    issue issues it its just keep keeps la launching le left les like load loading log logged login ma
    main many me mein meine mes mit mobile mon more morning most much my need needed needs never new no
    nor nos not notre now of off old on once one only open opened opening or other our out personal
    please plugged print private problem problems reach reaching reboot rebooted rebooting reinstalled
    replaced replacing request resetting restart restarted restarting right running same saving
    scan see seem seems sending set setting setup share she should sign signed since so some start
    starting still submitting switched switching than thank thanks that the their them then there these
    they this those through to today too tried try trying turned turning twice un une unplugged unser
    unsere up update updated updating uploading us use used using very via visit von want wants was
    wasn't we were what when whenever where which while white whole whose will with without won't work
    worked working works would wrong yesterday you your zum zur
    damaged faulty defective slow problème probleme panne souci störung defekt defekter defekte kaputt
    pm delete remove generate create add change expire attach attached provide grant give send receive
    move copy restore approve submit upload download book cancel extend renew enable disable activate
    deactivate assign unlock lock allow deny migrate transfer sync seeing having monday tuesday wednesday
    thursday friday saturday sunday january february march april june july august september october
    november december au aux à du en dans sur pour avec par chez vers et in für bei vom beim ins und
    votre vos ton ta tes leur leurs son sa ses ce cette ces ihr ihre ihren sein seine dein deine"""
)
_ING_NOUNS = _wordset(
    """accounting billing booking building conferencing computing clearing hosting invoicing learning
    logging mailing marketing meeting messaging monitoring networking onboarding parking planning printing
    processing purchasing recording reporting routing scheduling sharing shipping staging streaming testing
    ticketing timekeeping tracking trading training banking"""
)
_DETERMINERS = frozenset({"the", "my", "our", "your", "their", "this", "that"})
_NEXT_NOT_RESOURCE = re.compile(
    r" (?:desk|administrator|admin|request|ticket|team|support|provider|update|restart|account|level|pack"
    r"|manager|owner|number|call|outage|engineer|technician)\b"
)
_PRODUCTS_CASED = re.compile(
    r"(?:Teams|Zoom(?: Rooms?)?|Chrome|Slack|Windows(?: \d{1,2}| XP| Server(?: 20\d\d)?)?|Oracle|Exchange"
    r"|Workday|Abacus|MFA|2FA|SSO|ERP|CRM|LDAP|DNS|DHCP|RDP)(?![\w-])"
)


def _head_phrase(part: _Part, start: int, end: int, word: str) -> tuple[int, int, bool] | None:
    """(start, end, is_device) of "the billing module", "HP LaserJet printer on floor 2", "der Drucker"."""
    text, low = part.text, part.low
    if end < len(low) and low[end] == "s" and (end + 1 == len(low) or not low[end + 1].isalnum()):
        end += 1  # "printers", "modules"
    if not part.ends_word(end) or (end < len(low) and low[end] == "-"):
        return None
    device = word in _DEVICES
    if not part.starts_word(start):
        # a German compound: "Abrechnungsmodul", "Netzlaufwerk", "Anmeldeseite"
        if word not in _GERMAN_SUFFIXES:
            return None
        first = start
        while first > 0 and low[first - 1].isalpha():
            first -= 1
        if not text[first].isupper() or start - first < 3 or low[first:end].startswith(_NOT_GERMAN_RESOURCE):
            return None
        left = _GERMAN_LEFT.search(low, max(0, first - 8), first)
        return (left.start() if left else first), end, device
    if _NEXT_NOT_RESOURCE.match(low, end):
        return None
    if word in _GERMAN_NOUNS and text[start].isupper():
        left = _GERMAN_LEFT.search(low, max(0, start - 8), start)
        if left:
            name = _GERMAN_NAME.match(text, end)
            if name or device or word in _DEVICES:
                return left.start(), (name.end() if name else end), True
            return None
    if word in _FRENCH_NOUNS:
        left = _FRENCH_LEFT.search(low, max(0, start - 8), start)
        if left:
            if word in _DEVICES:
                return left.start(), end, True
            name = _FRENCH_RIGHT.match(text, end)
            if name:
                return left.start(), name.end(), False
            return None
    low_start = max(0, start - 60)
    window = low[low_start:start]
    begin = 0
    for stop in (",", ";", "!", "?", "(", ")", "\n", ". ", '"', ": ", " - ", "|"):
        cut = window.rfind(stop)
        if cut >= 0:
            begin = max(begin, cut + len(stop))
    tokens = list(_TOKEN.finditer(window, begin))
    index = len(tokens) - 1
    modifiers = 0
    while index >= 0 and modifiers < 3:
        token = tokens[index].group()
        if token.strip(".:'") in _STOP or token.endswith(("'s", ":")):
            break
        modifiers += 1
        index -= 1
    determiner = index >= 0 and tokens[index].group() in _DETERMINERS
    if modifiers == 3 and not (determiner or device):
        index += 1  # "order tutorial administrator phone": a long run without "the" is rarely one name
        modifiers -= 1
    # "tried seeing approvals report": an -ing word leads the phrase only if it is a known noun
    # ("billing", "booking") or follows a determiner
    while modifiers and not determiner:
        leading = tokens[index + 1].group()
        if not leading.endswith("ing") or leading in _ING_NOUNS:
            break
        index += 1
        modifiers -= 1
    phrase_end = end
    if device:
        tail = _DEVICE_TAIL.match(text, end)
        if tail and (tail.group("model") or tail.group("where")):
            phrase_end = tail.end()
    elif not modifiers:
        name = _RIGHT_NAME.match(text, end)  # "the module FI-CO", "the page "Timesheets""
        if not name or word == "report":
            return None
        phrase_end = name.end()
    if determiner:
        phrase_start = low_start + tokens[index].start()
    elif modifiers:
        phrase_start = low_start + tokens[index + 1].start()
    else:
        phrase_start = start
    return phrase_start, phrase_end, device


_RESOURCE_LABEL = re.compile(
    r"(?:module(?: name)?|page(?: name)?|application|app|system|service|resource|device|affected"
    r" (?:system|service|application|resource|module|device)|modul|anwendung|programm|gerät|ressource"
    r"|logiciel|appareil)[*_]* ?[:|] ?(?P<value>[^\n]{2,80})$",
    flags=re.MULTILINE,
)


_URL = re.compile(r"https?://[^\s<>()\[\]\"']{3,200}")
_PRODUCT_WORDS = (
    "vpn", "outlook", "onedrive", "one drive", "sharepoint", "excel", "powerpoint", "ms teams",
    "microsoft teams", "ms word", "microsoft word", "microsoft edge", "ms access", "microsoft access",
    "ms project", "dynamics 365", "office 365", "microsoft 365", "m365", "o365", "jira", "confluence",
    "salesforce", "webex", "citrix", "active directory", "wifi", "wi-fi", "wlan", "eduroam", "moodle",
    "servicenow", "firefox", "adobe acrobat", "adobe reader", "acrobat reader", "acrobat",
    "skype for business", "skype", "dropbox", "gitlab", "github", "jenkins", "azure ad", "azure devops",
    "azure", "okta", "authenticator", "remote desktop", "anyconnect", "globalprotect", "forticlient",
    "navision", "matlab", "autocad", "photoshop", "spss", "thunderbird", "sap gui", "sap",
)  # fmt: skip
_PRODUCTS_LOW = re.compile("(?:" + _words(*_PRODUCT_WORDS) + r")(?![\w-])")
_CASED_PRODUCT_WORDS = _wordset(
    """2fa abacus chrome crm dhcp dns erp exchange ldap mfa oracle rdp slack sso teams windows workday zoom"""
)
_HEAD_TRIGGERS = _first_words((*_VAGUE, *_DEVICES), plurals=True)
_PRODUCT_TRIGGERS = _first_words(_PRODUCT_WORDS)
_CASED_PRODUCT_TRIGGERS = frozenset(_CASED_PRODUCT_WORDS)
_URL_TRIGGERS = frozenset({"http", "https"})
_RESOURCE_LABELS = _wordset(
    """affected anwendung app appareil application device gerät logiciel modul module page programm
    resource ressource service system"""
)


_LOOKBACK = 60  # a phrase starts at most this far before its head word


def _resource_triggers(part: _Part) -> list[tuple[int, str, str]]:
    """(position, kind, word) of every word that may start or head a mention, in text order."""
    triggers = [(position, "url", word) for position, word in part.hits(_URL_TRIGGERS)]
    triggers += [(position, "head", word) for position, word in part.hits(_HEAD_TRIGGERS)]
    triggers += [(position, "product", word) for position, word in part.hits(_PRODUCT_TRIGGERS)]
    triggers += [(position, "cased", word) for position, word in part.hits(_CASED_PRODUCT_TRIGGERS)]
    if len(part.words & _GERMAN_WORDS) >= 2:
        for word in part.words:  # German compounds: "Abrechnungsmodul", "Netzlaufwerk"
            if len(word) > 7 and word.endswith(_GERMAN_SUFFIX_TUPLE) and word not in _HEAD_TRIGGERS:
                suffix = next(suffix for suffix in _GERMAN_SUFFIX_TUPLE if word.endswith(suffix))
                offset = len(word) - len(suffix)
                triggers += [(position + offset, "head", suffix) for position in part.positions(word)]
    triggers.sort()
    return triggers


def _mention(part: _Part, position: int, kind: str) -> tuple[int, int, bool, str] | None:
    """(start, end, is_device, head word) of the mention a trigger word stands in, if any."""
    low = part.low
    if kind == "url":
        url = _URL.match(low, position)
        return (position, url.end() - (low[url.end() - 1] in ".,;:!?"), False, "url") if url else None
    if kind == "head":
        match = _HEAD.match(low, position)
        phrase = _head_phrase(part, position, match.end(), match.group()) if match else None
        return (*phrase, match.group()) if phrase and match else None
    pattern, source = (_PRODUCTS_LOW, low) if kind == "product" else (_PRODUCTS_CASED, part.text)
    product = pattern.match(source, position)
    return (position, product.end(), False, product.group().lower()) if product else None


def _first_mention(part: _Part) -> tuple[int, int, bool, str] | None:
    """The mention that starts first; where several start together, the longest ("the Outlook app")."""
    best: tuple[int, int, bool, str] | None = None
    url_end = -1
    for position, kind, _ in _resource_triggers(part):
        if best is not None and position > best[0] + _LOOKBACK:
            break  # nothing found from here on can start before the best
        if position < url_end:
            continue  # "intranet" inside "https://intranet.example.com/timesheets"
        found = _mention(part, position, kind)
        if found is None:
            continue
        if kind == "url":
            url_end = found[1]
        if best is None or (found[0], found[0] - found[1]) < (best[0], best[0] - best[1]):
            best = found
    return best


def _resource(subject: _Part, body: _Part) -> str:
    for part in (subject, body):
        for label in _labelled(part, _RESOURCE_LABELS, _RESOURCE_LABEL):
            value = _flat(part.text[label.start("value") : label.end("value")]).strip(" *_|")
            if value.lower() not in _NOTHING and _has_alnum(value):
                return value[:_MAX_VALUE]
    # the subject sums the mail up, so its first mention wins; then the body's
    for part in (subject, body):
        found = _first_mention(part)
        if found is None:
            continue
        start, end, device, head = found
        value = part.text[start:end]
        if device and end - start <= len(head) + 6:
            # "Printer jammed" in the subject, "the printer HP-4200 on floor 2" below: the precise one
            value = max((value, *_detailed_devices(subject, body, head)), key=len)
        return _flat(value)[:_MAX_VALUE]
    return ""


def _detailed_devices(subject: _Part, body: _Part, head: str) -> Iterator[str]:
    """Every mention of the device `head` that names a model or where it is."""
    for part in (subject, body):
        for position in part.positions(head) + part.positions(head + "s"):
            found = _mention(part, position, "head")
            tail = _DEVICE_TAIL.match(
                part.text, position + len(head) + part.low.startswith("s", position + len(head))
            )
            if found and found[2] and tail and (tail.group("model") or tail.group("where")):
                yield part.text[found[0] : found[1]]


# -- error messages ----------------------------------------------------------------------------

_ERROR_WORDS = (
    "error message", "error code", "error text", "errors", "error", "fehlermeldung", "fehlercode",
    "fehlertext", "fehler", "meldung", "message d'erreur", "code d'erreur", "erreur", "exception", "warning",
    "warnung", "avertissement", "following message", "this message", "message below", "stop code",
    "exit code", "event id",
)  # fmt: skip
_ERROR_TRIGGER = re.compile("(?:" + _words(*_ERROR_WORDS) + ")(?![\\w])")
_ERROR_TRIGGERS = _first_words(_ERROR_WORDS)
_CODE_TRIGGERS = frozenset({"ora", "http", "sqlstate", "err", "nt", "status"})
_ERROR_COLON = re.compile(
    r"(?: (?:was|is|says|reads|displayed|shown|lautet|ist|est|indique|affiché|below|ci-dessous|unten|received"
    r"|i get|i got|appears|came up|popped up))?[*_]* ?[:|](?![/\\]) ?"
)
_ERROR_CODE = re.compile(
    r"(?: code)?(?: (?:#|no\.?|nr\.?|number))? ?:? ?(?:0x[0-9a-f]+|(?P<letters>[a-z]{1,4}[ -]?)?\d{2,8}[a-z]?"
    r"|(?P<symbol>[a-z]{2,}(?:_[a-z0-9]+)+))(?![\w-]|\.\d)"
)
_CODE_LEFT = re.compile(r"(?<![\w-])[a-z]{1,4}-\d{2,5} $")
_CODE_WORDS = ("error", "fehler", "erreur", "stop code", "exit code", "event id", "error code", "fehlercode")
_CODES = re.compile(
    r"(?:0x[0-9A-Fa-f]{8}|ORA-\d{5}|AADSTS\d{5,6}|HTTP(?:/\d\.\d)? ?(?:[Ee]rror |ERROR )?[1-5]\d{2}"
    r"|SQLSTATE\[?\w{5}\]?|ERR_[A-Z_]{3,}|NT_STATUS_[A-Z_]+|STATUS_[A-Z_]{4,})(?![\w-])"
)
_HTTP_STATUS = re.compile(
    r"[45]\d\d (?:Not Found|Internal Server Error|Bad Gateway|Service Unavailable|Gateway Time-?out|Forbidden"
    r"|Unauthorized|Bad Request)(?![\w-])"
)
_SMTP_STATUS = re.compile(r"[45]\d\d[ -][45]\.\d{1,3}\.\d{1,3}(?![\w.])")
_EXCEPTION = re.compile(r"(?:Exception|Error|Fault)(?![\w])")
_QUOTE_OPEN = re.compile("[\"“„«‹']")
_QUOTE_CLOSE = {
    '"': re.compile(r" ?([^\"\n]{2,300}?(?:\n[^\"\n]{1,300}?)?) ?\""),
    "“": re.compile(r" ?([^”“\"\n]{2,300}?(?:\n[^”“\"\n]{1,300}?)?) ?[”“\"]"),
    "„": re.compile(r" ?([^“”\"\n]{2,300}?(?:\n[^“”\"\n]{1,300}?)?) ?[“”\"]"),
    "«": re.compile(r" ?([^»\n]{2,300}?(?:\n[^»\n]{1,300}?)?) ?»"),
    "‹": re.compile(r" ?([^›\n]{2,300}?) ?›"),
    "'": re.compile(r"([^'\n]{3,200}?)'(?![\w])"),
}
_STRONG_CUE = re.compile(
    r"\b(?:error|errors|fehler\w*|erreur|message|meldung|warning|warnung|pop-?up|dialog(?:ue)?|prompt"
    r"|notification|exception|alert|avertissement)\b"
)
_WEAK_CUE = re.compile(
    r"\b(?:says|saying|said|shows|showing|displays|displaying|reads|get|getting|got|receive|receiving"
    r"|received|appears|pops up|sagt|zeigt|erscheint|kommt|steht|stand|lautet|anzeige|affiche|indique"
    r"|apparaît|failed with|fails with|returns|returned|code|gives|giving|gave|throws|throwing|threw|reports"
    r"|reported|reporting)\b"
)
_KEY_AFTER = re.compile(r"\s?: ?[\"“]")  # "error": "..."
_CUE_WORDS = frozenset({"error", "errors", "message", "warning", "fehler", "meldung", "erreur", "exception"})
# words an error message is made of, so quoted text with them is taken even without "error" before it
_ERRORISH = re.compile(
    r"\b(?:fail\w*|denied|invalid|unable|cannot|can't|could not|couldn't|not found|refused|timed? ?out"
    r"|expired|locked|unavailable|unauthori[sz]ed|forbidden|exception|fatal|abgelehnt|fehlgeschlagen"
    r"|ungültig|gesperrt|nicht möglich|impossible|refusé|échec|invalide)\b"
)
_FAILED = re.compile(r"\b(?:fail\w*|crash\w*|abort\w*|terminat\w*|stopp\w*|exit\w*|error\w*)\b")
_AFTER_CUE = re.compile(r"[\s,)]{0,3}(?:error|message|fehler\w*|meldung|erreur|warning|pop-?up)\b")
# what mail gateways stamp on incoming mail, often after "Warning:" or in quotes
_BANNER = re.compile(
    r"originated (?:from )?outside|outside (?:of )?(?:the |your |our )?(?:organi[sz]ation|company)"
    r"|external (?:sender|email|e-mail|message|source)|do not click|unknown sender|phishing"
    r"|externe[nr]? (?:absender|e-mail)"
)
_NOT_AN_ERROR = re.compile(r"(?:hi|hello|dear|thanks?|regards|best|please|see|attached|n/a|none|-+)\b")


def _next_line(part: _Part, end: int) -> tuple[int, int]:
    newline = part.low.find("\n", end)
    while 0 <= newline < min(len(part.low), end + 2000):
        stop = part.low.find("\n", newline + 1)
        stop = len(part.low) if stop < 0 else stop
        if part.low[newline + 1 : stop].strip():
            return newline + 1, stop
        newline = stop if stop < len(part.low) else -1
    return end, end


_SENTENCE_BREAK = re.compile(r"[.!?] +(?=[A-ZÄÖÜÉ])")


def _value_end(part: _Part, label_start: int, start: int) -> int:
    """Where an error after a label ends: its line, or its sentence when the label was mid-sentence."""
    end = _line_end(part.low, start)
    line_start = part.low.rfind("\n", 0, label_start) + 1
    if part.low[line_start:label_start].strip(" *_>-"):
        cut = _SENTENCE_BREAK.search(part.text, start, end)
        if cut:
            end = cut.start()
    return end


def _line_end(low: str, start: int) -> int:
    end = low.find("\n", start)
    return min(len(low) if end < 0 else end, start + _MAX_ERROR_LEN)


def _error_code(part: _Part, end: int) -> int | None:
    """Where the code after "error" / "stop code" ends: "error 1603", "Error SC 542", "0x80070005"."""
    code = _ERROR_CODE.match(part.low, end)
    if code is None:
        return None
    # letters in a code are capitals ("E-42", "SC 542", "CRITICAL_PROCESS_DIED"), unlike words ("on 12")
    for group in ("letters", "symbol"):
        if code.group(group) and not part.text[code.start(group) : code.end(group)].isupper():
            return None
    return code.end()


def _error_spans(part: _Part) -> list[tuple[int, int]]:
    low, text = part.low, part.text
    spans: list[tuple[int, int]] = []
    for start, _ in part.hits(_ERROR_TRIGGERS):
        match = _ERROR_TRIGGER.match(low, start)
        if not match:
            continue
        end = match.end()
        word = match.group()
        colon = _ERROR_COLON.match(low, end)
        if colon:
            value_end = _value_end(part, start, colon.end())
            if low[colon.end() : value_end].strip(" *_|"):
                spans.append((colon.end(), value_end))
            else:
                spans.append(_next_line(part, colon.end()))
            continue
        code_end = _error_code(part, end) if word in _CODE_WORDS else None
        if code_end is not None:
            spans.append((start, code_end))
            continue
        if word.startswith("error"):
            left = _CODE_LEFT.search(low, max(0, start - 10), start)
            if left:
                spans.append((left.start(), start - 1))
    code_starts = [position for position, _ in part.hits(_CODE_TRIGGERS)]
    if "0x" in low or "aadsts" in low:
        code_starts += [
            p for word in part.words if word.startswith(("0x", "aadsts")) for p in part.positions(word)
        ]
    matches = [_CODES.match(text, position) for position in code_starts]
    matches += [_HTTP_STATUS.match(text, position) for position in part.digit_starts if low[position] in "45"]
    for code in matches:
        if code:
            end = code.end()
            if low.startswith(": ", end):  # "ORA-12154: TNS:could not resolve ..."
                end = _value_end(part, code.start(), end)
            spans.append((code.start(), end))
    for position in part.digit_starts:  # a bounce: "550 5.7.1 Recipient address rejected: Access denied"
        if low[position] in "45" and _SMTP_STATUS.match(low, position):
            spans.append((position, _line_end(low, position)))
    exceptions = _EXCEPTION.finditer(text) if "xception" in low or "rror" in low or "fault" in low else ()
    for match in exceptions:
        first = match.start()
        while first > 0 and (text[first - 1].isalnum() or text[first - 1] in "._$"):
            first -= 1
        token = text[first : match.end()]
        line_start = text.rfind("\n", 0, first) + 1
        if ("." in token.strip(".") and token[0].islower()) or token.startswith(("System.", "Microsoft.")):
            end = _line_end(low, match.end()) if low.startswith(":", match.end()) else match.end()
            spans.append((first, end))
        elif (
            token not in ("Error", "Exception", "Fault")
            and not text[line_start:first].strip()
            and low.startswith(": ", match.end())
        ):
            spans.append((first, _line_end(low, match.end())))  # "KeyError: 'customer_id'"
    position = 0
    previous_end = 0
    key = ""
    while True:
        match = _QUOTE_OPEN.search(low, position)
        if not match:
            break
        opener = match.group()
        position = match.end()
        if opener == "'" and not part.starts_word(match.start()):
            continue  # an apostrophe: "can't", "l'imprimante"
        closing = _QUOTE_CLOSE[opener].match(low, position)
        if not closing:
            continue
        value_start, value_end = closing.span(1)
        window = low[max(previous_end, match.start() - 80) : match.start()]
        previous_end = position = closing.end()
        quoted = low[value_start:value_end]
        if _KEY_AFTER.match(low, closing.end()):
            key = quoted  # "error": "invalid_client" -- a key names what its value is
            continue
        words = len(quoted.split())  # "the "Save" button" is no error
        if quoted.strip() in _CUE_WORDS:
            pass  # a quoted "error" alone says nothing
        elif (
            _STRONG_CUE.search(window)
            or _AFTER_CUE.match(low, closing.end())
            or _STRONG_CUE.search(quoted)
            or (words >= 2 and (_WEAK_CUE.search(window) or _ERRORISH.search(quoted)))
            or (window.endswith("with ") and _FAILED.search(window))
            or (key and window.strip() == ":" and _STRONG_CUE.search(key))
        ):
            spans.append((value_start, value_end))
        key = ""
    return spans


def _clean_error(value: str) -> str:
    value = _flat(value).strip(" *_|").rstrip(".,;")
    if len(value) > 2 and value[0] in '"“„«' and value[-1] in '"”“»':
        value = value[1:-1].strip()
    elif len(value) > 2 and value[0] in '"“„«':
        closing = max(value.rfind(quote) for quote in '"”“»')
        if closing > 0:
            value = value[1:closing].strip()
    return value[:_MAX_ERROR_LEN]


def _errors(parts: Iterable[_Part]) -> tuple[str, ...]:
    errors: list[str] = []
    for part in parts:
        for start, end in sorted(set(_error_spans(part))):
            value = _clean_error(part.text[start:end])
            folded = value.casefold()
            if len(value) < 2 or _NOT_AN_ERROR.match(folded) or not any(ch.isalnum() for ch in value):
                continue
            if _BANNER.search(folded):
                continue  # "WARNING: This email originated from outside the organisation"
            if any(folded in kept.casefold() for kept in errors):
                continue
            errors = [kept for kept in errors if kept.casefold() not in folded]
            errors.append(value)
            if len(errors) >= _MAX_ERRORS:
                return tuple(errors)
    return tuple(errors[:_MAX_ERRORS])


# -- first time or again -----------------------------------------------------------------------

_NOT_FIRST = re.compile(
    r"(?:"
    + _alternation(
        [
            r"not the (?:very )?first time", r"not for the first time", r"t the (?:very )?first time",
            r"happened before", r"had (?:this|that|the same) (?:problem|issue|error) before",
            r"same (?:problem|issue|error) (?:as (?:before|last)|again)",
            r"this (?:problem|issue|error) again",
            r"is back", r"came back",
            r"keeps? (?:happening|crashing|failing|freezing|dropping|disconnecting|coming back|losing"
            r"|asking|restarting|logging|showing|popping|kicking|locking|hanging)",
            r"every (?:day|morning|week|few (?:minutes|hours|days))", r"daily basis", r"on a daily basis",
            *(
                verb + r" (?:several|multiple|many|numerous|a few|two|three|\d+) times"
                for verb in ("happened", "happens", "occurred", "occurs", "crashed", "crashes", "failed",
                             "fails")
            ),
            r"repeatedly", r"recurring", r"recurrent",
            r"intermittent(?:ly)?",
            r"constantly", r"all the time", r"still (?:happening|not working|broken|failing|down)",
            r"already (?:reported|had|happened|opened)", r"as before", r"as last time",
            r"the (?:second|third|fourth|fifth|\d(?:nd|rd|th)) time", r"second time", r"third time",
            r"fourth time", r"fifth time",
            r"nicht (?:das |zum )?erste(?:n)? mal", r"schon wieder", r"immer wieder", r"tritt erneut",
            r"erneut (?:aufgetreten|passiert|ausgefallen|abgestürzt)", r"jeden (?:tag|morgen)", r"täglich",
            r"ständig", r"mehrmals", r"mehrfach", r"regelmässig", r"regelmäßig", r"bereits gemeldet",
            r"wieder aufgetreten", r"zum (?:zweiten|dritten|\d\.) mal",
            r"hatte(?:n)? (?:ich|wir) schon (?:mal|einmal|öfter)",
            r"hatte(?:n)? (?:ich|wir) (?:das|dieses|den|diesen) (?:problem|fehler) schon",
            r"schon (?:mal|einmal|öfter) (?:gehabt|passiert|aufgetreten|vorgekommen)",
            r"pas la première fois", r"de nouveau", r"à nouveau",
            r"encore (?:une fois|arrivé|planté|en panne)",
            r"tous les (?:jours|matins)", r"chaque (?:jour|matin)", r"plusieurs fois", r"se reproduit",
            r"récurrent", r"régulièrement", r"deuxième fois", r"troisième fois", r"quatrième fois",
        ]
    )
    + r")(?![\w])"
)  # fmt: skip
_NOT_FIRST_TRIGGERS = _wordset(
    """all already as bereits came chaque constantly daily de deuxième encore erneut every had happened
    happens occurred occurs crashed crashes failed fails immer intermittent intermittently is jeden keep
    keeps mehrfach mehrmals nicht not on pas plusieurs quatrième recurrent recurring regelmässig regelmäßig
    repeatedly récurrent régulièrement same schon se still ständig t the this tous tritt troisième täglich
    wieder zum à hatte hatten second third fourth fifth"""
)
# "it crashed again", "again today": "again" after a verb of failing, or before a day
_AGAIN_LEFT = re.compile(
    r"(?:happen\w*|occur\w*|broke|broken|crash\w*|fail\w*|stopped|froze|freez\w*|down|not working"
    r"|doesn't work|does not work|disconnect\w*|appear\w*|showing up|shows up|popping up|pops up"
    r"|it's|is) $"
)
_AGAIN_RIGHT = re.compile(r"again (?:today|this morning|now|and again)(?![\w])")
_FIRST = re.compile(
    r"(?:"
    + _alternation(
        [
            r"is the (?:very )?first time", r"was the (?:very )?first time", r"s the (?:very )?first time",
            r"for the (?:very )?first time",
            r"first time (?:this|that|it|i(?:'ve| have)? (?:seen|had|experienced|encountered|noticed|got"
            r"|get|see|saw)|we(?:'ve| have)? (?:seen|had))",
            r"never (?:happened|had (?:this|that|it|any)|seen (?:this|that|it)|occurred|experienced)",
            r"hasn't happened before", r"has not happened before", r"haven't had this before",
            r"have not had this before", r"haven't seen this before", r"didn't happen before",
            r"first occurrence", r"zum ersten mal", r"das erste mal", r"das erstemal", r"erstmals",
            r"erstmalig", r"noch nie",
            r"première fois", r"jamais (?:arrivé|eu|vu)",
        ]
    )
    + r")(?![\w])"
)  # fmt: skip
_NEVER = re.compile(r"(?:never|not|n't|noch nie) (?:\w+ )?$")
_NEGATED = re.compile(r"(?:not|n't|nicht|pas|isn't|wasn't) (?:the |la )?$")
_FIRST_TRIGGERS = _wordset(
    """didn erstmalig erstmals first for has hasn have haven is jamais never noch première s was zum das"""
)
_FIRST_TIME_TRIGGERS = _NOT_FIRST_TRIGGERS | _FIRST_TRIGGERS | {"again"}


def _first_time(parts: Iterable[_Part]) -> bool | None:
    again = first = False
    for part in parts:
        low = part.low
        for position, word in part.hits(_FIRST_TIME_TRIGGERS):
            if word == "t" and low[position - 2 : position] != "n'":
                continue  # "isn't the first time", not a stray "t"
            if word == "s" and low[position - 1 : position] != "'":
                continue  # "it's the first time"
            if word == "again":
                if _AGAIN_RIGHT.match(low, position) or _AGAIN_LEFT.search(
                    low, max(0, position - 25), position
                ):
                    again = True
                continue
            if word in _NOT_FIRST_TRIGGERS and _NOT_FIRST.match(low, position):
                if not _NEVER.search(low, max(0, position - 16), position):
                    again = True  # but not "never happened before", "hasn't had this problem before"
                continue
            if word in _FIRST_TRIGGERS and _FIRST.match(low, position):
                if _NEGATED.search(low, max(0, position - 12), position):
                    again = True
                else:
                    first = True
    if first != again:
        return first
    return None  # nothing said, or both said: unsure


# -- the whole ---------------------------------------------------------------------------------


def extract(subject: str, text: str) -> IssueRecord:
    """Read the issue record from a mail's subject and whole text part (quotes and signature included).

    Quoted history is removed first; the phone and the location are also looked for in the
    signature, the rest only in the subject and what the customer wrote above the signature.
    Never raises: should a bug surface, the record is empty (so everything is asked for) and
    the exception is logged.
    """
    try:
        return _extract(subject or "", text or "")
    except Exception:  # the contract is total: a parser bug must not stop the mail
        log.exception("issue record extraction failed")
        return IssueRecord()


_FORWARD_HINTS = (
    "forward",
    "weitergeleitet",
    "transféré",
    "transfere",
    "réexpédié",
    "reenviado",
    "inoltrato",
)


def _prepare(text: str) -> str:
    text = text[:_MAX_INPUT].replace("\r\n", "\n").replace("\r", "\n")
    if "&" in text and ";" in text:
        text = html.unescape(text)
    return text


def _extract(subject_text: str, text: str) -> IssueRecord:
    subject_line = _prepare(subject_text[:_MAX_SUBJECT]).replace("\n", " ")
    subject = _Part(_SUBJECT_PREFIX.sub("", subject_line).strip())
    prepared = _prepare(text)
    own = strip_quotes(prepared)
    body_text, signature_text = _split_signature(own[:_MAX_BODY])
    body = _Part(body_text)
    signature = _Part(signature_text, signature=True)
    error_parts = [subject, body]
    if any(hint in prepared.lower() for hint in _FORWARD_HINTS):
        # "see below": the forwarded bounce or alert is new to the desk and holds the error itself;
        # only its error messages are taken, its dates and phones are someone else's
        with_forwards = strip_quotes(prepared, keep_forwards=True)
        if len(with_forwards) > len(own):
            error_parts.append(_Part(with_forwards[:_MAX_BODY]))
    return IssueRecord(
        occurred=_occurred((subject, body)),
        phone=_phone((body, signature)),
        location=_location((subject, body), signature),
        resource=_resource(subject, body),
        errors=_errors(error_parts),
        first_time=_first_time((subject, body)),
    )
