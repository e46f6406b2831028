"""The correspondence rules, checked on every template as it renders: `maildesk templates check`.

Every message to a customer has, in the desk's standard procedure: a polite introduction
that conveys its purpose, the information the customer needs (at least the ticket ref), for
a resolution how the problem was resolved, a closing that offers further help, and thanks.
The vendor the desk may hand tickets to is never named to a customer. The rules are
heuristics on the text each template renders from realistic samples (SAMPLES, VARIANTS),
plain text and HTML alike; a hostile variant puts markup in every field a customer (or a
quoted customer) controls, and its HTML must show that markup as text. Team notices are
only rendered (StrictUndefined catches a missing variable) and must name the ticket.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from bs4 import BeautifulSoup, Comment, Declaration, Doctype, ProcessingInstruction
from jinja2 import Environment, TemplateSyntaxError, UndefinedError

if TYPE_CHECKING:
    from maildesk.config import Config


@dataclass(frozen=True)
class Finding:
    """One broken rule. `rule` is one of: render, sample (no sample data), introduction,
    information, resolution, closing, thanks, vendor, escaping."""

    template: str
    rule: str
    message: str


@dataclass(frozen=True)
class SampleRecipient:
    """A failed recipient as the bounce notice receives it (screen.bounce.FailedRecipient)."""

    address: str
    status: str
    diagnostic: str


CUSTOMER_FACING: Final = (
    "acknowledgement",
    "agent_reply",
    "request_info",
    "status_update",
    "escalation",
    "resolution",
    "closing",
    "follow_up",
    "answer_billing_update",
    "answer_training",
    "answer_cancellation",
    "scheduling_offer",
)
RESOLUTION: Final = ("resolution", "closing")
TEAM_FACING: Final = (
    "bounce_notice",
    "urgent_alert",
    "ticket_notice",
    "agent_confirmation",
    "unverified_notice",
    "escalation_notice",
    "sla_reminder",
    "vendor_dispatch",
    "vendor_note",
    "lead_digest",
    "account_manager_notice",
)

EXAMPLE_VENDOR: Final = "Vendor Help Desk"  # the name default_config.toml suggests
HOSTILE_LABEL: Final = "the hostile sample"
HOSTILE: Final = "<script>alert(1)</script> & <b>Sons</b>"

_COMMON: Final[dict[str, Any]] = {
    "desk": "Example Support",
    "ref": "MD-1042",
    "subject": "Printer on floor 2 prints blank pages",
    "name": "Carol Customer",
}
_MISSING: Final = [
    "the date and time the problem occurred",
    "the building and room",
    "any error message, word for word, or a screenshot",
]

SAMPLES: Final[dict[str, dict[str, Any]]] = {
    "acknowledgement": {**_COMMON, "promise": "within 2 business hours"},
    "agent_reply": {
        **_COMMON,
        "agent": "Alice Example",
        "notes": ["We now handle your request at high priority."],
        "text": (
            "Hello Carol,\n\n"
            "I have looked into the blank pages from the printer on floor 2: its toner cartridge\n"
            "was empty, and the printer did not report it.\n"
            "I have put in a new cartridge and printed a test page, which came out fine.\n\n"
            "Could you print your document again and tell me whether it works?"
        ),
    },
    "request_info": {
        **_COMMON,
        "missing": _MISSING,
        "note": "If it happens again, a photo of the printer's display would help us too.",
    },
    "status_update": {
        **_COMMON,
        "status": "waiting for a part",
        "update": "We have ordered a new fuser unit for the printer.\nIt should arrive on Thursday.",
        "priority": "normal",
    },
    "escalation": {
        **_COMMON,
        "level": "our senior engineers",
        "reason": "The fault is in the printer's hardware and needs an engineer on site.",
    },
    "resolution": {
        **_COMMON,
        "resolution": "We replaced the empty toner cartridge and printed a test page.",
        "method": "fix",
    },
    "closing": {
        **_COMMON,
        "reason": "confirmed",
        "resolution": "We replaced the empty toner cartridge.",
    },
    "follow_up": {
        **_COMMON,
        "attempt": 1,
        "waiting_for": "confirmation",
        "missing": [],
        "deadline": "by Friday 4 December",
    },
    "bounce_notice": {
        "team": "Service Desk",
        "ref": "MD-1042",
        "subject": "Printer on floor 2 prints blank pages",
        "recipients": [
            SampleRecipient(
                "carol@customer.example", "5.1.1", "550 5.1.1 <carol@customer.example>: no such user"
            ),
            SampleRecipient("old@customer.example", "", ""),
        ],
    },
    "urgent_alert": {
        "team": "Service Desk",
        "ref": "MD-1042",
        "subject": "Server down: nobody can log in",
        "requester": "carol@customer.example",
        "issue_type": "Incident",
        "reasons": "Incident; priority organisation Acme Solar",
        "assignee": "Alice Example",
    },
    "ticket_notice": {
        "agent": "Alice Example",
        "event": "new",
        "ref": "MD-1042",
        "subject": "Printer on floor 2 prints blank pages",
        "requester": "carol@customer.example",
        "requester_name": "Carol Customer",
        "text": "Hello,\n\nthe printer on floor 2 prints only blank pages since this morning.\n\nCarol",
        "issue_type": "Problem",
        "priority": "normal",
        "team": "Service Desk",
        "assignee": "Alice Example",
        "attachments": ["blank-page.jpg", "printer-status.pdf"],
        "comment_address": "comment+md-1042@helpdesk.example",
    },
    "agent_confirmation": {
        "agent": "Alice Example",
        "ref": "MD-1042",
        "subject": "Printer on floor 2 prints blank pages",
        "relayed_to": ["carol@customer.example"],
        "internal": False,
        "results": [
            {"command": "#status resolved", "ok": True, "detail": "status open -> resolved"},
            {"command": "#assign zed", "ok": False, "detail": "no agent is called zed"},
        ],
    },
    "unverified_notice": {
        "agent": "Alice Example",
        "ref": "MD-1042",
        "subject": "Re: [MD-1042] Printer on floor 2 prints blank pages",
        "sender": "Alice Example <alice@helpdesk.example>",
        "reason": "it was sent to the support address, not to the signed reply address",
    },
    "escalation_notice": {
        "agent": "Dan Senior",
        "ref": "MD-1042",
        "subject": "Printer on floor 2 prints blank pages",
        "level": "the senior engineers",
        "reason": "hardware fault, needs an engineer on site",
        "by": "Alice Example",
        "priority": "high",
        "requester": "carol@customer.example",
    },
    "sla_reminder": {
        "agent": "Alice Example",
        "ref": "MD-1042",
        "subject": "Printer on floor 2 prints blank pages",
        "event": "unclaimed",
        "reason": "nobody has taken this ticket yet; reply with #take to claim it",
        "due": "2026-11-02 11:00 UTC",
        "priority": "high",
        "team": "Service Desk",
        "assignee": "",
        "requester": "carol@customer.example",
        "requester_name": "Carol Customer",
    },
    "vendor_dispatch": {
        "vendor": "Vendor Help Desk",
        "desk": "Example Support",
        "ref": "MD-1042",
        "subject": "Printer on floor 2 prints blank pages",
        "priority": "high",
        "issue_type": "Problem",
        "reason": "it arrived after hours",
        "requester": "carol@customer.example",
        "requester_name": "Carol Customer",
        "organization": "Acme Solar",
        "created": "2026-11-02 19:12:00",
        "conversation": [
            {
                "who": "Carol Customer",
                "kind": "customer",
                "date": "2026-11-02 19:12:00",
                "text": "The printer on floor 2 prints only blank pages.",
            },
        ],
    },
    "lead_digest": {
        "desk": "Example Support",
        "slot": "2026-11-02 11:30",
        "unanswered": [
            {
                "ref": "MD-1042",
                "subject": "Printer on floor 2 prints blank pages",
                "due_at": "2026-11-02T11:00:00Z",
                "breached_at": "2026-11-02T11:00:00Z",
                "team": "Service Desk",
                "assignee": None,
            },
        ],
        "unattended": [],
        "breached": [],
        "oldest": [
            {
                "team": "Service Desk",
                "ref": "MD-1040",
                "subject": "VPN drops",
                "created": "2026-10-30 09:12",
                "status": "open",
            }
        ],
        "quarantined": [{"id": 7, "received": "2026-11-02 08:01", "reason": "malformed MIME"}],
        "quarantined_total": 1,
        "figures": "",
    },
    "answer_billing_update": {
        **_COMMON,
        "agent": "Alice Example",
        "url": "https://portal.example/billing",
        "note": "",
    },
    "answer_training": {
        **_COMMON,
        "agent": "Alice Example",
        "url": "https://calendar.example/training",
        "note": "Our next group session is on Thursday.",
    },
    "answer_cancellation": {**_COMMON, "agent": "Alice Example", "url": "", "note": ""},
    "scheduling_offer": {**_COMMON, "url": "https://calendar.example/support"},
    "account_manager_notice": {
        "ref": "MD-1042",
        "subject": "Cancel our subscription",
        "organization": "Acme Solar",
        "requester": "carol@acme-solar.example",
        "what": "canned answer cancellation",
    },
    "vendor_note": {
        "vendor": "Vendor Help Desk",
        "desk": "Example Support",
        "ref": "MD-1042",
        "subject": "Printer on floor 2 prints blank pages",
        "text": "The customer says the toner was replaced yesterday.",
        "by": "Alice Example",
    },
}

# other values each template must handle too, as changes to its sample
VARIANTS: Final[dict[str, tuple[dict[str, Any], ...]]] = {
    "request_info": ({"name": "", "missing": [], "note": ""},),
    "status_update": ({"name": "", "status": "being worked on", "update": "", "priority": "high"},),
    "escalation": ({"name": "", "level": "the head of IT", "reason": ""},),
    "resolution": (
        *(
            {"resolution": "", "method": m}
            for m in ("fix", "workaround", "user-error", "duplicate", "other", "")
        ),
        {"method": "workaround", "name": ""},
    ),
    "closing": (
        {"reason": "no_answer", "name": ""},
        {"reason": "no_answer", "resolution": ""},
        {"reason": "no_information", "resolution": ""},
        {"reason": "confirmed", "resolution": ""},
        {"reason": "development", "resolution": ""},
        {"reason": "closed", "resolution": ""},
    ),
    "follow_up": (
        {"attempt": 2, "waiting_for": "confirmation", "deadline": ""},
        {"attempt": 1, "waiting_for": "information", "missing": _MISSING},
        {"attempt": 2, "waiting_for": "information", "missing": [], "deadline": "", "name": ""},
    ),
    "urgent_alert": ({"assignee": ""},),
    "ticket_notice": ({"event": "reply", "requester_name": "", "assignee": "", "attachments": []},),
    "agent_confirmation": (
        {"relayed_to": [], "internal": True, "results": [{"command": "#internal", "ok": True, "detail": ""}]},
        {"relayed_to": [], "internal": False, "results": []},
    ),
    "unverified_notice": ({"ref": ""},),
    "escalation_notice": ({"reason": ""},),
}

# the fields a customer writes (or an agent quotes): the hostile variant puts markup in them
_CUSTOMER_TEXT: Final = ("subject", "name", "text", "note", "update", "resolution")
_HOSTILE_TAGS: Final = ("<script", "<b>sons")

_GREETING = re.compile(r"^\W*(dear|hello|hi|hey|greetings|good (morning|afternoon|evening|day))\b", re.I)
_PURPOSE = re.compile(
    r"\b(confirm\w*|let you know|inform\w*|updat\w*|need\w*|resolv\w*|clos\w*|escalat\w*|"
    r"follow\w*[ -]up|following up|writ\w*|received|request\w*|ticket|question|answer\w*|"
    r"looked into|passed on|fixed)\b",
    re.I,
)
_CLOSING = re.compile(
    r"anything else|\bfurther\b|happy to help|glad to help|let us know|reply to this message|"
    r"hesitate|get in touch|contact us",
    re.I,
)
_THANKS = re.compile(r"\bthank", re.I)
_RESOLVED = re.compile(r"\b(resol\w*|fix\w*|solv\w*|work-?around)", re.I)
_VENDOR_WORDS = re.compile(r"vendor|third[\s-]+part(y|ies)|outsourc\w*", re.I)
_METHOD_WORDS: Final[dict[str, tuple[str, ...]]] = {
    "fix": ("fix",),
    "workaround": ("workaround", "work around"),
    "user-error": ("no fault", "steps", "how to", "instructions", "as expected"),
    "duplicate": ("duplicate", "same problem", "same issue", "another ticket", "another request"),
}
_BLOCKS: Final = ("p", "div", "li", "ul", "ol", "table", "tr", "h1", "h2", "h3", "h4", "blockquote", "pre")
_CLOSING_PARAGRAPHS = 4
_WHITE_SPACE = re.compile(r"\s+")
_HIDDEN: Final = (Comment, Declaration, Doctype, ProcessingInstruction)


def vendor_names_of(config: Config) -> tuple[str, ...]:
    """What would give the vendor away: the configured name, address and domains, and the example name."""
    vendor = config.vendor
    return tuple(
        dict.fromkeys(v for v in (EXAMPLE_VENDOR, vendor.name, vendor.address, *vendor.domains) if v)
    )


def template_names(env: Environment) -> list[str]:
    """The templates the environment has (shipped and overriding), by name without extension.

    A name in a subfolder or starting with `_` is a part other templates include: it is
    checked through them.
    """
    return sorted(_files(env))


def check(env: Environment, vendor_names: Sequence[str]) -> list[Finding]:
    """Render every template with its samples and report each rule it breaks."""
    vendors = tuple(v.lower() for v in vendor_names if v.strip())
    findings: list[Finding] = []
    for name, extensions in sorted(_files(env).items()):
        findings.extend(_check_template(env, name, extensions, vendors))
    return findings


def html_text(html: str) -> str:
    """The text a reader sees in `html`: block elements become paragraphs, <br> a new line."""
    soup = BeautifulSoup(html, "html.parser")
    for tag in soup.find_all(["head", "style", "script", "title"]):
        tag.decompose()
    for hidden in soup.find_all(string=lambda node: isinstance(node, _HIDDEN)):
        hidden.extract()  # comments, <!DOCTYPE ...>: never shown
    for string in list(soup.find_all(string=True)):
        if string.find_parent("pre") is None:  # as a browser shows it: white space collapses
            string.replace_with(_WHITE_SPACE.sub(" ", string))
    for br in soup.find_all("br"):
        br.replace_with("\n")
    for block in soup.find_all(_BLOCKS):
        block.insert_before("\n\n")
        block.insert_after("\n\n")
    lines = [line.strip() for line in soup.get_text().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _files(env: Environment) -> dict[str, set[str]]:
    try:
        listed = env.list_templates(extensions=("txt", "html"))
    except TypeError:  # a loader that cannot list: check the names we know of
        listed = [f"{name}.txt" for name in SAMPLES]
    found: dict[str, set[str]] = {}
    for file in listed:
        stem, _, extension = file.rpartition(".")
        if "/" in stem or stem.startswith("_"):
            continue
        found.setdefault(stem, set()).add(extension)
    return found


def _contexts(name: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(label, context) for the sample, each variant and, for customer mail, the hostile one."""
    sample = SAMPLES[name]
    yield "the sample", sample
    for number, change in enumerate(VARIANTS.get(name, ()), start=1):
        yield f"variant {number}", {**sample, **change}
    if name in CUSTOMER_FACING:
        hostile = dict(sample)
        for key in _CUSTOMER_TEXT:
            if isinstance(sample.get(key), str):
                hostile[key] = f"{sample[key]}\n\n{HOSTILE}" if key == "text" else f"{HOSTILE} {sample[key]}"
        yield HOSTILE_LABEL, hostile


def _check_template(
    env: Environment, name: str, extensions: set[str], vendors: tuple[str, ...]
) -> Iterator[Finding]:
    if "txt" not in extensions:
        yield Finding(name, "render", f"{name}.html has no {name}.txt: every message needs a plain-text part")
    if name not in SAMPLES:
        yield Finding(name, "sample", "no sample data: add it to SAMPLES in maildesk/respond/lint.py")
        for extension in sorted(extensions):  # it cannot be rendered, but it can be compiled
            error = _compile(env, f"{name}.{extension}")
            if error:
                yield Finding(name, "render", f"{name}.{extension}: {error}")
        return
    contexts = list(_contexts(name))
    for extension in sorted(extensions):
        file = f"{name}.{extension}"
        error = _compile(env, file)
        if error:
            yield Finding(name, "render", f"{file}: {error}")
            continue
        # the same problem with several samples is one finding that names them all
        problems: dict[tuple[str, str], list[str]] = {}
        for label, context in contexts:
            for rule, problem in _problems(env, name, file, context, vendors, hostile=label == HOSTILE_LABEL):
                problems.setdefault((rule, problem), []).append(label)
        for (rule, problem), labels in problems.items():
            which = "every sample" if len(labels) == len(contexts) else ", ".join(labels)
            yield Finding(name, rule, f"{file}: {problem} (with {which})")


def _problems(
    env: Environment,
    name: str,
    file: str,
    context: Mapping[str, Any],
    vendors: tuple[str, ...],
    *,
    hostile: bool,
) -> Iterator[tuple[str, str]]:
    """(rule, problem) for each rule `file` breaks when it renders `context`."""
    rendered, error = _render(env, file, context)
    if error:
        yield "render", error
        return
    html = file.endswith(".html")
    text = html_text(rendered) if html else rendered
    if name not in CUSTOMER_FACING:
        if context.get("ref") and str(context["ref"]) not in text:
            yield "information", f"the ticket ref {context['ref']} is missing"
        return
    yield from _customer_rules(name, text, context)
    for problem in _vendor_problems(rendered + "\n" + text if html else text, vendors):
        yield "vendor", problem
    if hostile:
        lowered = rendered.lower()
        if html and any(tag in lowered for tag in _HOSTILE_TAGS):
            yield "escaping", "markup from the customer's text is not escaped"
        if "&amp;lt;" in lowered or (not html and "&lt;" in lowered):
            yield "escaping", "the customer's text is escaped twice, or escaped in plain text"


def _compile(env: Environment, file: str) -> str:
    try:
        env.get_template(file)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    return ""


def _render(env: Environment, file: str, context: Mapping[str, Any]) -> tuple[str, str]:
    """(output, "") or ("", what went wrong): a broken template is a finding, never a crash."""
    try:
        return env.get_template(file).render(context), ""
    except TemplateSyntaxError as exc:
        return "", f"line {exc.lineno}: {exc.message}"
    except UndefinedError as exc:
        return "", f"{exc.message}: a variable the template needs and the sample does not have"
    except Exception as exc:  # any error a template expression can raise: reported, not raised
        return "", f"{type(exc).__name__}: {exc}"


def _customer_rules(name: str, text: str, context: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    intro = _introduction(paragraphs, str(context.get("ref", "")))
    if intro:
        yield "introduction", intro
    if str(context["ref"]) not in text:
        yield "information", f"the ticket ref {context['ref']} is missing"
    if name in RESOLUTION:
        problem = _resolution(text, context)
        if problem:
            yield "resolution", problem
    if not any(_CLOSING.search(p) for p in paragraphs[-_CLOSING_PARAGRAPHS:]):
        yield "closing", "no closing that offers further help (e.g. 'if there is anything else ...')"
    if not _THANKS.search(text):
        yield "thanks", "the customer is not thanked"


def _introduction(paragraphs: list[str], ref: str) -> str:
    lines = [(number, line) for number, p in enumerate(paragraphs) for line in p.splitlines()][:3]
    greeting = next(((number, line) for number, line in lines if _GREETING.match(line)), None)
    if greeting is None:
        return "no greeting (Dear ..., Hello ...) in the first lines"
    number, line = greeting
    rest = paragraphs[number].partition(line)[2].strip()
    purpose = rest or (paragraphs[number + 1] if number + 1 < len(paragraphs) else "")
    if not ((ref and ref in purpose) or _PURPOSE.search(purpose)):
        return "the first paragraph does not say why we write (name the request or ticket, or its purpose)"
    return ""


def _resolution(text: str, context: Mapping[str, Any]) -> str:
    flat = " ".join(text.split()).lower()
    resolution = " ".join(str(context.get("resolution", "")).split()).lower()
    method = str(context.get("method", ""))
    if resolution and resolution not in flat:
        return "does not say how it was resolved: the resolution text is missing"
    words = _METHOD_WORDS.get(method, ())
    if not resolution and words and not any(word in flat for word in words):
        return f"does not say how it was resolved: nothing describes the method {method!r}"
    if not resolution and not words and not _RESOLVED.search(flat):
        return "does not say how it was resolved"
    return ""


def _vendor_problems(output: str, vendors: tuple[str, ...]) -> Iterator[str]:
    lowered = output.lower()
    for vendor in vendors:  # as a whole word: a short name must not match inside another word
        if re.search(rf"(?<!\w){re.escape(vendor)}(?!\w)", lowered):
            yield f"names the vendor {vendor!r}: a customer is never told about a vendor"
    match = _VENDOR_WORDS.search(output)
    if match:
        yield f"mentions {match.group(0)!r}: a customer is never told about a vendor"
