"""Notices to the team, not the customer: the urgent-ticket alert (bounce notices: respond/__init__)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maildesk.clock import naive_utc
from maildesk.outbox import enqueue
from maildesk.respond.render import build, environment
from maildesk.tickets.store.models import Event

if TYPE_CHECKING:
    from maildesk.pipeline import MailContext
    from maildesk.routing import Triage


def alert_team(ctx: MailContext, triage: Triage) -> None:
    """Mail the ticket's team (else every team address, else the lead) at once about an urgent ticket."""
    ticket, config, mail = ctx.ticket, ctx.config, ctx.parsed
    assert ticket is not None and mail is not None
    teams = [t for t in config.teams if t.address and t.name == triage.team] or [
        t for t in config.teams if t.address
    ]
    to = [(t.name, t.address) for t in teams] or ([("Lead", config.desk.lead)] if config.desk.lead else [])
    now = naive_utc(ctx.now)
    if not to:
        Event.create(ticket=ticket, at=now, kind="alert_skipped", detail="no team address", actor="maildesk")
        return
    ref = ctx.ticket_ref
    message = build(
        config,
        environment(config),
        "urgent_alert",
        {
            "team": teams[0].name if teams else "team",
            "ref": ref,
            "subject": ticket.subject,
            "requester": mail.sender.email if mail.sender else "unknown",
            "issue_type": triage.issue_type,
            "reasons": "; ".join(triage.priority_reasons),
            "assignee": triage.assignee,
        },
        to=to,
        subject=f"[{ref}] URGENT: {ticket.subject}",
        now=ctx.now,
        ref=ref,
        automatic=True,
    )
    enqueue(
        message,
        recipients=[address for _, address in to],
        sender=config.desk.addresses[0],
        kind="alert",
        automatic=True,
        now=ctx.now,
        ticket=ticket.id,
    )
    Event.create(
        ticket=ticket,
        at=now,
        kind="team_alerted",
        detail=f"urgent: told {', '.join(a for _, a in to)}",
        actor="maildesk",
    )
