"""Tickets as plain dicts in the stable JSON shapes of DESIGN.md (`tickets list|show --json`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from peewee import JOIN, fn

from maildesk.config import Config
from maildesk.errors import NotFound
from maildesk.tickets.store.models import (
    Agent,
    Attachment,
    Contact,
    Event,
    ExternalLink,
    Label,
    Message,
    Organization,
    Ticket,
    TicketLink,
    TicketParticipant,
)


def _record(ticket: Ticket) -> dict[str, object]:
    from maildesk.tickets.issue_records import stored

    return stored(ticket).as_dict()


def iso(value: datetime | str | None) -> str | None:
    """UTC time as ISO 8601 with a Z, as every JSON time maildesk prints."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=None).isoformat(timespec="seconds") + "Z"


def ref(ticket: Ticket, config: Config) -> str:
    return f"{config.desk.ticket_prefix}-{ticket.number}"


def find_ticket(reference: str, config: Config) -> Ticket:
    """A ticket by its ref ("MD-12", "md12", "12") or raise NotFound."""
    text = reference.strip().upper()
    prefix = config.desk.ticket_prefix.upper()
    if text.startswith(prefix):
        text = text[len(prefix) :].lstrip("-#")
    if not text.isdigit():
        raise NotFound(f"{reference!r} is not a ticket reference like {prefix}-42")
    ticket = Ticket.get_or_none(Ticket.number == int(text))
    if ticket is None:
        raise NotFound(f"no ticket {prefix}-{int(text)}")
    return ticket


def list_tickets(
    config: Config, status: str | None = None, team: str | None = None, with_messages: bool = False
) -> list[dict[str, Any]]:
    counts = Message.select(Message.ticket, fn.COUNT(Message.id).alias("n")).group_by(Message.ticket)
    query = (
        Ticket.select(Ticket, Contact, Organization, Agent, counts.c.n.alias("message_count"))
        .join(Contact, JOIN.LEFT_OUTER, on=(Ticket.requester == Contact.id))
        .switch(Ticket)
        .join(Organization, JOIN.LEFT_OUTER, on=(Ticket.organization == Organization.id))
        .switch(Ticket)
        .join(Agent, JOIN.LEFT_OUTER, on=(Ticket.assignee == Agent.id))
        .switch(Ticket)
        .join(counts, JOIN.LEFT_OUTER, on=(Ticket.id == counts.c.ticket_id))
        .order_by(Ticket.number)
    )
    # merged tickets live on in the ticket they were merged into; list them only when asked
    shown = (Ticket.status == status) if status else Ticket.merged_into.is_null()
    query = query.where(shown)
    if team is not None:
        query = query.where(Ticket.team == team)  # the (team, status) index serves it
    out = []
    for ticket in query.objects():
        # selected as an alias, the count is an attribute peewee sets that Ticket does not declare
        item = summary(ticket, config, message_count=getattr(ticket, "message_count", None) or 0)
        if with_messages:
            item.update(_conversation(ticket, config))
        out.append(item)
    return out


def summary(ticket: Ticket, config: Config, message_count: int | None = None) -> dict[str, Any]:
    if message_count is None:
        message_count = Message.select().where(Message.ticket == ticket.id).count()
    requester = ticket.requester
    return {
        "ref": ref(ticket, config),
        "id": ticket.id,
        "subject": ticket.subject,
        "status": ticket.status,
        "issue_type": ticket.issue_type,
        "request_type": ticket.request_type or None,
        "issue_record": _record(ticket),
        "type_confidence": ticket.type_confidence,
        "priority": ticket.priority,
        "team": ticket.team or None,
        "assignee": ticket.assignee.address if ticket.assignee else None,
        "requester": requester.email if requester else None,
        "requester_name": requester.name if requester else None,
        "organization": ticket.organization.name if ticket.organization else None,
        "created_at": iso(ticket.created_at),
        "updated_at": iso(ticket.updated_at),
        "first_response_at": iso(ticket.first_response_at),
        "message_count": message_count,
        "vendor": ticket.vendor,
        "merged_into": (
            f"{config.desk.ticket_prefix}-{ticket.merged_into.number}" if ticket.merged_into else None
        ),
    }


def detail(ticket: Ticket, config: Config) -> dict[str, Any]:
    item = summary(ticket, config)
    item.update(_conversation(ticket, config))
    return item


def _conversation(ticket: Ticket, config: Config) -> dict[str, Any]:
    messages = list(
        Message.select()
        .where(Message.ticket == ticket.id)
        .order_by(fn.COALESCE(Message.date, Message.arrived_at), Message.id)
    )
    attachments: dict[int, list[dict[str, Any]]] = {}
    if messages:
        for att in Attachment.select().where(Attachment.message.in_([m.id for m in messages])):
            attachments.setdefault(att.message_id, []).append(
                {
                    "name": att.filename,
                    "size": att.size,
                    "sha256": att.sha256,
                    "content_type": att.content_type,
                    "inline": att.inline,
                    "stored": bool(att.path),
                }
            )
    participants = [
        p.contact.email
        for p in TicketParticipant.select(TicketParticipant, Contact)
        .join(Contact)
        .where(TicketParticipant.ticket == ticket.id)
        .order_by(Contact.email)
    ]
    links = (
        [
            {"ref": ref(link.target, config), "kind": link.kind, "direction": "out"}
            for link in TicketLink.select().where(TicketLink.source == ticket.id)
        ]
        + [
            {"ref": ref(link.source, config), "kind": link.kind, "direction": "in"}
            for link in TicketLink.select().where(TicketLink.target == ticket.id)
        ]
        + [
            {"url": link.url, "kind": link.kind, "direction": "out"}
            for link in ExternalLink.select()
            .where(ExternalLink.ticket == ticket.id)
            .order_by(ExternalLink.id)
        ]
    )
    labels = [
        row.value
        for row in Label.select(Label.value)
        .where((Label.ticket == ticket.id) & (Label.kind == "label"))
        .order_by(Label.id)
    ]
    return {
        "participants": participants,
        "links": links,
        "labels": labels,
        "messages": [
            {
                "message_id": m.message_id,
                "direction": m.direction,
                "visibility": m.visibility,
                "kind": m.kind,
                "from": m.from_addr,
                "from_name": m.from_name,
                "to": json.loads(m.to),
                "cc": json.loads(m.cc),
                "date": iso(m.date or m.arrived_at),
                "subject": m.subject,
                "text": m.text,
                "attachments": attachments.get(m.id, []),
            }
            for m in messages
        ],
        "events": [
            {"at": iso(e.at), "kind": e.kind, "detail": e.detail}
            for e in Event.select().where(Event.ticket == ticket.id).order_by(Event.at, Event.id)
        ],
    }
