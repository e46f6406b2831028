"""Respond stage: the acknowledgement of a new ticket, written to the outbox, never sent from here.

The acknowledgement goes once per ticket, to the person who opened it, and only when the
policy allows (policy.py). It is recorded on the ticket as an outgoing message and an event,
and queued in the same transaction, so it is sent exactly when the ticket exists.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from maildesk.clock import naive_utc
from maildesk.outbox import enqueue
from maildesk.respond import policy, relay
from maildesk.respond.notices import notify_agents, tell_team_of_bounce
from maildesk.respond.render import build, environment_for
from maildesk.tickets.statuses import AWAITING_CUSTOMER, AWAITING_SUPPORT
from maildesk.tickets.store.db import connection_lost
from maildesk.tickets.store.models import Event, Message

if TYPE_CHECKING:
    from maildesk.config import Config
    from maildesk.pipeline import MailContext, Verdict

log = logging.getLogger(__name__)


def run(ctx: MailContext) -> Verdict:
    from maildesk.pipeline import CONTINUE

    mail, ticket = ctx.parsed, ctx.ticket
    if ctx.bounce is not None and ticket is not None:
        failed = [r for r in ctx.bounce.recipients if r.permanent]
        if failed:
            tell_team_of_bounce(ctx, failed)
        return CONTINUE
    if mail is None or ticket is None or ctx.verdict.kind != "normal":
        return CONTINUE  # automatic mail is never answered; its event on the ticket says what it was
    if ctx.agent_mail is not None:
        return CONTINUE  # an agent's mail (agents.run answered it), or mail in an agent's name
    if ctx.confirmed:
        relay.send(ticket, ctx.config, "closing", {"reason": "confirmed", "resolution": ""},
                   now=naive_utc(ctx.now), agent_name="", kind="notification", automatic=True)  # fmt: skip
    if ticket.status != "spam":
        _tell_agents(ctx)
    if ctx.vendor_mail is not None:
        return CONTINUE  # the vendor is never acknowledged
    if not (ctx.new_ticket and ctx.config.respond.acknowledge) or mail.sender is None:
        return CONTINUE
    reason = policy.refusal(mail.sender.email, ctx.config, ctx.now)
    if reason is not None:
        ctx.sql.insert(
            Event,
            {"ticket": ticket.id, "at": naive_utc(ctx.now), "kind": "acknowledgement_skipped",
             "detail": reason[:4000], "actor": "maildesk"},
        )  # fmt: skip
        return CONTINUE
    try:
        # a savepoint of its own: an acknowledgement that cannot be made must not cost the ticket
        with ticket._meta.database.atomic():
            _acknowledge(ctx)
    except Exception as exc:
        if connection_lost(ticket._meta.database):
            raise  # the database went away: the whole message is retried, not this part dropped
        log.exception("acknowledgement for %s failed", ctx.ticket_ref, extra=ctx.log_extra)
        Event.create(
            ticket=ticket,
            at=naive_utc(ctx.now),
            kind="acknowledgement_failed",
            detail=f"{type(exc).__name__}: {exc}"[:2000],
            actor="maildesk",
        )
    return CONTINUE


def _tell_agents(ctx: MailContext) -> None:
    """The ticket's agents get the customer's words, with their own signed reply address."""
    mail, ticket = ctx.parsed, ctx.ticket
    assert mail is not None and ticket is not None
    if not ctx.new_ticket and ticket.status == AWAITING_CUSTOMER and ctx.vendor_mail is None:
        # the customer answered: the team owes the next move (seed 002's "awaiting support")
        ticket.status, ticket.waiting_since = AWAITING_SUPPORT, None
        ticket.save()
    who = (mail.sender.name, mail.sender.email) if mail.sender else ("", "an unreadable sender")
    try:
        with ticket._meta.database.atomic():
            if ctx.new_ticket:
                _courtesy_alerts(ctx, who)
            notify_agents(
                ticket, ctx.config, naive_utc(ctx.now),
                event="vendor" if ctx.vendor_mail else "new" if ctx.new_ticket else "reply",
                text=mail.new_text,
                requester=who,
                in_reply_to=mail.message_id, attachments=[a.filename for a in mail.attachments],
            )  # fmt: skip
    except Exception as exc:
        if connection_lost(ticket._meta.database):
            raise
        log.exception("notifying agents of %s failed", ctx.ticket_ref, extra=ctx.log_extra)
        Event.create(ticket=ticket, at=naive_utc(ctx.now), kind="notification_failed",
                     detail=f"{type(exc).__name__}: {exc}"[:2000], actor="maildesk")  # fmt: skip


def _courtesy_alerts(ctx: MailContext, who: tuple[str, str]) -> None:
    """Teams set to hear of every new ticket get each one (seed 000), other than their own."""
    ticket, mail = ctx.ticket, ctx.parsed
    assert ticket is not None and mail is not None
    for team in ctx.config.teams:
        if team.every_ticket and team.address and team.name != ticket.team:
            notify_agents(ticket, ctx.config, naive_utc(ctx.now), event="courtesy", text=mail.new_text,
                          requester=who, team=team)  # fmt: skip


def _acknowledge(ctx: MailContext) -> None:
    mail, ticket = ctx.parsed, ctx.ticket
    assert mail is not None and mail.sender is not None and ticket is not None
    now = naive_utc(ctx.now)
    ref = ctx.ticket_ref
    subject = f"[{ref}] {mail.subject or '(no subject)'}"
    message = build(
        ctx.config,
        environment_for(ctx.config),
        "acknowledgement",
        {
            "name": mail.sender.name,
            "desk": ctx.config.desk.name,
            "subject": mail.subject or "(no subject)",
            "ref": ref,
            "promise": _promise(ctx.config, ticket.priority),
        },
        to=[(mail.sender.name, mail.sender.email)],
        subject=subject,
        now=ctx.now,
        ref=ref,
        in_reply_to=mail.message_id,
        references=mail.references,
        automatic=True,
        reply_to=ctx.config.desk.addresses[0],
    )
    row = enqueue(
        message,
        recipients=[mail.sender.email],
        sender=ctx.config.desk.addresses[0],
        kind="acknowledgement",
        automatic=True,
        now=ctx.now,
        ticket=ticket.id,
        sql=ctx.sql,
    )
    Message.create(
        ticket=ticket,
        message_id=row.message_id,
        direction="out",
        visibility="public",
        kind="system",
        from_addr=ctx.config.desk.addresses[0],
        from_name=ctx.config.desk.name,
        to=json.dumps([mail.sender.email]),
        date=now,
        arrived_at=now,
        subject=message["Subject"],
        text=message.get_body(("plain",)).get_content(),  # type: ignore[union-attr]
    )
    Event.create(
        ticket=ticket, at=now, kind="acknowledged", detail=f"to {mail.sender.email}", actor="maildesk"
    )


def _promise(config: Config, priority: str) -> str:
    hours = config.sla.first_response_for(priority).total_seconds() / 3600
    if hours < 1:
        return f"within {int(hours * 60)} business minutes"
    return f"within {hours:g} business hour{'s' if hours != 1 else ''}"
