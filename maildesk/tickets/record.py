"""Record stage: apply the threading decision, store the message, its attachments and the events.

Runs inside the worker's savepoint, so a failure leaves nothing half-written; and it is
idempotent by spool id (`Message.inbound` is unique), so processing a message again after
a crash cannot add it twice.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peewee import fn

from maildesk.clock import naive_utc
from maildesk.sla.confirm import is_confirmation
from maildesk.subjects import strip_prefixes, subject_key
from maildesk.tickets.directory import contact_for
from maildesk.tickets.issue_records import gather
from maildesk.tickets.store.locks import lock_ticket_numbers
from maildesk.tickets.store.models import (
    Attachment,
    Contact,
    Event,
    Message,
    MessageReference,
    Ticket,
    TicketLink,
    TicketParticipant,
)
from maildesk.tickets.views import ref as ticket_ref

AUTOMATIC = frozenset({"auto-reply", "bounce"})

if TYPE_CHECKING:
    from maildesk.config import Config
    from maildesk.parse.message import AttachmentPart, ParsedMail
    from maildesk.pipeline import MailContext, Verdict
    from maildesk.screen.bounce import Bounce
    from maildesk.tickets.store.fast import Statements


def record(ctx: MailContext) -> Verdict:
    from maildesk.pipeline import CONTINUE, Action, Verdict

    mail, decision = ctx.parsed, ctx.thread
    assert mail is not None and decision is not None
    verdict = ctx.verdict
    automatic = verdict.kind in AUTOMATIC
    if automatic and decision.ticket_id is None and not verdict.may_open and not ctx.released:
        # an out-of-office answer or a bounce that belongs to no ticket: kept for a person to see
        return Verdict(Action.QUARANTINE, verdict.kind, (*verdict.reasons, "not about any ticket we hold"))
    vendor = ctx.vendor_mail is not None and not automatic
    if vendor and decision.ticket_id is None and not ctx.released:
        # the vendor writes about tickets we dispatched; anything else is for a person to look at
        return Verdict(Action.QUARANTINE, "vendor", ("mail from the vendor about no ticket we dispatched",))
    if (automatic or vendor) and decision.reopen:
        # an auto-reply never reopens a resolved ticket; the vendor's note is for the team to judge
        decision = replace(decision, reopen=False)
    now = naive_utc(ctx.now)
    config = ctx.config
    events: list[dict[str, object]] = []
    sender = (
        contact_for(mail.sender, config, now, ctx.org_ids, ctx.contacts, ctx.sql) if mail.sender else None
    )
    # only a signed reply address makes mail an agent's; an agent's From alone is customer mail
    trusted = ctx.agent_mail is not None and ctx.agent_mail.trusted and not automatic
    is_agent = trusted or (bool(mail.sender and config.agent(mail.sender.email)) and not automatic)
    who = str(mail.sender or "unknown sender")
    kind = verdict.kind if automatic else "agent" if trusted else "vendor" if vendor else "customer"
    text = ctx.agent_mail.text if trusted and ctx.agent_mail is not None else mail.new_text

    if decision.ticket_id is None:
        ticket = _open_ticket(mail, sender, now, ctx.sql)
        ctx.new_ticket = True
        present: set[int] = set()
        events.append(_event(ticket, now, "created", f"from {who} via {ctx.source}"))
        if ctx.forwarded_by is not None:
            note = " ".join(ctx.forward_note.split())[:500]
            events.append(
                _event(ticket, now, "forwarded", f"by {ctx.forwarded_by}" + (f": {note}" if note else ""))
            )
        if decision.follow_up_of is not None:
            old = Ticket.get_by_id(decision.follow_up_of)
            TicketLink.create(source=ticket, target=old, kind="follow-up", created_at=now)
            events.append(_event(ticket, now, "linked", f"follow-up of {ticket_ref(old, config)}"))
            events.append(_event(old, now, "linked", f"continued in {ticket_ref(ticket, config)}"))
        if decision.refused_tag is not None:
            events.append(
                _event(
                    ticket,
                    now,
                    "tag_refused",
                    f"subject tag {config.desk.ticket_prefix}-{decision.refused_tag} ignored: "
                    f"{mail.sender.email if mail.sender else 'the sender'} is not on that ticket",
                )
            )
    else:
        (ticket,) = ctx.sql.get(Ticket, "ticket-by-id", _ticket_by_id, [decision.ticket_id])
        for other_id in decision.merge:
            events.extend(_merge(Ticket.get_by_id(other_id), ticket, config, now))
        if decision.reopen and kind == "customer" and ticket.status == "resolved" and is_confirmation(text):
            # seed 001: the customer confirms it is resolved, so it closes rather than reopens
            ticket.status, ticket.closed_at, ticket.waiting_since = "closed", now, None
            ctx.confirmed = True
            events.append(_event(ticket, now, "closed", f"{who} confirmed it is resolved"))
        elif decision.reopen:
            ticket.status, ticket.closed_at, ticket.waiting_since = "open", None, None
            events.append(_event(ticket, now, "reopened", f"reply from {who}"))
        events.append(
            _event(
                ticket,
                now,
                "message",
                f"{kind if kind != 'customer' else 'reply'} from {who} joined by {decision.how}",
            )
        )
        if not is_agent and not automatic and not vendor:
            events.extend(_settle_requester(ticket, mail, sender, now, ctx.sql))
        present = {row[0] for row in ctx.sql.query("participants", _participants, [ticket.id])}

    message_id = ctx.sql.insert(
        Message,
        {
            "ticket": ticket.id,
            "inbound": ctx.spool_id,
            "message_id": mail.message_id[:990],
            "direction": "in",
            "visibility": "internal"
            if vendor or (trusted and ctx.agent_mail and ctx.agent_mail.internal)
            else "public",
            "kind": kind,
            "from_addr": mail.sender.email if mail.sender else "",
            "from_name": mail.sender.name if mail.sender else "",
            "to": json.dumps([a.email for a in mail.to]),
            "cc": json.dumps([a.email for a in mail.cc]),
            "date": naive_utc(mail.date) if mail.date else None,
            "arrived_at": now,
            "subject": mail.subject,
            "text": text,
            "body": mail.text,
            "defects": json.dumps(list(mail.defects)),
        },
    )
    for ref in dict.fromkeys([*mail.in_reply_to, *mail.references]):
        ctx.sql.insert(MessageReference, {"message": message_id, "ref": ref[:990]})
    for part in mail.attachments:
        _store_attachment(message_id, part, ctx.storage)

    # the sender and everyone else addressed (To, Cc) become participants, except the desk itself
    # (automatic mail adds nobody: a mailer daemon is not a participant)
    newcomers: list[int] = []
    # automatic mail adds nobody (a mailer daemon is no participant), nor does the vendor's:
    # a participant receives what the customer side is sent
    addressed = () if automatic or vendor else (*([mail.sender] if mail.sender else []), *mail.to, *mail.cc)
    for address in addressed:
        if config.is_desk_address(address.email) or config.agent(address.email):
            continue
        contact = (
            sender
            if sender is not None and address.email == sender.email
            else contact_for(address, config, now, ctx.org_ids, ctx.contacts, ctx.sql)
        )
        if contact.id == ticket.requester_id or contact.id in present:
            continue
        present.add(contact.id)
        newcomers.append(contact.id)
        events.append(_event(ticket, now, "participant_added", address.email))
    for contact_id in newcomers:
        ctx.sql.insert(TicketParticipant, {"ticket": ticket.id, "contact": contact_id, "role": "cc"})
    if verdict.kind in ("auto-reply", "bounce", "loop"):
        events.append(_event(ticket, now, verdict.kind, "; ".join(verdict.reasons)[:2000]))
    if ctx.bounce is not None:
        events.extend(_bounced(ctx.bounce, ticket, now))
    if kind == "customer":
        # the whole text part: the extractor drops quoted history itself, and reads the phone
        # from the signature, which new_text has lost (a forward's words are all in new_text)
        if ctx.forwarded_by:
            learned = gather(ticket, mail.subject, mail.new_text)
        else:
            learned = gather(ticket, mail.subject, mail.text, mail.issue_record)
        if learned:
            if ctx.new_ticket:
                ctx.sql.execute("ticket-record", _ticket_record, [ticket.issue_record, ticket.id])
            events.append(_event(ticket, now, "issue_record", f"learned {', '.join(learned)}"))
    for event in events:
        ctx.sql.insert(Event, event)

    if not ctx.new_ticket:
        if not automatic:  # automatic mail is no update: the SLA clock does not restart for it
            ticket.updated_at = ticket.sla_next_at = now  # and the clock looks at it again
        if set(ticket.dirty_fields) - {Ticket.updated_at, Ticket.sla_next_at}:
            ticket.save()
        elif not automatic:
            ctx.sql.execute("touch-ticket", _touch_ticket, [now, now, ticket.id])
    ctx.ticket, ctx.message_pk = ticket, message_id
    return CONTINUE


def _bounced(bounce: Bounce, ticket: Ticket, now: datetime) -> list[dict[str, object]]:
    """Mark contacts whose mail failed for good as undeliverable; one event per failed recipient."""
    events = []
    for failed in bounce.recipients:
        permanence = "permanent" if failed.permanent else "temporary"
        detail = f"{failed.address}: {permanence} failure {failed.status} {failed.diagnostic}".strip()
        events.append(_event(ticket, now, "undeliverable" if failed.permanent else "delayed", detail[:2000]))
        if failed.permanent:
            Contact.update(undeliverable=True).where(Contact.email == failed.address.lower()).execute()
    return events


def _ticket_by_id(_: int) -> Any:
    return Ticket.select().where(Ticket.id == 0)


def _participants(_: int) -> Any:
    return TicketParticipant.select(TicketParticipant.contact).where(TicketParticipant.ticket == 0)


def _ticket_record() -> Any:
    return Ticket.update(issue_record="").where(Ticket.id == 0)


def _touch_ticket() -> Any:
    return Ticket.update(updated_at=datetime(2000, 1, 1), sla_next_at=datetime(2000, 1, 1)).where(
        Ticket.id == 0
    )


def _earliest_customer_message(_: int) -> Any:
    when = fn.COALESCE(Message.date, Message.arrived_at)
    return (
        Message.select(Message.from_addr, when)
        .where((Message.ticket == 0) & (Message.kind == "customer") & (Message.from_addr != ""))
        .order_by(when, Message.id)
        .limit(1)
    )


def _contact_email(_: int) -> Any:
    return Contact.select(Contact.email).where(Contact.id == 0)


def _event(
    ticket: Ticket, at: datetime, kind: str, detail: str, actor: str = "maildesk"
) -> dict[str, object]:
    """An event row, inserted with the others in one statement at the end of the stage."""
    return {"ticket": ticket.id, "at": at, "kind": kind, "detail": detail[:4000], "actor": actor}


def _max_number(_: int) -> Any:
    return Ticket.select(fn.MAX(Ticket.number))


def _open_ticket(mail: ParsedMail, sender: Contact | None, now: datetime, sql: Statements) -> Ticket:
    lock_ticket_numbers(sql.database)  # PostgreSQL: one new ticket at a time takes the next number
    ((highest,),) = sql.query("max-ticket-number", _max_number, [])
    values = {
        "number": (highest or 0) + 1,
        "subject": strip_prefixes(mail.subject) or mail.subject or "(no subject)",
        "subject_key": subject_key(mail.subject),
        "status": "new",
        "requester": sender.id if sender else None,
        "organization": sender.organization_id if sender else None,
        "created_at": now,
        "updated_at": now,
        "sla_next_at": now,  # the SLA clock works out its deadlines on its next pass
    }
    ticket_id = sql.insert(Ticket, values)
    # a model instance without another query: the stage reads these fields back
    return Ticket(id=ticket_id, **values)


def _add_participant(ticket: Ticket, contact: Contact, now: datetime) -> list[dict[str, object]]:
    if ticket.requester_id == contact.id:
        return []
    _, created = TicketParticipant.get_or_create(ticket=ticket, contact=contact)
    return [_event(ticket, now, "participant_added", contact.email)] if created else []


def _settle_requester(
    ticket: Ticket, mail: ParsedMail, sender: Contact | None, now: datetime, sql: Statements
) -> list[dict[str, object]]:
    """The author of the earliest customer message is the requester, whatever order mail arrived in."""
    rows = sql.query("earliest-customer-message", _earliest_customer_message, [ticket.id])
    if not rows:
        return []
    earliest_from, earliest_at = rows[0]
    requester_email: str | None
    if sender is not None and sender.id == ticket.requester_id:
        requester_email = sender.email
    elif ticket.requester_id:
        found = sql.query("contact-email", _contact_email, [ticket.requester_id])
        requester_email = found[0][0] if found else None
    else:
        requester_email = None
    author: Contact | None = None
    if sender is not None and mail.date is not None and naive_utc(mail.date) < naive_utc(earliest_at):
        author = sender
    elif earliest_from != requester_email:
        author = Contact.get_or_none(Contact.email == earliest_from)
    if author is None or author.id == ticket.requester_id:
        return []
    previous = ticket.requester
    ticket.requester = author
    ticket.organization_id = author.organization_id
    if author is sender:
        ticket.subject = strip_prefixes(mail.subject) or ticket.subject
        ticket.subject_key = subject_key(mail.subject) or ticket.subject_key
    TicketParticipant.delete().where(
        (TicketParticipant.ticket == ticket.id) & (TicketParticipant.contact == author.id)
    ).execute()
    events = _add_participant(ticket, previous, now) if previous is not None else []
    events.append(
        _event(
            ticket, now, "requester_changed", f"{author.email} wrote the earliest message (it arrived late)"
        )
    )
    return events


def _merge(source: Ticket, target: Ticket, config: Config, now: datetime) -> list[dict[str, object]]:
    """Fold a ticket that out-of-order arrival split off back into its conversation."""
    if source.id == target.id or source.merged_into_id is not None:
        return []
    events: list[dict[str, object]] = []
    Message.update(ticket=target).where(Message.ticket == source.id).execute()
    for participant in TicketParticipant.select().where(TicketParticipant.ticket == source.id):
        events.extend(_add_participant(target, participant.contact, now))
    if source.requester is not None:
        events.extend(_add_participant(target, source.requester, now))
    source.merged_into = target
    source.status = "merged"
    source.updated_at = now
    source.save()
    events.append(
        _event(source, now, "merged", f"merged into {ticket_ref(target, config)}: the headers link them")
    )
    events.append(
        _event(target, now, "merged", f"{ticket_ref(source, config)} merged in: the headers link them")
    )
    return events


def _store_attachment(message_id: int, part: AttachmentPart, storage: Path) -> None:
    path = ""
    if part.payload is not None:
        # stored under the content hash, never under the sender's file name
        target = storage / "attachments" / part.sha256[:2] / part.sha256
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f"{part.sha256}.{os.getpid()}.tmp")
            tmp.write_bytes(part.payload)
            os.replace(tmp, target)
        path = str(Path("attachments") / part.sha256[:2] / part.sha256)
    Attachment.create(
        message=message_id,
        filename=part.filename,
        content_type=part.content_type,
        size=part.size,
        sha256=part.sha256,
        path=path,
        content_id=part.content_id,
        inline=part.inline,
    )
