"""Command lines in an agent's mail: `#status resolved`, `#assign bob`, `#type incident`, ...

A command is a line of its own in the newly written text (quoted history is already gone,
so a quoted `#spam` from an earlier message does nothing). Commands are removed from what
the customer sees. Each returns an Outcome: whether it applied, what it did or why not
(the agent's confirmation quotes it), and, for the ones the requester must hear of, the
template that tells them when the agent wrote no text of their own.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from maildesk.config import ISSUE_TYPES, PRIORITIES, Config
from maildesk.tickets.statuses import ALIASES, AWAITING_CUSTOMER, RESOLVED, STATUSES
from maildesk.tickets.store.models import Agent, Label, Message, Ticket
from maildesk.tickets.tiers import LAST_TIER, TIERS, agents_of_tier

_COMMAND = re.compile(r"^[ \t]*#([a-z][a-z-]{1,20})\b[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
MAX_COMMANDS = 20


INTERNAL = frozenset(
    {"internal", "note", "private", "comment", "important"}
)  # important: copied to the vendor
# what seed 003 says an issue record needs, asked for when an agent writes a bare #needinfo
ISSUE_RECORD = (
    "the date and time the problem occurred",
    "your phone number, in case we need to call you",
    "who is affected, and who else should be kept informed",
    "the building and room, if the problem is on site",
    "the module, page or resource affected",
    "what you were doing, and any error message word for word (a screenshot helps)",
    "whether this is the first time it has happened",
)


@dataclass(frozen=True)
class Act:
    """One command as given: the ticket it acts on, its argument, and who gave it."""

    ticket: Ticket
    argument: str
    actor: str  # the agent's address, or whoever labels from the command line
    now: datetime  # naive UTC
    config: Config


@dataclass(frozen=True)
class Outcome:
    ok: bool
    detail: str
    # the template that tells the requester, with its variables, if the agent wrote no text
    tell_customer: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)
    notify: tuple[str, ...] = ()  # agent addresses to send the ticket to (a new assignee, a new tier)
    notice: str = "ticket_notice"  # the template they get
    # the template carries the agent's own words, as this variable, instead of a plain relayed reply
    text_as: str = ""


Command = Callable[[Act], Outcome]


def commands_in(text: str) -> list[tuple[str, str]]:
    """The (name, argument) of each command line, in order; names lower-cased."""
    return [(m.group(1).lower(), m.group(2).strip()) for m in _COMMAND.finditer(text[:20_000])][:MAX_COMMANDS]


def without_commands(text: str) -> str:
    """The text with command lines removed and the blank lines they leave collapsed."""
    kept = _COMMAND.sub("", text)
    return re.sub(r"\n{3,}", "\n\n", kept).strip("\n")


def _label_customer_mail(ticket: Ticket, value: str, actor: str, now: datetime) -> int:
    """Label every message the customer side sent on the ticket; returns how many."""
    inbound = [
        m.inbound_id
        for m in Message.select(Message.inbound).where(
            (Message.ticket == ticket.id) & (Message.direction == "in") & (Message.kind == "customer")
        )
        if m.inbound_id is not None
    ]
    for inbound_id in inbound:
        Label.create(
            ticket=ticket, inbound=inbound_id, kind="spam", value=value, source=actor, created_at=now
        )
    return len(inbound)


def _spam(act: Act) -> Outcome:
    labelled = _label_customer_mail(act.ticket, "spam", act.actor, act.now)
    ticket = act.ticket
    ticket.status, ticket.closed_at, ticket.updated_at = "spam", act.now, act.now
    ticket.save()
    return Outcome(True, f"ticket closed as spam; {labelled} message(s) labelled spam for training")


def _notspam(act: Act) -> Outcome:
    ticket = act.ticket
    labelled = _label_customer_mail(ticket, "ham", act.actor, act.now)
    reopened = ticket.status == "spam"
    if reopened:
        ticket.status, ticket.closed_at = "open", None
    ticket.updated_at = act.now
    ticket.save()
    return Outcome(
        True,
        f"{labelled} message(s) labelled not spam for training" + ("; ticket reopened" if reopened else ""),
    )


def set_issue_type(act: Act) -> Outcome:
    """`#type incident`: the issue type a person confirms, kept as a label for retraining."""
    wanted = " ".join(act.argument.replace("-", " ").split()).lower()
    match = next((t for t in ISSUE_TYPES if t.lower() == wanted or t.lower().split()[0] == wanted), None)
    if match is None:
        return Outcome(False, f"unknown issue type {act.argument!r}: use {', '.join(ISSUE_TYPES)}")
    ticket = act.ticket
    before = ticket.issue_type
    ticket.issue_type, ticket.type_confidence, ticket.updated_at = match, 1.0, act.now
    ticket.save()
    Label.create(ticket=ticket, kind="issue-type", value=match, source=act.actor, created_at=act.now)
    return Outcome(True, f"issue type {before} -> {match} (kept as a label for training)")


def set_team(act: Act) -> Outcome:
    """`#team Service Desk`: the team a person confirms, kept as a label for the team model."""
    teams = tuple(t.name for t in act.config.teams)
    name = " ".join(act.argument.split())
    if not name or (teams and name.lower() not in {t.lower() for t in teams}):
        return Outcome(False, f"unknown team {act.argument!r}: use {', '.join(teams) or 'a team name'}")
    name = next((t for t in teams if t.lower() == name.lower()), name)
    ticket = act.ticket
    before = ticket.team or "none"
    ticket.team, ticket.updated_at = name, act.now
    ticket.save()
    Label.create(ticket=ticket, kind="team", value=name, source=act.actor, created_at=act.now)
    return Outcome(True, f"team {before} -> {name} (kept as a label for training)")


def _status(act: Act) -> Outcome:
    """`#status resolved [how]`: the words after the status say how, for the resolution mail."""
    word, _, rest = act.argument.partition(" ")
    status = ALIASES.get(word.lower(), word.lower())
    if status not in STATUSES:
        return Outcome(False, f"unknown status {word!r}: use {', '.join(STATUSES)}")
    ticket = act.ticket
    before = ticket.status
    ticket.status, ticket.updated_at = status, act.now
    ticket.closed_at = act.now if status in ("resolved", "closed") else None
    # the closing rules count from here: resolved waits for a confirmation, awaiting-customer for an answer
    ticket.waiting_since = act.now if status in (RESOLVED, AWAITING_CUSTOMER) else None
    ticket.save()
    if status == "resolved":
        return Outcome(
            True, f"status {before} -> resolved", "resolution", {"resolution": rest.strip(), "method": ""}
        )
    if status == "closed":
        return Outcome(
            True, f"status {before} -> closed", "closing", {"reason": "confirmed", "resolution": ""}
        )
    return Outcome(True, f"status {before} -> {status}")


METHODS = ("fix", "workaround", "user-error", "duplicate", "other")


def _resolve(act: Act) -> Outcome:
    """`#resolve fix|workaround|user-error|duplicate MD-9|other`: resolved, with how (seed 001).

    The resolution mail explains the method, with the agent's text as how it was resolved.
    """
    word, _, rest = act.argument.strip().partition(" ")
    method = {"bug": "fix", "fixed": "fix", "user": "user-error", "usererror": "user-error", "": "other"}.get(
        word.lower(), word.lower()
    )
    if method not in METHODS:
        return Outcome(False, f"unknown method of resolution {word!r}: use {', '.join(METHODS)}")
    detail = f"resolved ({method})"
    if method == "duplicate":
        linked = _link(Act(act.ticket, rest, act.actor, act.now, act.config))
        if not linked.ok:
            return Outcome(False, f"#resolve duplicate needs the ticket it duplicates: {linked.detail}")
        from maildesk.tickets.store.models import TicketLink

        TicketLink.update(kind="duplicate-of").where(
            (TicketLink.source == act.ticket.id) & (TicketLink.kind == "related")
        ).execute()
        detail += f"; {linked.detail}"
    outcome = _status(Act(act.ticket, "resolved", act.actor, act.now, act.config))
    Label.create(ticket=act.ticket, kind="resolution", value=method, source=act.actor, created_at=act.now)
    return Outcome(True, f"{outcome.detail}; {detail}", "resolution", {"resolution": "", "method": method},
                   text_as="resolution")  # fmt: skip


def _close(act: Act) -> Outcome:
    """`#close`: closed, and the customer told; seed 001's fourth rule when only a development
    ticket (`#bug`) is left: the change comes with a release."""
    from maildesk.tickets.store.models import ExternalLink

    ticket = act.ticket
    before = ticket.status
    ticket.status, ticket.closed_at, ticket.updated_at = "closed", act.now, act.now
    ticket.waiting_since = None
    ticket.save()
    waits_on_development = ExternalLink.select().where(ExternalLink.ticket == ticket.id).exists()
    reason = "development" if waits_on_development else "closed"
    carries_on = "; the development ticket carries on" if waits_on_development else ""
    detail = f"status {before} -> closed{carries_on}"
    return Outcome(True, detail, "closing", {"reason": reason, "resolution": act.argument})


def _agent_named(config: Config, name: str, actor: str) -> Agent | None:
    wanted = name.strip().lower()
    if wanted == "me":
        wanted = actor.lower()
    for agent in config.agents:
        local = agent.address.lower().partition("@")[0]
        if wanted in (agent.address.lower(), local, agent.name.lower(), agent.name.lower().split(" ")[0]):
            return Agent.get_or_none(Agent.address == agent.address)
    return None


def _assign(act: Act) -> Outcome:
    """`#assign bob` (address, local part, name or first name), `#assign me`, `#assign nobody`."""
    ticket = act.ticket
    if act.argument.strip().lower() in ("nobody", "none", "-"):
        ticket.assignee, ticket.updated_at = None, act.now
        ticket.save()
        return Outcome(True, "unassigned")
    agent = _agent_named(act.config, act.argument, act.actor)
    if agent is None or not agent.active:
        known = ", ".join(a.address.partition("@")[0] for a in act.config.agents)
        return Outcome(False, f"no agent called {act.argument!r}: use one of {known}, me or nobody")
    ticket.assignee, ticket.updated_at = agent, act.now
    if ticket.status == "new":
        ticket.status = "open"
    ticket.save()
    notify = () if agent.address.lower() == act.actor.lower() else (agent.address,)
    return Outcome(True, f"assigned to {agent.name or agent.address}", notify=notify)


def _priority(act: Act) -> Outcome:
    level = act.argument.strip().lower()
    level = {"critical": "urgent", "medium": "normal"}.get(level, level)
    if level not in PRIORITIES:
        return Outcome(False, f"unknown priority {act.argument!r}: use {', '.join(PRIORITIES)}")
    ticket = act.ticket
    before = ticket.priority
    ticket.priority, ticket.updated_at = level, act.now
    ticket.first_response_due = None  # the SLA clock works it out again for the new priority
    ticket.save()
    # seed 003: a change of priority is told to the requester as soon as it is made
    return Outcome(
        True, f"priority {before} -> {level}", "status_update",
        {"status": f"now handled at {level} priority", "update": "", "priority": level},
    )  # fmt: skip


def _escalate(act: Act) -> Outcome:
    """Tier 1 -> 2 (senior engineers) -> 3 (the head), seed 003; the new tier's agents are told."""
    ticket = act.ticket
    if ticket.tier >= LAST_TIER:
        return Outcome(False, f"already at the last tier ({TIERS[LAST_TIER]})")
    ticket.tier = ticket.tier + 1
    ticket.updated_at = act.now
    same_team = agents_of_tier(act.config, ticket.tier, ticket.team)
    assignee = Agent.get_or_none(Agent.id == ticket.assignee_id) if ticket.assignee_id else None
    configured = act.config.agent(assignee.address) if assignee is not None else None
    if configured is None or configured.tier < ticket.tier:
        ticket.assignee = None  # the new tier takes it over; the SLA clock sees it unclaimed
    ticket.save()
    reason = act.argument.strip()
    told = tuple(a.address for a in same_team)
    return Outcome(
        True,
        f"escalated to tier {ticket.tier} ({TIERS[ticket.tier]})"
        + (f"; told {', '.join(told)}" if told else "; no agent configured for that tier"),
        "escalation",
        {"level": TIERS[ticket.tier], "reason": reason},
        notify=told,
        notice="escalation_notice",
    )


def _vendor(act: Act) -> Outcome:
    # the SLA clock's overflow dispatch sends it; the ticket only records the request here
    ticket = act.ticket
    if ticket.vendor in ("requested", "dispatched"):
        return Outcome(False, f"the vendor hand-over is already {ticket.vendor}")
    ticket.vendor, ticket.updated_at = "requested", act.now
    ticket.save()
    return Outcome(True, "vendor hand-over requested")


def _return(act: Act) -> Outcome:
    """`#return`: the team takes a ticket back from the vendor, who is told."""
    ticket = act.ticket
    if ticket.vendor not in ("requested", "dispatched"):
        return Outcome(False, "the ticket is not with the vendor")
    was = ticket.vendor
    ticket.vendor, ticket.updated_at = "returned", act.now
    ticket.save()
    if was == "dispatched":
        from maildesk.sla.overflow import tell_vendor

        tell_vendor(ticket, act.config, act.now, "vendor_note", "", act.actor)
    return Outcome(
        True, "taken back from the vendor" + ("; the vendor was told" if was == "dispatched" else "")
    )


ANSWERS = {
    "billing": ("answer_billing_update", "billing"),
    "billing-update": ("answer_billing_update", "billing"),
    "training": ("answer_training", "training"),
    "cancellation": ("answer_cancellation", "cancellation"),
    "cancel": ("answer_cancellation", "cancellation"),
}


def _answer(act: Act) -> Outcome:
    """`#answer billing-update`: a canned answer (seed 002), with the agent's text as its note."""
    name = act.argument.strip().lower().replace("_", "-")
    if name not in ANSWERS:
        return Outcome(
            False, f"no canned answer {act.argument!r}: use billing-update, training or cancellation"
        )
    template, link = ANSWERS[name]
    url = getattr(act.config.links, link)
    detail = f"canned answer {template.removeprefix('answer_')}" + (
        "" if url else f" (no links.{link} configured)"
    )
    tell: tuple[str, ...] = ()
    if link == "cancellation":
        # seed 002: the account manager gets a heads-up about a cancellation
        tell = ("account-manager",)
    return Outcome(True, detail, template, {"url": url, "note": ""}, notify=tell, text_as="note")


def _link(act: Act) -> Outcome:
    """`#link MD-12`: tickets that belong together, shown on both."""
    from maildesk.tickets.store.models import TicketLink

    prefix = act.config.desk.ticket_prefix.upper()
    found = re.fullmatch(rf"(?:{re.escape(prefix)}-?)?(\d+)", act.argument.strip().upper())
    if not found:
        return Outcome(False, f"#link takes a ticket like {prefix}-12, not {act.argument!r}")
    other = Ticket.get_or_none(Ticket.number == int(found.group(1)))
    if other is None or other.id == act.ticket.id:
        return Outcome(False, f"no other ticket {prefix}-{found.group(1)}")
    TicketLink.get_or_create(
        source=act.ticket, target=other, kind="related", defaults={"created_at": act.now}
    )
    raised = ""
    for linked in (act.ticket, other):
        # seed 002: a linked configuration ticket is high priority
        if linked.request_type == "configuration change" and linked.priority in ("low", "normal"):
            linked.priority, linked.first_response_due = "high", None
            linked.save()
            raised = f"; {prefix}-{linked.number} (a configuration change) is now high priority"
    return Outcome(True, f"linked with {prefix}-{other.number}{raised}")


def _bug(act: Act) -> Outcome:
    """`#bug URL`: the development ticket this issue waits on (seed 001)."""
    from maildesk.tickets.store.models import ExternalLink

    url = act.argument.strip()
    if not re.fullmatch(r"https?://[^\s<>\"]{3,2000}", url):
        return Outcome(False, f"#bug takes the development ticket's address (http or https), not {url!r}")
    ExternalLink.create(ticket=act.ticket, url=url, kind="bug", created_at=act.now)
    return Outcome(True, f"linked to the development ticket {url}")


def _watch(act: Act) -> Outcome:
    """`#watch addr`: someone who gets the public updates, never the internal notes."""
    from maildesk.parse.message import Address
    from maildesk.tickets.directory import contact_for
    from maildesk.tickets.store.models import TicketParticipant

    address = act.argument.strip().strip("<>").lower()
    if not re.fullmatch(r"[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+", address):
        return Outcome(False, f"#watch takes an email address, not {act.argument!r}")
    if act.config.is_desk_address(address) or act.config.agent(address):
        return Outcome(False, f"{address} is the desk's own or an agent's address")
    contact = contact_for(Address(email=address, name=""), act.config, act.now)
    _, created = TicketParticipant.get_or_create(
        ticket=act.ticket, contact=contact, defaults={"role": "watcher"}
    )
    return Outcome(
        True, f"{address} now gets the public updates" if created else f"{address} was already on it"
    )


def _request(act: Act) -> Outcome:
    """`#request configuration change`: the request type a person confirms, kept as a label."""
    from maildesk.request_types import REQUEST_TYPES, named

    kind = named(act.argument)
    if kind is None:
        return Outcome(False, f"unknown request type {act.argument!r}: use {', '.join(REQUEST_TYPES)}")
    before = act.ticket.request_type or "none"
    act.ticket.request_type, act.ticket.updated_at = kind, act.now
    act.ticket.save()
    Label.create(ticket=act.ticket, kind="request-type", value=kind, source=act.actor, created_at=act.now)
    return Outcome(True, f"request type {before} -> {kind} (kept as a label for training)")


def _label(act: Act) -> Outcome:
    name = " ".join(act.argument.split())[:40]
    if not name:
        return Outcome(False, "#label takes a name, like #label EB")
    if Label.get_or_none((Label.ticket == act.ticket.id) & (Label.kind == "label") & (Label.value == name)):
        return Outcome(True, f"already labelled {name}")
    Label.create(ticket=act.ticket, kind="label", value=name, source=act.actor, created_at=act.now)
    return Outcome(True, f"labelled {name}")


def _needinfo(act: Act) -> Outcome:
    from maildesk.tickets.issue_records import stored

    # seed 003: ask only for what the customer's mails have not told us yet
    items = [i.strip() for i in re.split(r"[;,]", act.argument) if i.strip()]
    items = items or stored(act.ticket).missing() or list(ISSUE_RECORD)
    ticket = act.ticket
    ticket.status, ticket.updated_at, ticket.waiting_since = AWAITING_CUSTOMER, act.now, act.now
    ticket.save()
    return Outcome(True, f"asked for {len(items)} item(s)", "request_info", {"missing": items, "note": ""})


COMMANDS: dict[str, Command] = {
    "spam": _spam,
    "notspam": _notspam,
    "not-spam": _notspam,
    "ham": _notspam,
    "type": set_issue_type,
    "team": set_team,
    "status": _status,
    "resolve": _resolve,
    "close": _close,
    "assign": _assign,
    "take": lambda act: _assign(Act(act.ticket, "me", act.actor, act.now, act.config)),
    "priority": _priority,
    "escalate": _escalate,
    "vendor": _vendor,
    "return": _return,
    "needinfo": _needinfo,
    "answer": _answer,
    "link": _link,
    "bug": _bug,
    "watch": _watch,
    "label": _label,
    "request": _request,
    "ask": _needinfo,
}
