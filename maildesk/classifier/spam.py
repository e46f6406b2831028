"""The spam model: features from raw message bytes, training with cross-validation, scoring with reasons.

Features are named tokens from the words (body and subject) and from the headers and
structure: which headers are present, From/Reply-To domains, Received hops, mailer, the
Message-ID's shape, the MIME layout (HTML-only, parts, charsets, encodings), links and IP
hosts, shouting and punctuation. The extractor parses on its own with the stdlib's lenient
compat32 parser rather than `maildesk.parse`, so that a change to the ticket parser never
shifts the features under a trained model: what it emits is versioned by FEATURE_FORMAT,
which each model's manifest records. Every input is bounded (bytes read, headers, parts,
decoded text) and no input makes it raise.

Tokens are hashed (no vocabulary to store) into a linear SVM whose scores are turned into
probabilities by sigmoid calibration; the spam threshold is chosen on out-of-fold scores to
keep ham false positives at or under HAM_FP_TARGET. The choices (block weighting, no word
pairs, C=1) were made by cross-validation on the SpamAssassin 2002 parts only.
"""

from __future__ import annotations

import binascii
import codecs
import csv
import email
import email.errors
import email.header
import email.policy
import ipaddress
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any, Final

import mmh3
import numpy as np

from maildesk.classifier import artifact
from maildesk.classifier.artifact import ModelError
from maildesk.classifier.handle import FEATURE_FORMAT, KIND, RETRAIN
from maildesk.errors import UserError

__all__ = [
    "FEATURE_FORMAT",
    "ModelError",
    "SpamModel",
    "SpamScore",
    "TrainedSpam",
    "extract",
    "load_examples",
    "save_spam",
    "train_spam",
]

# Bump when any token below changes meaning: models trained on another format are refused.

MAX_RAW_BYTES = 512 * 1024  # the parser never sees more of a message than this
MAX_TEXT_CHARS = 100_000  # decoded body text read for words
MAX_HEADERS = 200
MAX_HEADER_CHARS = 2_000
MAX_PARTS = 50
MAX_DEPTH = 10

_WORD = re.compile(r"[^\W\d_][\w'$-]{0,30}|\$\d[\d,.]*|\d+%")
_HEADER_WORD = re.compile(r"[^\W\d_]{2,20}")
_URL = re.compile(r"""(?:https?|ftp)://([^\s/"'<>?#:]{1,200})""", re.IGNORECASE)
_EMAIL_DOMAIN = re.compile(r"@([A-Za-z0-9.-]{1,200})")
_RECEIVED_IP = re.compile(r"\[(\d{1,3}(?:\.\d{1,3}){3})\]")
_TAG = re.compile(r"<[^>]{0,2000}>")
_COMMENT = re.compile(r"<!--.{0,5000}?-->", re.DOTALL)
_STYLE = re.compile(r"<(script|style)\b.{0,50000}?</\1\s*>", re.DOTALL | re.IGNORECASE)
_ENTITY = re.compile(r"&(#?\w{1,10});")
_SPACE = re.compile(r"\s+")
_SHAPE_DIGITS = re.compile(r"\d+")
_SHAPE_LETTERS = re.compile(r"[A-Za-z]+")
_HTML_MARKERS = ("<img", "<font", "<table", "<form", "<script", "<iframe", "<a ", "<center", "<b>", "<map")
_SUBJECT_PREFIX = re.compile(r"^\s*(re|fwd?|aw|sv)\s*:", re.IGNORECASE)
# Header names whose value words are worth reading; the rest count by name only, since their
# values (dates, ids, hosts) are mostly unique strings that only grow the hash table.
_VALUE_HEADERS = frozenset(
    {
        "from",
        "reply-to",
        "to",
        "cc",
        "x-mailer",
        "user-agent",
        "content-type",
        "precedence",
        "x-priority",
        "importance",
        "x-msmail-priority",
        "organization",
        "list-id",
        "sender",
        "errors-to",
        "return-path",
        "mime-version",
        "content-transfer-encoding",
        "x-originating-ip",
    }
)


def _bucket(value: float, edges: tuple[float, ...]) -> str:
    for edge in edges:
        if value <= edge:
            return f"<={edge:g}"
    return f">{edges[-1]:g}"


def _shape(value: str) -> str:
    # Message-ID and mailer shapes tell bulk software apart without memorising unique ids.
    return _SHAPE_LETTERS.sub("a", _SHAPE_DIGITS.sub("9", value[:80]))


def _decode_header(value: object) -> str:
    text = str(value)[:MAX_HEADER_CHARS]
    if "=?" in text:
        try:
            pieces = email.header.decode_header(text)
            out = []
            for data, charset in pieces:
                if isinstance(data, bytes):
                    out.append(_decode_bytes(data, charset))
                else:
                    out.append(data)
            text = "".join(out)
        except (ValueError, LookupError, binascii.Error, UnicodeError, email.errors.MessageError):
            pass
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        text = _decode_bytes(text.encode("utf-8", "surrogateescape"), None)
    return text


def _decode_bytes(data: bytes, charset: str | None) -> str:
    for name in (charset, "utf-8"):
        if not name:
            continue
        try:
            codecs.lookup(name)
            return data.decode(name, errors="strict")
        except (LookupError, UnicodeError, ValueError):
            continue
    return data.decode("latin-1")


def _domain(address: str) -> str:
    match = _EMAIL_DOMAIN.search(address)
    return match.group(1).lower().strip(".") if match else ""


def _base_domain(host: str) -> str:
    parts = [p for p in host.lower().split(".") if p]
    return ".".join(parts[-2:]) if parts else ""


def _parse(raw: bytes) -> Message | None:
    try:
        return email.message_from_bytes(raw[:MAX_RAW_BYTES], policy=email.policy.compat32)
    except (RecursionError, ValueError, TypeError, LookupError, IndexError, AttributeError):
        return None


def _walk(message: Message) -> Iterator[tuple[Message, int]]:
    # Iterative and bounded: the stdlib's walk() recurses, and hostile mail nests 2,000 deep.
    stack: list[tuple[Message, int]] = [(message, 0)]
    seen = 0
    while stack and seen < MAX_PARTS:
        part, depth = stack.pop()
        seen += 1
        yield part, depth
        payload = part.get_payload() if part.is_multipart() else None
        if isinstance(payload, list) and depth < MAX_DEPTH:
            stack.extend((child, depth + 1) for child in reversed(payload) if isinstance(child, Message))


def _part_text(part: Message) -> str:
    try:
        data = part.get_payload(decode=True)
    except (ValueError, LookupError, binascii.Error, AssertionError, TypeError):
        data = None
    if not isinstance(data, bytes):
        payload = part.get_payload()
        data = payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""
    try:
        charset = part.get_content_charset()
    except (ValueError, LookupError, UnicodeError):
        charset = None
    return _decode_bytes(data[: MAX_TEXT_CHARS * 2], charset)


def _html_to_text(html: str, counts: Counter[str]) -> str:
    lowered = html.lower()
    for marker in _HTML_MARKERS:
        n = lowered.count(marker)
        if n:
            counts[f"html:{marker.strip('<> ')}"] += min(n, 5)
    comments = len(_COMMENT.findall(html))
    if comments:
        counts[f"html:comments{_bucket(comments, (1, 5, 20))}"] += 1
    entities = _ENTITY.findall(html)
    if entities:
        numeric = sum(1 for e in entities if e.startswith("#"))
        counts[f"html:numeric-entities{_bucket(numeric, (0, 5, 50))}"] += 1
    text = _STYLE.sub(" ", html)
    text = _COMMENT.sub("", text)
    # a comment or tag inside a word splits it for the eye but not for a word filter: join it
    text = _TAG.sub(" ", text)
    return _ENTITY.sub(" ", text)


def _header_tokens(message: Message, counts: Counter[str]) -> str:
    """Header features; returns the decoded subject."""
    items = message.items()[:MAX_HEADERS]
    counts[f"hdr:count{_bucket(len(items), (5, 10, 15, 20, 30, 50))}"] += 1
    values: dict[str, str] = {}
    received = 0
    received_ips: list[str] = []
    for name, value in items:
        key = str(name).strip().lower()[:40]
        counts[f"hn:{key}"] = 1
        if key == "received":
            received += 1
            received_ips.extend(_RECEIVED_IP.findall(str(value)[:MAX_HEADER_CHARS]))
            continue
        if key in values:
            continue
        decoded = _decode_header(value)
        values[key] = decoded
        if key in _VALUE_HEADERS:
            for word in _HEADER_WORD.findall(decoded.lower())[:20]:
                counts[f"hv:{key}:{word}"] = 1
    counts[f"rcvd:hops{_bucket(received, (0, 1, 2, 3, 4, 5, 6, 8, 10))}"] += 1
    public = 0
    for ip in received_ips[:20]:
        try:
            if ipaddress.ip_address(ip).is_global:
                public += 1
        except ValueError:
            counts["rcvd:bad-ip"] = 1
    counts[f"rcvd:public-ips{_bucket(public, (0, 1, 2, 3, 5))}"] += 1

    sender = values.get("from", "")
    from_domain = _domain(sender)
    counts[f"from:domain:{from_domain or '-'}"] = 1
    counts[f"from:tld:{from_domain.rsplit('.', 1)[-1] if from_domain else '-'}"] = 1
    local = sender.split("@", 1)[0].rsplit("<", 1)[-1]
    if re.search(r"\d{3,}", local):
        counts["from:digits-in-local"] = 1
    display = sender.split("<", 1)[0].strip(' "') if "<" in sender else ""
    if not display:
        counts["from:no-display-name"] = 1
    elif display.isupper() and len(display) > 3:
        counts["from:display-upper"] = 1
    reply_to = values.get("reply-to")
    if reply_to is not None:
        reply_domain = _domain(reply_to)
        counts[f"reply-to:domain:{reply_domain or '-'}"] = 1
        if _base_domain(reply_domain) != _base_domain(from_domain):
            counts["reply-to:other-domain"] = 1
    to = values.get("to")
    if to is None:
        counts["to:missing"] = 1
    else:
        n_to = to.count("@")
        counts[f"to:addresses{_bucket(n_to, (0, 1, 2, 5, 20))}"] = 1
        if "undisclosed" in to.lower():
            counts["to:undisclosed"] = 1
    mid = values.get("message-id")
    if mid is None:
        counts["mid:missing"] = 1
    else:
        left, _, right = mid.strip().strip("<>").partition("@")
        counts[f"mid:shape:{_shape(left)[:30]}"] = 1
        mid_domain = right.strip("<> ").lower()
        if not mid_domain:
            counts["mid:no-domain"] = 1
        elif from_domain and _base_domain(mid_domain) == _base_domain(from_domain):
            counts["mid:from-domain"] = 1
        else:
            counts[f"mid:domain:{_base_domain(mid_domain)}"] = 1
    mailer = values.get("x-mailer") or values.get("user-agent")
    if mailer:
        counts[f"mailer:{_shape(mailer.lower())[:40]}"] = 1
    else:
        counts["mailer:none"] = 1
    date = values.get("date")
    if date is None:
        counts["date:missing"] = 1
    else:
        zone = date.strip().rsplit(" ", 1)[-1]
        counts[f"date:zone:{zone[:12]}"] = 1
        counts[f"date:shape:{_shape(date)[:30]}"] = 1
    subject = values.get("subject")
    if subject is None:
        counts["subj:missing"] = 1
        return ""
    return subject


def _subject_tokens(subject: str, counts: Counter[str]) -> None:
    if _SUBJECT_PREFIX.match(subject):
        counts["subj:reply-prefix"] = 1
    letters = [c for c in subject if c.isalpha()]
    if letters:
        upper = sum(1 for c in letters if c.isupper()) / len(letters)
        counts[f"subj:upper{_bucket(upper, (0.1, 0.3, 0.6, 0.9))}"] = 1
    for mark in "!$%?":
        if mark in subject:
            counts[f"subj:has{mark}"] = 1
    if re.search(r"\s{5,}\S+$", subject):
        counts["subj:trailing-id"] = 1  # bulk tools pad a tracking code to the right
    for word in _WORD.findall(subject.lower())[:30]:
        counts[f"s:{word}"] += 1


def _body_tokens(message: Message, counts: Counter[str]) -> None:
    kinds: list[str] = []
    plain: list[str] = []
    html: list[str] = []
    budget = MAX_TEXT_CHARS
    charsets: set[str] = set()
    for part, depth in _walk(message):
        ctype = part.get_content_type().lower()[:60]
        kinds.append(ctype)
        counts[f"ct:{ctype}"] = 1
        if depth >= 3:
            counts["ct:deep"] = 1
        cte = str(part.get("content-transfer-encoding", "")).strip().lower()[:20]
        if cte:
            counts[f"cte:{ctype.split('/', 1)[0]}:{cte}"] = 1
        try:
            charset = part.get_content_charset()
        except (ValueError, LookupError, UnicodeError):
            charset = "bad"
        if charset:
            charsets.add(charset.lower()[:30])
        disposition = str(part.get("content-disposition", "")).lower()
        if "attachment" in disposition or (ctype.split("/")[0] in ("application", "image", "audio", "video")):
            counts[f"attach:{ctype}"] = 1
            continue
        if ctype.startswith("text/") and budget > 0:
            text = _part_text(part)[:budget]
            budget -= len(text)
            (html if ctype == "text/html" else plain).append(text)
    counts[f"struct:{'/'.join(k.split('/', 1)[1][:12] for k in kinds[:4])}"] = 1
    counts[f"struct:parts{_bucket(len(kinds), (1, 2, 3, 5, 10))}"] = 1
    for charset in charsets:
        counts[f"charset:{charset}"] = 1
    raw_html = "\n".join(html)
    if html and not plain:
        counts["struct:html-only"] = 1
    text = "\n".join(plain)
    if raw_html and not text.strip():
        text = _html_to_text(raw_html, counts)
    elif raw_html:
        _html_to_text(raw_html, counts)
    if not plain and not html:
        counts["body:none"] = 1
    _text_tokens(text, raw_html, counts)


def _text_tokens(text: str, raw_html: str, counts: Counter[str]) -> None:
    text = text[:MAX_TEXT_CHARS]
    letters = sum(1 for c in text if c.isalpha())
    if letters:
        upper = sum(1 for c in text if c.isupper()) / letters
        counts[f"body:upper{_bucket(upper, (0.05, 0.1, 0.2, 0.4, 0.7))}"] = 1
    counts[f"body:length{_bucket(len(text), (0, 200, 1000, 3000, 10000, 50000))}"] = 1
    exclaim = text.count("!")
    if exclaim:
        counts[f"body:exclaim{_bucket(exclaim, (1, 3, 10, 30))}"] = 1
    dollars = text.count("$")
    if dollars:
        counts[f"body:dollar{_bucket(dollars, (1, 3, 10))}"] = 1
    links = text + "\n" + raw_html[:MAX_TEXT_CHARS]
    hosts = _URL.findall(links)
    counts[f"url:count{_bucket(len(hosts), (0, 1, 3, 10, 30))}"] = 1
    for host in list(dict.fromkeys(h.lower() for h in hosts))[:20]:
        if host.replace(".", "").isdigit():
            counts["url:ip-address"] = 1
        else:
            counts[f"url:host:{_base_domain(host)}"] = 1
    if "mailto:" in links.lower():
        counts["url:mailto"] = 1
    # Word pairs were tried and lost in cross-validation on 2002 (more rare features, same signal).
    for word in _WORD.findall(text.lower()):
        counts[f"w:{word}"] += 1


# what the stdlib email package raises on hostile input, found by the malformed corpus and fuzzing
_STDLIB_ERRORS: Final = (
    RecursionError,
    ValueError,
    LookupError,
    TypeError,
    AttributeError,
    UnicodeError,
    email.errors.MessageError,
)


def extract(raw: bytes) -> Counter[str]:
    """Named token counts for one message; any bytes at all give a (possibly small) result."""
    counts: Counter[str] = Counter()
    if not isinstance(raw, (bytes, bytearray, memoryview)):
        raise TypeError("extract() takes the raw message bytes")
    raw = bytes(raw[:MAX_RAW_BYTES])
    if raw.startswith(b"From ") and b"\n" in raw[:1000]:
        raw = raw.split(b"\n", 1)[1]  # mbox separator line: not part of the message
    message = _parse(raw)
    if message is None:
        counts["parse:failed"] = 1
        _text_tokens(raw[:MAX_TEXT_CHARS].decode("latin-1"), "", counts)
        return counts
    try:
        subject = _header_tokens(message, counts)
        _subject_tokens(subject[:1000], counts)
        _body_tokens(message, counts)
    except _STDLIB_ERRORS as exc:
        # the stdlib trips on some hostile structures deep inside; keep what was read so far
        counts[f"parse:error:{type(exc).__name__}"] = 1
    if message.defects:
        counts["parse:defects"] = 1
    return counts


# --- weighting -------------------------------------------------------------------------------

# Words (body and subject) and everything else (headers, structure, links) are two blocks, each
# scaled to unit length: otherwise a long message's hundreds of words drown its few header and
# structure tokens, which carry most of the signal that survives spam's changing vocabulary.
_WORD_BLOCK: Final = frozenset({"w", "s"})


def weigh(counts: Counter[str]) -> dict[str, float]:
    """Token counts as the model's input: 1 + log(count), each block L2-normalised."""
    words: dict[str, float] = {}
    meta: dict[str, float] = {}
    for token, count in counts.items():
        if count <= 0:
            continue
        block = words if token.split(":", 1)[0] in _WORD_BLOCK else meta
        block[token] = 1.0 + math.log(count)
    out: dict[str, float] = {}
    for block in (words, meta):
        norm = math.sqrt(sum(v * v for v in block.values())) or 1.0
        out.update((token, value / norm) for token, value in block.items())
    return out


# --- reasons ---------------------------------------------------------------------------------

_REASON_GROUPS: Final = (
    ("words", ("w",)),
    ("subject", ("s", "subj")),
    ("links", ("url",)),
    ("structure", ("ct", "cte", "struct", "charset", "attach", "html", "body", "parse")),
    ("headers", ("hn", "hv", "hdr", "from", "reply-to", "to", "mid", "mailer", "date", "rcvd")),
)
_GROUP_OF: Final = {prefix: group for group, prefixes in _REASON_GROUPS for prefix in prefixes}
MAX_REASON_FEATURES: Final = 6


_PHRASES: Final = {
    "from:no-display-name": "From has no display name",
    "from:display-upper": "From name in capitals",
    "from:digits-in-local": "digits in the From address",
    "reply-to:other-domain": "Reply-To in another domain",
    "to:missing": "no To",
    "to:undisclosed": "undisclosed recipients",
    "mid:missing": "no Message-ID",
    "mid:no-domain": "Message-ID without a domain",
    "mailer:none": "no X-Mailer",
    "date:missing": "no Date",
    "struct:html-only": "HTML only",
    "url:ip-address": "link to a numeric IP address",
    "url:mailto": "mailto link",
    "subj:reply-prefix": "Re: prefix",
    "subj:trailing-id": "tracking code padded to the right",
    "body:none": "no text",
    "parse:defects": "MIME defects",
    "parse:failed": "unparseable",
}
_LABELS: Final = {
    "from:domain": "From domain",
    "from:tld": "From top-level domain",
    "reply-to:domain": "Reply-To domain",
    "to:addresses": "To addresses",
    "mid:shape": "Message-ID shaped",
    "mid:domain": "Message-ID domain",
    "mailer": "mailer",
    "date:zone": "Date zone",
    "date:shape": "Date shaped",
    "rcvd:hops": "Received hops",
    "rcvd:public-ips": "public relay IPs",
    "hdr:count": "headers",
    "url:host": "link to",
    "url:count": "links",
    "ct": "part",
    "charset": "charset",
    "attach": "attachment",
    "subj:upper": "capitals",
    "body:upper": "capitals",
    "body:exclaim": "'!'",
    "body:dollar": "'$'",
    "body:length": "length",
    "struct:parts": "parts",
    "struct": "layout",
    "cte": "encoding",
    "html:comments": "HTML comments",
    "html:numeric-entities": "numeric HTML entities",
    "html": "HTML tag",
}


def _describe(token: str) -> str:
    if token in _PHRASES:
        return _PHRASES[token]
    prefix, _, rest = token.partition(":")
    if prefix in ("w", "s"):
        return repr(rest)
    if prefix == "hn":
        return f"{rest} header"
    if prefix == "hv":
        name, _, word = rest.partition(":")
        return f"{name} {word!r}"
    for key in (prefix + ":" + rest.split(":", 1)[0].split("<", 1)[0].split(">", 1)[0], prefix):
        if key in _LABELS:
            value = token[len(key) :].lstrip(":")
            return f"{_LABELS[key]} {value}".strip()
    return token.replace(":", " ")


def reasons_for(contributions: Sequence[tuple[str, float]]) -> tuple[str, ...]:
    """Human-readable reasons from (token, push towards spam) pairs, strongest first, grouped."""
    top = [token for token, push in sorted(contributions, key=lambda tp: -tp[1]) if push > 0]
    grouped: dict[str, list[str]] = {}
    for token in top[:MAX_REASON_FEATURES]:
        group = _GROUP_OF.get(token.split(":", 1)[0], "other")
        grouped.setdefault(group, []).append(_describe(token))
    return tuple(f"{group}: {', '.join(items)}" for group, items in grouped.items())


# --- the model -------------------------------------------------------------------------------

HAM_FP_TARGET: Final = 0.003  # at most this share of ham over the threshold, out of fold
N_FEATURES: Final = 2**18
FOLDS: Final = 5
SVM_C: Final = 1.0


@dataclass(frozen=True)
class SpamScore:
    """How likely a message is spam (0..1, calibrated on the training data) and what pushed it there."""

    probability: float
    reasons: tuple[str, ...]


class LinearScorer:
    """The fitted model as plain numbers: hashed-feature weights, intercept and Platt sigmoid.

    Scores exactly as the pipeline's predict_proba (a test holds them equal) with numpy alone,
    so a process that only scores never imports scikit-learn, and a single message costs no
    pipeline overhead.
    """

    def __init__(self, coef: np.ndarray, intercept: float, a: float, b: float) -> None:
        self.coef = np.asarray(coef, dtype=np.float64).ravel()
        self.n_features = int(self.coef.shape[0])
        self.intercept, self.a, self.b = float(intercept), float(a), float(b)

    @classmethod
    def from_pipeline(cls, pipeline: Any) -> LinearScorer:
        calibrated = pipeline.named_steps["svm"].calibrated_classifiers_[0]
        svm = calibrated.estimator
        if int(pipeline.named_steps["hash"].n_features) != len(svm.coef_[0]):
            raise ValueError("hasher and classifier disagree on the number of features")
        # p = 1 / (1 + exp(a * decision + b)): the sigmoid of Platt scaling
        return cls(svm.coef_[0], np.asarray(svm.intercept_).ravel()[0], calibrated.calibrators[0].a_,
                   calibrated.calibrators[0].b_)  # fmt: skip

    def arrays(self) -> dict[str, np.ndarray]:
        return {"coef": self.coef, "params": np.array([self.intercept, self.a, self.b])}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> LinearScorer:
        intercept, a, b = (float(v) for v in arrays["params"])
        return cls(arrays["coef"], intercept, a, b)

    def contributions(self, weighted: dict[str, float]) -> list[tuple[str, float]]:
        # the SVM's score is the sum of value * weight over hashed tokens: each term is one
        # token's push towards spam (a hash collision shares a weight; rare at 2**18 slots)
        return [
            (token, value * self.coef[_hash_index(token, self.n_features)])
            for token, value in weighted.items()
        ]

    def score(self, raw: bytes) -> SpamScore:
        contributions = self.contributions(weigh(extract(raw)))
        decision = self.intercept + math.fsum(value for _, value in contributions)
        exponent = self.a * decision + self.b
        probability = 1.0 / (1.0 + math.exp(exponent)) if exponent < 700 else 0.0
        return SpamScore(probability=probability, reasons=reasons_for(contributions))


class SpamModel:
    """A trained spam model and its decision threshold; scores raw message bytes."""

    def __init__(self, pipeline: Any, threshold: float, manifest: dict[str, Any] | None = None) -> None:
        self.pipeline = pipeline
        self.threshold = float(threshold)
        self.manifest = manifest or {}
        self.linear = LinearScorer.from_pipeline(pipeline)
        self.folder: Path | None = None  # where it was loaded from

    @classmethod
    def load(cls, folder: Path) -> SpamModel:
        """The model saved in folder (`spam.skops` + `spam.json`); ModelError if it cannot be trusted."""
        pipeline, manifest = artifact.load(
            folder, name=KIND, kind=KIND, feature_format=FEATURE_FORMAT, retrain=RETRAIN
        )
        threshold = manifest.get("threshold")
        if not isinstance(threshold, (int, float)) or not 0.0 <= threshold <= 1.0:
            raise ModelError(f"the spam model in {folder} has no valid threshold: retrain with `{RETRAIN}`")
        try:
            model = cls(pipeline, float(threshold), manifest)
            model.folder = folder
            return model
        except (AttributeError, KeyError, IndexError, TypeError) as exc:
            # a file of the right kind and version but another shape (hand-made or from a fork)
            raise ModelError(f"the spam model in {folder} is not a maildesk spam pipeline ({exc})") from None

    def score(self, raw: bytes) -> SpamScore:
        """Spam probability and reasons for one raw message (any bytes; never raises on content)."""
        return self.linear.score(raw)

    def score_many(self, raws: Iterable[bytes]) -> list[SpamScore]:
        """score() for many messages, through the pipeline's own predict_proba (the reference)."""
        weighted = [weigh(extract(raw)) for raw in raws]
        if not weighted:
            return []
        probabilities = self.pipeline.predict_proba(weighted)[:, 1]
        return [
            SpamScore(probability=float(p), reasons=reasons_for(self.linear.contributions(w)))
            for p, w in zip(probabilities, weighted, strict=True)
        ]


def _hash_index(token: str, n_features: int) -> int:
    # the index FeatureHasher gives a string feature (sklearn/feature_extraction/_hashing_fast.pyx)
    # mmh3's signed 32-bit MurmurHash3 of the UTF-8 bytes is sklearn's murmurhash3_32(positive=False);
    # using it keeps scikit-learn (over a second to import) out of processes that only score
    h = mmh3.hash(token, 0, signed=True)
    if h == -(2**31):
        return (2**31 - 1 - (n_features - 1)) % n_features
    return abs(h) % n_features


def _pipeline(random_state: int, folds: int) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction import FeatureHasher
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline
    from sklearn.svm import LinearSVC

    return Pipeline(
        [
            ("hash", FeatureHasher(n_features=N_FEATURES, input_type="dict", alternate_sign=False)),
            (
                "svm",
                # ensemble=False: one SVM on all the data, its sigmoid fitted on inner-fold scores;
                # shuffled folds, as unshuffled ones split the corpus by date and flatten the sigmoid
                CalibratedClassifierCV(
                    LinearSVC(C=SVM_C, random_state=random_state),
                    method="sigmoid",
                    cv=StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state),
                    ensemble=False,
                ),
            ),
        ]
    )


@dataclass(frozen=True)
class TrainedSpam:
    """A model fitted on all the examples, with the cross-validated figures that describe it."""

    model: SpamModel
    metrics: dict[str, Any]
    created: datetime
    source: str = ""
    random_state: int = 0
    notes: tuple[str, ...] = field(default=())


def _threshold(ham_scores: np.ndarray, all_scores: np.ndarray, target: float) -> float:
    # the lowest threshold that lets at most `target` of the ham through, placed halfway to the
    # next score above so that it does not sit on one training message's exact score
    ranked = np.sort(ham_scores)[::-1]
    allowed = math.floor(target * len(ranked))
    if allowed >= len(ranked):
        return 0.5
    ceiling = float(ranked[allowed])
    above = all_scores[all_scores > ceiling]
    return (ceiling + float(above.min())) / 2 if above.size else min(1.0, ceiling + 1e-6)


def _figures(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    predicted = scores >= threshold
    tp = int(np.sum(predicted & labels))
    fp = int(np.sum(predicted & ~labels))
    fn = int(np.sum(~predicted & labels))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    ham = int(np.sum(~labels))
    return {
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "f1": round(f1, 4),
        "ham_fp_rate": round(fp / ham, 5) if ham else 0.0,
        "false_positives": fp,
        "false_negatives": fn,
    }


def train_spam(
    examples: Iterable[tuple[bytes, bool]],
    random_state: int = 0,
    *,
    source: str = "",
    now: datetime | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> TrainedSpam:
    """Fit the spam model on (raw bytes, is_spam) pairs and measure it by stratified k-fold CV.

    The threshold is chosen on the out-of-fold probabilities (ham false positives at or under
    HAM_FP_TARGET), and the figures reported are those of the out-of-fold scores at that
    threshold, so they are cross-validated but not nested: slightly optimistic.
    `progress(stage, done, total)` is called as features are read and folds are fitted.
    """
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold

    pairs = list(examples)
    labels = np.array([bool(label) for _, label in pairs], dtype=bool)
    n_spam, n_ham = int(labels.sum()), int((~labels).sum())
    if min(n_spam, n_ham) < 2 * FOLDS:
        raise UserError(
            f"training needs at least {2 * FOLDS} spam and {2 * FOLDS} ham examples, got {n_spam} and {n_ham}"
        )
    weighted: list[dict[str, float]] = []
    for index, (raw, _) in enumerate(pairs):
        weighted.append(weigh(extract(raw)))
        if progress is not None and (index + 1) % 100 == 0:
            progress("features", index + 1, len(pairs))
    oof = np.zeros(len(pairs))
    splitter = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=random_state)
    for fold, (fit_rows, test_rows) in enumerate(splitter.split(np.zeros(len(pairs)), labels), start=1):
        pipeline = _pipeline(random_state, FOLDS).fit([weighted[i] for i in fit_rows], labels[fit_rows])
        oof[test_rows] = pipeline.predict_proba([weighted[i] for i in test_rows])[:, 1]
        if progress is not None:
            progress("cross-validation", fold, FOLDS)
    threshold = _threshold(oof[~labels], oof, HAM_FP_TARGET)
    metrics: dict[str, Any] = {
        "n": len(pairs),
        "n_spam": n_spam,
        "n_ham": n_ham,
        "folds": FOLDS,
        "threshold": round(threshold, 6),
        "ham_fp_target": HAM_FP_TARGET,
        **_figures(oof, labels, threshold),
        "roc_auc": round(float(roc_auc_score(labels, oof)), 5),
        "at_0_5": _figures(oof, labels, 0.5),
    }
    pipeline = _pipeline(random_state, FOLDS).fit(weighted, labels)
    if progress is not None:
        progress("final model", 1, 1)
    return TrainedSpam(
        model=SpamModel(pipeline, threshold),
        metrics=metrics,
        created=(now or datetime.now(UTC)).astimezone(UTC),
        source=source,
        random_state=random_state,
    )


def save_spam(trained: TrainedSpam, folder: Path) -> dict[str, Any]:
    """Write `spam.skops`, `spam.json` (manifest with metrics and threshold) and `MODEL_CARD.md`."""
    manifest = artifact.save(
        trained.model.pipeline,
        folder,
        name=KIND,
        kind=KIND,
        feature_format=FEATURE_FORMAT,
        metrics=trained.metrics,
        created=trained.created,
        arrays=trained.model.linear.arrays(),
        extra={
            "threshold": trained.model.threshold,
            "training": {
                "source": trained.source,
                "random_state": trained.random_state,
                "model": f"FeatureHasher(2**{N_FEATURES.bit_length() - 1}) + LinearSVC(C={SVM_C}) "
                "with sigmoid calibration",
            },
        },
    )
    (folder / "MODEL_CARD.md").write_text(_model_card(trained, manifest))
    trained.model.manifest = manifest
    return manifest


def _model_card(trained: TrainedSpam, manifest: dict[str, Any]) -> str:
    m = trained.metrics
    half = m["at_0_5"]
    size = (Path(manifest["artifact"]).name, manifest["sha256"])
    return f"""# maildesk spam model

- **Kind**: spam (message is unsolicited bulk mail or not), file `{size[0]}`, sha256 `{size[1]}`
- **Created**: {manifest["created"]}, feature format {manifest["feature_format"]}, \
scikit-learn {manifest["versions"]["scikit-learn"]}, skops {manifest["versions"]["skops"]}, \
Python {manifest["versions"]["python"]}
- **Model**: {manifest["training"]["model"]}; random_state {trained.random_state}

## Data
{trained.source or "Labelled messages given to `train_spam`."}
{m["n"]} messages: {m["n_spam"]} spam, {m["n_ham"]} ham. Features come from the raw bytes: body and
subject words, header names and selected header values, From/Reply-To domains, Received hops,
mailer, Message-ID shape, MIME structure, charsets, links and IP-address hosts, capitals and
punctuation (see `maildesk/classifier/spam.py`).

## Split and figures
{m["folds"]}-fold stratified cross-validation (shuffled, random_state {trained.random_state}). The
threshold {m["threshold"]:.4f} was chosen on the out-of-fold probabilities to keep ham false positives at
or under {m["ham_fp_target"]:.1%}; the figures below are the same out-of-fold scores at that threshold
(cross-validated, not nested, so slightly optimistic).

| | precision | recall | F1 | ham false-positive rate |
|---|---|---|---|---|
| at the threshold {m["threshold"]:.4f} | {m["precision"]:.4f} | {m["recall"]:.4f} | {m["f1"]:.4f} | \
{m["ham_fp_rate"]:.2%} ({m["false_positives"]} of {m["n_ham"]}) |
| at 0.5 | {half["precision"]:.4f} | {half["recall"]:.4f} | {half["f1"]:.4f} | {half["ham_fp_rate"]:.2%} |

Out-of-fold ROC AUC: {m["roc_auc"]:.4f}. The held-out figure of record (trained on the SpamAssassin
2002 parts, tested on the 2003 parts) is printed by `bench/spam.py`.

## Intended use
Screening inbound help-desk mail: a message at or over the threshold is quarantined for a person
to review, never dropped; the reasons name the features that pushed it towards spam.

## Limitations
- Trained on English mail from 2002; spam changes quickly. Retrain on your own mail
  (`{RETRAIN} --data ...`) and check the false-positive rate before relying on it.
- The probabilities are calibrated to the training mix ({m["n_spam"]} spam to {m["n_ham"]} ham);
  on a stream with much more or less spam they are over- or under-confident.
- The SpamAssassin ham is mostly mailing-list traffic; direct customer mail to a help desk
  looks different, and some of the header features (list headers, relay hops) reflect how that
  corpus was collected.
- Only the first {MAX_RAW_BYTES // 1024} KB of a message and {MAX_TEXT_CHARS:,} characters of its text
  are read.
"""


# --- labelled data ---------------------------------------------------------------------------

_SPAM_LABELS: Final = frozenset({"spam", "1", "true", "yes"})
_HAM_LABELS: Final = frozenset({"ham", "0", "false", "no", "not spam", "not-spam"})
# listing files that the SpamAssassin corpus keeps beside the messages
_NOT_MAIL: Final = frozenset({"cmds", "truth.json", "labels.csv"})


def _label(value: object, where: str) -> bool:
    text = str(value).strip().lower()
    if text in _SPAM_LABELS:
        return True
    if text in _HAM_LABELS:
        return False
    raise UserError(f"{where}: label {value!r} is neither spam nor ham")


def _member(folder: Path, name: str) -> Path:
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise UserError(f"{folder}: {name!r} is outside the data folder")
    if not path.is_file():
        raise UserError(f"{folder}: labelled file {name!r} does not exist")
    return path


def load_examples(path: Path) -> list[tuple[bytes, bool]]:
    """Labelled messages as (raw bytes, is_spam) from any of the layouts `maildesk train` accepts.

    A folder with `truth.json` ({"file.eml": "spam" | "ham"}) or `labels.csv` (file,label);
    a corpus folder whose subfolders' names contain "spam" or "ham" (spam, easy_ham, hard_ham);
    or a CSV file with `text` and `label` columns.
    """
    if path.is_file():
        return _from_text_csv(path)
    if not path.is_dir():
        raise UserError(f"training data {path} does not exist")
    truth = path / "truth.json"
    if truth.is_file():
        try:
            mapping = json.loads(truth.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise UserError(f"{truth} is not valid JSON ({exc})") from None
        if not isinstance(mapping, dict):
            raise UserError(f"{truth} must map file names to 'spam' or 'ham'")
        return [
            (_member(path, n).read_bytes(), _label(v, f"{truth} {n}")) for n, v in sorted(mapping.items())
        ]
    labels = path / "labels.csv"
    if labels.is_file():
        examples = []
        with labels.open(newline="", encoding="utf-8") as handle:
            for row_number, row in enumerate(csv.reader(handle), start=1):
                if not row or (row_number == 1 and row[0].strip().lower() in ("file", "filename", "name")):
                    continue
                if len(row) < 2:
                    raise UserError(f"{labels} line {row_number}: expected file,label")
                raw = _member(path, row[0].strip()).read_bytes()
                examples.append((raw, _label(row[1], f"{labels} {row[0]}")))
        return examples
    return _from_folders(path)


def _from_folders(path: Path) -> list[tuple[bytes, bool]]:
    examples: list[tuple[bytes, bool]] = []
    for sub in sorted(p for p in path.iterdir() if p.is_dir()):
        name = sub.name.lower()
        if "spam" in name:
            is_spam = True
        elif "ham" in name:
            is_spam = False
        else:
            continue
        for file in sorted(f for f in sub.rglob("*") if f.is_file()):
            if file.name.startswith(".") or file.name in _NOT_MAIL:
                continue
            examples.append((file.read_bytes(), is_spam))
    if not examples:
        raise UserError(
            f"{path}: no truth.json, no labels.csv and no subfolders named like spam/ham with files in them"
        )
    return examples


def _from_text_csv(path: Path) -> list[tuple[bytes, bool]]:
    # a whole message in one field outgrows csv's default 128 KB field limit
    old_limit = csv.field_size_limit(64 * 1024 * 1024)
    try:
        with path.open(newline="", encoding="utf-8", errors="surrogateescape") as handle:
            reader = csv.DictReader(handle)
            columns = {name.strip().lower(): name for name in reader.fieldnames or ()}
            if "text" not in columns or "label" not in columns:
                raise UserError(f"{path}: a CSV of training data needs 'text' and 'label' columns")
            return [
                (
                    (row[columns["text"]] or "").encode("utf-8", "surrogateescape"),
                    _label(row[columns["label"]], f"{path} line {reader.line_num}"),
                )
                for row in reader
            ]
    except (csv.Error, UnicodeError) as exc:
        raise UserError(f"{path}: cannot read it as CSV ({exc})") from None
    finally:
        csv.field_size_limit(old_limit)
