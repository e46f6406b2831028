"""Message -> ticket: which conversation a message belongs to, or that it starts a new one.

The signals, strongest first:
1. headers: In-Reply-To and References against every Message-ID stored or sent, and,
   for mail that arrives before its parent, stored messages whose references name this
   one. Header links may join tickets that out-of-order arrival split; those are merged.
0. an agent's signed reply address (agents/identity.py), which names the ticket outright.
2. the subject tag `[MD-1042]`, honoured only for the requester, participants and
   (configurably) colleagues of the requester's configured organisation: a tag typed by a
   stranger does not let them into someone else's ticket.
3. the normalised subject, only for the same people, only within `threading.subject_window`,
   and only for subjects specific enough to mean something: two customers who both write
   "Help" never share a ticket.
A reply to a resolved or closed ticket reopens it within `threading.reopen_window`, else it
opens a new ticket linked to the old one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from peewee import fn

from maildesk.clock import naive_utc
from maildesk.subjects import subject_key, ticket_numbers
from maildesk.tickets.store.locks import lock_conversation
from maildesk.tickets.store.models import (
    Contact,
    Message,
    MessageReference,
    OutboundMail,
    Ticket,
    TicketParticipant,
)

if TYPE_CHECKING:
    from maildesk.config import Config
    from maildesk.parse.message import ParsedMail
    from maildesk.pipeline import MailContext, Verdict
    from maildesk.tickets.store.fast import Statements

CLOSED_STATES = frozenset({"resolved", "closed"})


@dataclass(frozen=True)
class ThreadDecision:
    """Where a message goes. `ticket_id` None means a new ticket."""

    ticket_id: int | None
    how: str  # in-reply-to, references, child, tag, subject, new
    reopen: bool = False
    follow_up_of: int | None = None  # a new ticket continuing this closed one
    merge: tuple[int, ...] = ()  # tickets the headers show to be the same conversation
    refused_tag: int | None = None  # a tag the sender was not allowed to use


def run(ctx: MailContext) -> Verdict:
    from maildesk.pipeline import CONTINUE

    assert ctx.parsed is not None
    if ctx.bounce is not None:
        ticket_id = bounced_ticket(ctx.bounce.original_message_id, ctx.bounce.original_subject, ctx.config)
        ctx.thread = ThreadDecision(ticket_id, "bounce")
        return CONTINUE
    agent = ctx.agent_mail
    if agent is not None and agent.trusted and agent.token is not None:
        # the signature names the ticket: stronger than any header, which a client may mangle
        signed = Ticket.get_or_none(Ticket.number == agent.token.ticket_number)
        if signed is not None:
            ctx.thread = ThreadDecision(_live(signed).id, "signed address")
            return CONTINUE
    vendor = ctx.vendor_mail
    if vendor is not None and vendor.ticket_number is not None:
        signed = Ticket.get_or_none(Ticket.number == vendor.ticket_number)
        if signed is not None:
            ctx.thread = ThreadDecision(_live(signed).id, "signed address")
            return CONTINUE
    for key in conversation_keys(ctx.parsed):
        lock_conversation(ctx.sql.database, key)
    ctx.thread = decide(ctx.parsed, ctx.config, ctx.now, ctx.sql)
    return CONTINUE


def conversation_keys(mail: ParsedMail) -> list[str]:
    """What two messages of one conversation share, for workers to serialise on: the thread's
    root Message-ID (a first message's own), and the sender with the subject (how mail without
    headers joins). Sorted, so every transaction takes its locks in one order."""
    root = (mail.references[:1] or mail.in_reply_to[:1] or (mail.message_id,))[0]
    keys = [f"id:{root}"]
    key = subject_key(mail.subject)
    if key and mail.sender is not None:
        keys.append(f"subject:{mail.sender.email}:{key}")
    return sorted(keys)


def bounced_ticket(message_id: str, subject: str, config: Config) -> int | None:
    """The ticket of the message a bounce returns: by its Message-ID, else by our subject tag.

    Some relays (Amazon SES) replace our Message-ID with their own, so the tag in the
    returned subject is the fallback; a bounce carries no sender whose rights to check.
    """
    if message_id:
        sent = OutboundMail.get_or_none(OutboundMail.message_id == message_id)
        if sent is not None and sent.ticket_id is not None:
            return _live(Ticket.get_by_id(sent.ticket_id)).id
        stored = Message.get_or_none(Message.message_id == message_id)
        if stored is not None:
            return _live(Ticket.get_by_id(stored.ticket_id)).id
    for number in ticket_numbers(subject, config.desk.ticket_prefix):
        ticket = Ticket.get_or_none(Ticket.number == number)
        if ticket is not None:
            return _live(ticket).id
    return None


def decide(mail: ParsedMail, config: Config, now: datetime, sql: Statements) -> ThreadDecision:
    """Find the ticket for a parsed message (read-only: the record stage applies it)."""
    when = naive_utc(mail.date or now)
    sender = mail.sender.email if mail.sender else ""

    linked, how = _by_headers(mail, sql)
    if linked:
        ticket = _live(linked[0])
        merge = tuple(dict.fromkeys(t for t in (_live(x).id for x in linked[1:]) if t != ticket.id))
        return _reopen_or_follow(ticket, how, config, when, merge=merge)

    refused = None
    for number in ticket_numbers(mail.subject, config.desk.ticket_prefix):
        tagged = Ticket.get_or_none(Ticket.number == number)
        if tagged is None:
            continue
        ticket = _live(tagged)
        if _may_use(ticket, sender, config, sql):
            return _reopen_or_follow(ticket, "tag", config, when)
        refused = refused or number

    key = subject_key(mail.subject)
    if key and sender:
        same_subject = _by_subject(key, sender, config, when, sql)
        if same_subject is not None:
            return ThreadDecision(same_subject.id, "subject")
    return ThreadDecision(None, "new", refused_tag=refused)


def _parents_query(arity: int) -> Any:
    sample = ["x"] * arity
    return Message.select(Message.message_id, Message.ticket).where(
        Message.message_id.in_(sample)
    ) | OutboundMail.select(OutboundMail.message_id, OutboundMail.ticket).where(
        OutboundMail.message_id.in_(sample) & OutboundMail.ticket.is_null(False)
    )


def _children_query(_: int) -> Any:
    return Message.select(Message.ticket).join(MessageReference).where(MessageReference.ref == "x").distinct()


def _by_headers(mail: ParsedMail, sql: Statements) -> tuple[list[Ticket], str]:
    """Tickets linked by In-Reply-To, References (nearest first) and children, deduplicated."""
    found: dict[int, str] = {}
    parents = list(mail.in_reply_to) + list(reversed(mail.references))
    parents = [p for p in dict.fromkeys(parents) if p != mail.message_id][:100]
    if parents:
        by_id: dict[str, int] = {}
        rows = sql.query("parents", _parents_query, parents * 2, arity=len(parents))
        for message_id, ticket_id in rows:
            by_id.setdefault(message_id, ticket_id)
        for parent in parents:
            ticket_id = by_id.get(parent)
            if ticket_id is not None and ticket_id not in found:
                found[ticket_id] = "in-reply-to" if parent in mail.in_reply_to else "references"
    if not mail.synthetic_id:
        for (ticket_id,) in sql.query("children", _children_query, [mail.message_id]):
            found.setdefault(ticket_id, "child")
    if not found:
        return [], ""
    how = next(iter(found.values()))
    # the oldest ticket is the one the conversation keeps
    ids = list(found)
    tickets = sorted(
        sql.get(Ticket, "tickets-by-id", _tickets_by_id, ids, arity=len(ids)), key=lambda t: t.number
    )
    return tickets, how


def _tickets_by_id(arity: int) -> Any:
    return Ticket.select().where(Ticket.id.in_([0] * arity))


def _requester_email(_: int) -> Any:
    return Contact.select(Contact.email).where(Contact.id == 0)


def _is_participant(_: int) -> Any:
    return (
        TicketParticipant.select(TicketParticipant.id)
        .join(Contact)
        .where((TicketParticipant.ticket == 0) & (Contact.email == ""))
        .limit(1)
    )


def _latest_message(_: int) -> Any:
    # what people wrote, not maildesk's own acknowledgements: those are dated when they were
    # made, which for imported mail can be long after the conversation
    return Message.select(fn.MAX(fn.COALESCE(Message.date, Message.arrived_at))).where(
        (Message.ticket == 0) & (Message.kind != "system")
    )


def _live(ticket: Ticket) -> Ticket:
    """Follow merges to the ticket that holds the conversation now."""
    seen = set()
    while ticket.merged_into_id is not None and ticket.id not in seen:
        seen.add(ticket.id)
        ticket = Ticket.get_by_id(ticket.merged_into_id)
    return ticket


def _reopen_or_follow(
    ticket: Ticket, how: str, config: Config, when: datetime, merge: tuple[int, ...] = ()
) -> ThreadDecision:
    if ticket.status not in CLOSED_STATES:
        return ThreadDecision(ticket.id, how, merge=merge)
    closed_at = ticket.closed_at or ticket.updated_at
    if when - closed_at <= config.threading.reopen_window:
        return ThreadDecision(ticket.id, how, reopen=True, merge=merge)
    return ThreadDecision(None, "new", follow_up_of=ticket.id)


def _may_use(ticket: Ticket, sender: str, config: Config, sql: Statements) -> bool:
    """May this sender add to the ticket by tag or subject? Requester, participant, colleague.

    Not an agent's From: anyone can write it. Agents reach a ticket through their signed
    reply address (or the headers of the notification they answer).
    """
    if not sender:
        return False
    rows = (
        sql.query("requester-email", _requester_email, [ticket.requester_id]) if ticket.requester_id else []
    )
    requester = rows[0][0] if rows else None
    if requester == sender:
        return True
    if sql.query("is-participant", _is_participant, [ticket.id, sender]):
        return True
    if config.threading.same_organization and requester is not None:
        org = config.organization_for(sender)
        return org is not None and org is config.organization_for(requester)
    return False


def _subject_query(_: int) -> Any:
    return (
        Ticket.select(Ticket.id, Ticket.status)
        .where((Ticket.subject_key == "x") & Ticket.merged_into.is_null())
        .order_by(Ticket.updated_at.desc())
        .limit(20)
    )


def _by_subject(key: str, sender: str, config: Config, when: datetime, sql: Statements) -> Ticket | None:
    window = config.threading.subject_window
    candidates = [
        ticket_id
        for ticket_id, status in sql.query("subject", _subject_query, [key])
        if status not in CLOSED_STATES
    ]
    for ticket_id in candidates:
        (ticket,) = sql.get(Ticket, "tickets-by-id", _tickets_by_id, [ticket_id], arity=1)
        if not _may_use(ticket, sender, config, sql):
            continue
        ((latest,),) = sql.query("latest-message", _latest_message, [ticket.id])
        latest = naive_utc(latest) if latest else ticket.updated_at
        if abs(when - latest) <= window:
            return ticket
    return None
