"""Mail to the customer side of a ticket on an agent's behalf: their reply, or a template.

It goes from the support address (the agent's own address never reaches the customer),
as "Alice Example via Example Support", to the requester with the other participants in
Cc, skipping addresses known to bounce. In-Reply-To names the customer's latest message
and References starts at their first, so the customer's client files it in the thread
they started; the subject carries the ticket tag. The first public mail a person sends on
a ticket sets its first response time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from peewee import fn

from maildesk.config import Config
from maildesk.outbox import enqueue
from maildesk.respond.render import build, environment_for
from maildesk.tickets.store.models import Contact, Event, Message, Ticket, TicketParticipant
from maildesk.tickets.views import ref as ticket_ref


@dataclass(frozen=True)
class Sent:
    """What went to the customer side: the recipients and our Message-ID."""

    to: tuple[str, ...]
    message_id: str


def customer_side(ticket: Ticket, config: Config) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(To, Cc): the requester, then the participants; never the desk, an agent or a dead address."""
    people: list[Contact] = []
    if ticket.requester_id is not None:
        requester = Contact.get_or_none(Contact.id == ticket.requester_id)
        if requester is not None:
            people.append(requester)
    people.extend(Contact.select().join(TicketParticipant).where(TicketParticipant.ticket == ticket.id))
    seen: set[str] = set()
    usable = []
    for person in people:
        address = person.email.lower()
        if address in seen or person.undeliverable:
            continue
        if config.is_desk_address(address) or config.agent(address) is not None:
            continue
        seen.add(address)
        usable.append((person.name, person.email))
    if not usable:
        return [], []
    requester_first = ticket.requester_id is not None and people and people[0].email == usable[0][1]
    return ([usable[0]], usable[1:]) if requester_first else (usable, [])


def thread_headers(ticket: Ticket) -> tuple[str, list[str]]:
    """In-Reply-To (the customer's latest message) and References (their first ... latest)."""
    when = fn.COALESCE(Message.date, Message.arrived_at)
    rows = list(
        Message.select(Message.message_id)
        .where(
            (Message.ticket == ticket.id)
            & (Message.kind == "customer")
            & ~Message.message_id.endswith("@synthetic.maildesk.invalid")
        )
        .order_by(when, Message.id)
    )
    ids = [r.message_id for r in rows]
    if not ids:
        return "", []
    references = [ids[0], *ids[1:][-9:]] if len(ids) > 1 else ids
    return ids[-1], references


def send(
    ticket: Ticket,
    config: Config,
    template: str,
    context: Mapping[str, Any],
    *,
    now: datetime,
    agent_name: str,
    kind: str,
    automatic: bool = False,
) -> Sent | None:
    """Queue `template` for the customer side of the ticket; None when nobody can be written to.

    `automatic` mail (the SLA clock's follow-ups, closings, escalation notices) says so in its
    headers, and is no answer from a person: it neither sets the first response nor counts
    as an update.
    """
    to, cc = customer_side(ticket, config)
    if not to:
        return None
    ref = ticket_ref(ticket, config)
    in_reply_to, references = thread_headers(ticket)
    requester_name = to[0][0]
    message = build(
        config,
        environment_for(config),
        template,
        {"desk": config.desk.name, "ref": ref, "subject": ticket.subject, "name": requester_name,
         "agent": agent_name, **context},
        to=to,
        cc=cc,
        subject=f"Re: [{ref}] {ticket.subject}",
        now=now,
        ref=ref,
        in_reply_to=in_reply_to,
        references=references,
        from_name=f"{agent_name} via {config.desk.name}" if agent_name else "",
        reply_to=config.desk.addresses[0],  # the support address, never the agent's own
        automatic=automatic,
        auto_submitted="auto-generated",
    )  # fmt: skip
    recipients = [address for _, address in to + cc]
    row = enqueue(
        message,
        recipients=recipients,
        sender=config.desk.addresses[0],
        kind=kind,
        automatic=automatic,
        now=now,
        ticket=ticket.id,
    )
    if not automatic:
        if ticket.first_response_at is None:
            ticket.first_response_at = now
        if ticket.status == "new":
            ticket.status = "open"
        ticket.updated_at = now
        ticket.save()
    Event.create(
        ticket=ticket, at=now, kind="sent", actor=agent_name or "maildesk",
        detail=f"{template} to {', '.join(recipients)} as <{row.message_id}>",
    )  # fmt: skip
    if template != "agent_reply":
        # a template's words are ours, not the agent's: kept on the ticket as what the customer read
        Message.create(
            ticket=ticket, message_id=row.message_id, direction="out", visibility="public", kind="system",
            from_addr=config.desk.addresses[0], from_name=config.desk.name, to=json.dumps(recipients),
            date=now, arrived_at=now, subject=message["Subject"],
            text=message.get_body(("plain",)).get_content(),  # type: ignore[union-attr]
        )  # fmt: skip
    return Sent(tuple(recipients), row.message_id)
