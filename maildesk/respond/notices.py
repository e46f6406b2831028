"""Notices to the team, not the customer: a permanent bounce, an urgent ticket."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from maildesk.clock import naive_utc
from maildesk.outbox import enqueue
from maildesk.respond.render import build, environment_for
from maildesk.tickets.store.models import Event

if TYPE_CHECKING:
    from maildesk.pipeline import MailContext
    from maildesk.routing import Triage
    from maildesk.screen.bounce import FailedRecipient


def alert_team(ctx: MailContext, triage: Triage) -> None:
    """Mail the ticket's team at once about an urgent ticket."""
    mail = ctx.parsed
    assert mail is not None
    notify_team(
        ctx,
        triage.team,
        "urgent_alert",
        {
            "requester": mail.sender.email if mail.sender else "unknown",
            "issue_type": triage.issue_type,
            "reasons": "; ".join(triage.priority_reasons),
            "assignee": triage.assignee,
        },
        subject="URGENT",
        kind="alert",
        done=("team_alerted", "urgent"),
        skipped="alert_skipped",
    )


def tell_team_of_bounce(ctx: MailContext, failed: list[FailedRecipient]) -> None:
    """A permanent bounce: the team is told the customer cannot be reached by mail."""
    assert ctx.ticket is not None
    notify_team(
        ctx,
        ctx.ticket.team,
        "bounce_notice",
        {"recipients": failed},
        subject="Undeliverable",
        kind="notification",
        done=("team_notified", f"undeliverable {', '.join(r.address for r in failed)}"),
        skipped="notice_skipped",
    )


def notify_team(
    ctx: MailContext,
    team: str,
    template: str,
    context: Mapping[str, Any],
    *,
    subject: str,
    kind: str,
    done: tuple[str, str],
    skipped: str,
) -> None:
    """Queue `template` for `team`'s address (else every team address, else the lead); log an event."""
    ticket, config = ctx.ticket, ctx.config
    assert ticket is not None
    teams = [t for t in config.teams if t.address and t.name == team] or [
        t for t in config.teams if t.address
    ]
    to = [(t.name, t.address) for t in teams] or ([("Lead", config.desk.lead)] if config.desk.lead else [])
    now = naive_utc(ctx.now)
    if not to:
        Event.create(ticket=ticket, at=now, kind=skipped, detail="no team address", actor="maildesk")
        return
    ref = ctx.ticket_ref
    message = build(
        config,
        environment_for(config),
        template,
        {"team": teams[0].name if teams else "team", "ref": ref, "subject": ticket.subject, **context},
        to=to,
        subject=f"[{ref}] {subject}: {ticket.subject}",
        now=ctx.now,
        ref=ref,
        automatic=True,
    )
    enqueue(
        message,
        recipients=[address for _, address in to],
        sender=config.desk.addresses[0],
        kind=kind,
        automatic=True,
        now=ctx.now,
        ticket=ticket.id,
    )
    event, detail = done
    Event.create(
        ticket=ticket,
        at=now,
        kind=event,
        detail=f"{detail}: told {', '.join(a for _, a in to)}",
        actor="maildesk",
    )
