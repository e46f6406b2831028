"""Overflow to the vendor help desk by email (seed 004), and taking a ticket back.

The dispatch mail carries what the vendor needs to act without asking: the summary,
priority, the requester's contact and the conversation so far. Its Reply-To is a signed
address for the ticket (agent number 0 stands for the vendor), so the vendor's answers
thread back as vendor messages, internal to the team. It is not marked automatic: a help
desk on the other end must open a ticket for it, and most ignore auto-submitted mail.
Nothing here is ever sent to the customer, and no customer template names the vendor.
"""

from __future__ import annotations

from datetime import datetime

from maildesk.clock import naive_utc
from maildesk.config import Config
from maildesk.outbox import enqueue
from maildesk.respond.addresses import reply_address, sign
from maildesk.respond.render import build, environment_for
from maildesk.signing import desk_secret
from maildesk.tickets.store.models import Contact, Event, Message, Organization, Ticket
from maildesk.tickets.views import ref as ticket_ref

VENDOR_AGENT_ID = 0  # the agent number in a signed address given to the vendor
_CONVERSATION_LIMIT = 30  # messages
_TEXT_LIMIT = 6000  # characters per message


def vendor_address(config: Config, ticket: Ticket) -> str:
    """The signed address the vendor's replies about this ticket go to."""
    token = sign(desk_secret(config), config.desk.ticket_prefix, ticket.number, VENDOR_AGENT_ID)
    return reply_address(config.desk.addresses[0], token)


def dispatch(ticket: Ticket, config: Config, now: datetime, reason: str) -> bool:
    """Send the ticket to the vendor; False (and an event) when no vendor is configured."""
    vendor = config.vendor
    at = naive_utc(now)
    if not vendor.address:
        Event.create(
            ticket=ticket,
            at=at,
            kind="vendor_skipped",
            actor="maildesk",
            detail=f"{reason}, but no vendor address is configured",
        )
        return False
    requester = Contact.get_or_none(Contact.id == ticket.requester_id) if ticket.requester_id else None
    organization = (
        Organization.get_or_none(Organization.id == ticket.organization_id)
        if ticket.organization_id
        else None
    )
    conversation = [
        {
            "who": m.from_name or m.from_addr or "unknown",
            "kind": m.kind,
            "date": m.date or m.arrived_at,
            "text": (m.text or "")[:_TEXT_LIMIT],
        }
        for m in Message.select(
            Message.from_name, Message.from_addr, Message.kind, Message.date, Message.arrived_at, Message.text
        )
        .where((Message.ticket == ticket.id) & (Message.visibility == "public") & (Message.kind != "system"))
        .order_by(Message.arrived_at, Message.id)
        .limit(_CONVERSATION_LIMIT)
    ]
    _send(
        ticket,
        config,
        now,
        "vendor_dispatch",
        {
            "priority": ticket.priority,
            "issue_type": ticket.issue_type,
            "reason": reason,
            "requester": requester.email if requester else "",
            "requester_name": requester.name if requester else "",
            "organization": organization.name if organization else "",
            "conversation": conversation,
            "created": ticket.created_at,
        },
        subject=f"[{ticket_ref(ticket, config)}] {ticket.subject}",
    )
    ticket.vendor = "dispatched"
    ticket.save()
    Event.create(
        ticket=ticket,
        at=at,
        kind="vendor_dispatched",
        actor="maildesk",
        detail=f"{reason}: sent to {vendor.address}",
    )
    return True


def tell_vendor(ticket: Ticket, config: Config, now: datetime, template: str, text: str, by: str) -> None:
    """A note to the vendor about a dispatched ticket (an important internal note, a hand-back)."""
    if not config.vendor.address:
        return
    subject = f"Re: [{ticket_ref(ticket, config)}] {ticket.subject}"
    _send(ticket, config, now, template, {"text": text, "by": by}, subject=subject)


def _send(
    ticket: Ticket, config: Config, now: datetime, template: str, context: dict[str, object], *, subject: str
) -> None:
    """Queue `template` for the vendor's address, with the ticket's signed reply address."""
    vendor = config.vendor
    ref = ticket_ref(ticket, config)
    common = {
        "vendor": vendor.name or "colleagues",
        "desk": config.desk.name,
        "ref": ref,
        "subject": ticket.subject,
    }
    message = build(
        config,
        environment_for(config),
        template,
        {**common, **context},
        to=[(vendor.name, vendor.address)],
        subject=subject,
        now=now,
        ref=ref,
        reply_to=vendor_address(config, ticket),
    )
    enqueue(
        message,
        recipients=[vendor.address],
        sender=config.desk.addresses[0],
        kind="dispatch",
        automatic=False,
        now=now,
        ticket=ticket.id,
    )
