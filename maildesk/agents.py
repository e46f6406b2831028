"""Agent commands: lines like `#spam` in mail an agent sends to a ticket act on that ticket.

Only mail from a configured agent address counts, and not when our MTA recorded that the
agent's own domain failed authentication (DMARC, or SPF and DKIM): a customer who writes
`#spam` or forges an agent's From gets their text recorded and nothing more. A command is
a line of its own in the newly written text, so a quoted `#spam` from an earlier message
does nothing. Every command, applied or refused, leaves an event on the ticket.

This module holds the commands the screening work needs (`#spam`, `#notspam`: corrections
kept as labels for `maildesk train spam`); the others join it with agent replies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from maildesk.clock import naive_utc
from maildesk.screen.spam import authentication_failures
from maildesk.tickets.store.models import Event, Label, Message, Ticket

if TYPE_CHECKING:
    from maildesk.config import Config
    from maildesk.pipeline import MailContext, Verdict

_COMMAND = re.compile(r"^[ \t]*#([a-z][a-z-]{1,20})\b[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)

Command = Callable[[Ticket, str, str, datetime, "Config"], str]


def commands_in(text: str) -> list[tuple[str, str]]:
    """The (name, argument) of each command line, in order; names lower-cased."""
    return [(m.group(1).lower(), m.group(2).strip()) for m in _COMMAND.finditer(text[:20_000])][:20]


def run(ctx: MailContext) -> Verdict:
    from maildesk.pipeline import CONTINUE

    mail, ticket = ctx.parsed, ctx.ticket
    if mail is None or ticket is None or mail.sender is None or ctx.verdict.kind != "normal":
        return CONTINUE
    agent = ctx.config.agent(mail.sender.email)
    found = commands_in(mail.new_text)
    if agent is None or not found:
        return CONTINUE
    now = naive_utc(ctx.now)
    forged = authentication_failures(mail, mail.sender.email.rpartition("@")[2].lower())
    for name, argument in found:
        if forged:
            detail = f"#{name} from {agent.address} ignored: {'; '.join(forged)}"
            Event.create(ticket=ticket, at=now, kind="command_refused", detail=detail, actor=agent.address)
            continue
        command = COMMANDS.get(name)
        if command is None:
            Event.create(
                ticket=ticket, at=now, kind="command_unknown", detail=f"#{name} {argument}".strip(),
                actor=agent.address,
            )  # fmt: skip
            continue
        detail = command(ticket, argument, agent.address, now, ctx.config)
        Event.create(ticket=ticket, at=now, kind="command", detail=f"#{name}: {detail}", actor=agent.address)
    return CONTINUE


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


def _spam(ticket: Ticket, argument: str, actor: str, now: datetime, config: Config) -> str:
    labelled = _label_customer_mail(ticket, "spam", actor, now)
    ticket.status, ticket.closed_at, ticket.updated_at = "spam", now, now
    ticket.save()
    return f"ticket closed as spam; {labelled} message(s) labelled spam for training"


def _notspam(ticket: Ticket, argument: str, actor: str, now: datetime, config: Config) -> str:
    labelled = _label_customer_mail(ticket, "ham", actor, now)
    reopened = ticket.status == "spam"
    if reopened:
        ticket.status, ticket.closed_at = "open", None
    ticket.updated_at = now
    ticket.save()
    return f"{labelled} message(s) labelled not spam for training" + ("; ticket reopened" if reopened else "")


def set_issue_type(ticket: Ticket, argument: str, actor: str, now: datetime, config: Config) -> str:
    """`#type incident`: the issue type a person confirms, kept as a label for retraining."""
    from maildesk.classifier.text import ISSUE_TYPES

    wanted = " ".join(argument.replace("-", " ").split()).lower()
    match = next((t for t in ISSUE_TYPES if t.lower() == wanted or t.lower().split()[0] == wanted), None)
    if match is None:
        return f"unknown issue type {argument!r}: use {', '.join(ISSUE_TYPES)}"
    before = ticket.issue_type
    ticket.issue_type, ticket.type_confidence, ticket.updated_at = match, 1.0, now
    ticket.save()
    Label.create(ticket=ticket, kind="issue-type", value=match, source=actor, created_at=now)
    return f"issue type {before} -> {match} (kept as a label for training)"


def set_team(ticket: Ticket, argument: str, actor: str, now: datetime, config: Config) -> str:
    """`#team Service Desk`: the team a person confirms, kept as a label for the team model."""
    teams = tuple(t.name for t in config.teams)
    name = " ".join(argument.split())
    if teams and name.lower() not in {t.lower() for t in teams}:
        return f"unknown team {argument!r}: use {', '.join(teams)}"
    name = next((t for t in teams if t.lower() == name.lower()), name)
    before = ticket.team or "none"
    ticket.team, ticket.updated_at = name, now
    ticket.save()
    Label.create(ticket=ticket, kind="team", value=name, source=actor, created_at=now)
    return f"team {before} -> {name} (kept as a label for training)"


COMMANDS: dict[str, Command] = {
    "spam": _spam,
    "notspam": _notspam,
    "not-spam": _notspam,
    "ham": _notspam,
    "type": set_issue_type,
    "team": set_team,
}
