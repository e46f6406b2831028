"""Notices to the team, not the customer: new tickets and replies, bounces, urgent tickets, confirmations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from maildesk.clock import naive_utc
from maildesk.config import AgentConfig, Config, TeamConfig
from maildesk.outbox import enqueue
from maildesk.respond.addresses import reply_address, sign
from maildesk.respond.render import build, environment_for
from maildesk.signing import desk_secret
from maildesk.tickets.store.models import Agent, Attachment, Contact, Event, Message, Organization, Ticket
from maildesk.tickets.views import ref as ticket_ref

if TYPE_CHECKING:
    from maildesk.pipeline import MailContext
    from maildesk.routing import Triage
    from maildesk.screen.bounce import FailedRecipient
    from maildesk.tickets.store.fast import Statements


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


def agents_for(ticket: Ticket, config: Config) -> list[AgentConfig]:
    """Who hears of a ticket: its assignee, else its team's agents, else every agent."""
    if ticket.assignee_id is not None:
        row = Agent.get_or_none(Agent.id == ticket.assignee_id)
        chosen = config.agent(row.address) if row is not None and row.active else None
        if chosen is not None:
            return [chosen]
    team = [a for a in config.agents if ticket.team and a.team == ticket.team]
    return team or list(config.agents)


def notify_agents(
    ticket: Ticket,
    config: Config,
    now: datetime,
    *,
    event: str,
    text: str,
    requester: tuple[str, str],
    in_reply_to: str = "",
    attachments: Sequence[str] = (),
    agents: Sequence[AgentConfig] | None = None,
    template: str = "ticket_notice",
    extra: Mapping[str, Any] | None = None,
    sql: Statements | None = None,
    team: TeamConfig | None = None,
) -> list[str]:
    """Send each agent the ticket with their own signed Reply-To; returns who was told.

    One message per agent, because the signature names the agent: a reply proves who wrote
    it. With no agents configured the team's address gets it, without a signed address; so
    does `team`'s shared address, when one is given instead (a courtesy alert).
    """
    chosen = list(agents_for(ticket, config) if agents is None else agents)
    ref = ticket_ref(ticket, config)
    secret = desk_secret(config)
    assignee = Agent.get_or_none(Agent.id == ticket.assignee_id) if ticket.assignee_id else None
    base = {
        "ref": ref, "subject": ticket.subject, "event": event, "requester": requester[1],
        "requester_name": requester[0], "text": text, "issue_type": ticket.issue_type,
        "priority": ticket.priority, "team": ticket.team, "assignee": assignee.name if assignee else "",
        "attachments": list(attachments), **(extra or {}),
    }  # fmt: skip
    targets: list[tuple[str, str, str, str]] = []  # name, address, reply token address, comment address
    ids = {row.address.lower(): row.id for row in Agent.select(Agent.id, Agent.address)}
    for agent in [] if team is not None else chosen:
        agent_id = ids.get(agent.address.lower())
        if agent_id is None:
            continue
        desk = config.desk.addresses[0]
        reply = reply_address(desk, sign(secret, config.desk.ticket_prefix, ticket.number, agent_id))
        comment = reply_address(
            desk, sign(secret, config.desk.ticket_prefix, ticket.number, agent_id, "comment")
        )
        targets.append((agent.name or agent.address, agent.address, reply, comment))
    if not targets:
        teams = (
            [team]
            if team is not None
            else [t for t in config.teams if t.address and t.name == ticket.team]
            or [t for t in config.teams if t.address]
        )
        targets = [(t.name, t.address, "", config.desk.addresses[0]) for t in teams[:1]]
    told = []
    for name, address, reply, comment in targets:
        message = build(
            config, environment_for(config), template,
            {**base, "agent": name, "comment_address": comment},
            to=[(name, address)], subject=f"[{ref}] {ticket.subject}", now=now, ref=ref,
            in_reply_to=in_reply_to, automatic=True, auto_submitted="auto-generated",
            from_name=f"{requester[0] or requester[1]} via {config.desk.name}", reply_to=reply,
        )  # fmt: skip
        enqueue(message, recipients=[address], sender=config.desk.addresses[0], kind="notification",
                automatic=True, now=now, ticket=ticket.id, sql=sql)  # fmt: skip
        told.append(address)
    if told:
        values = {"ticket": ticket.id, "at": naive_utc(now), "kind": "notified", "actor": "maildesk",
                  "detail": f"{template} ({event}) to {', '.join(told)}"}  # fmt: skip
        if sql is not None:
            sql.insert(Event, values)
        else:
            Event.create(**values)
    return told


def tell_agent(
    ticket: Ticket | None,
    config: Config,
    now: datetime,
    agent: AgentConfig,
    template: str,
    context: Mapping[str, Any],
    *,
    subject: str,
    reply_token: bool = True,
    kind: str = "notification",
) -> None:
    """A message to one agent about their own mail (a confirmation, a refusal)."""
    ref = ticket_ref(ticket, config) if ticket is not None else ""
    reply = ""
    row = Agent.get_or_none(Agent.address == agent.address)
    if ticket is not None and reply_token and row is not None:
        token = sign(desk_secret(config), config.desk.ticket_prefix, ticket.number, row.id)
        reply = reply_address(config.desk.addresses[0], token)
    message = build(
        config, environment_for(config), template,
        {"agent": agent.name or agent.address, "ref": ref,
         "subject": ticket.subject if ticket is not None else "", **context},
        to=[(agent.name, agent.address)], subject=subject, now=now, ref=ref, automatic=True,
        auto_submitted="auto-generated", reply_to=reply,
    )  # fmt: skip
    enqueue(message, recipients=[agent.address], sender=config.desk.addresses[0], kind=kind,
            automatic=True, now=now, ticket=ticket.id if ticket is not None else None)  # fmt: skip


def tell_account_manager(
    ticket: Ticket, config: Config, now: datetime, what: str, documents: bool = False
) -> bool:
    """Seed 002: the organisation's account manager hears of a configuration change or a cancellation,
    with the ticket's documents attached when `documents`. False (and an event) when there is none."""
    org = (
        Organization.get_or_none(Organization.id == ticket.organization_id)
        if ticket.organization_id
        else None
    )
    at = naive_utc(now)
    if org is None or not org.account_manager:
        why = f"{what}: no account manager configured for the requester's organisation"
        Event.create(ticket=ticket, at=at, kind="notice_skipped", actor="maildesk", detail=why)
        return False
    ref = ticket_ref(ticket, config)
    contact = Contact.get_or_none(Contact.id == ticket.requester_id) if ticket.requester_id else None
    message = build(
        config, environment_for(config), "account_manager_notice",
        {"ref": ref, "subject": ticket.subject, "organization": org.name,
         "requester": contact.email if contact else "", "what": what},
        to=[("", org.account_manager)], subject=f"[{ref}] {org.name}: {what}", now=now, ref=ref,
        automatic=True, auto_submitted="auto-generated",
    )  # fmt: skip
    attached = []
    if documents:
        for part in (
            Attachment.select().join(Message).where((Message.ticket == ticket.id) & (Attachment.path != ""))
        ):
            path = config.storage.path / part.path
            try:
                data = path.read_bytes()
            except OSError:
                continue
            maintype, _, subtype = (part.content_type or "application/octet-stream").partition("/")
            message.add_attachment(
                data, maintype=maintype, subtype=subtype or "octet-stream", filename=part.filename
            )
            attached.append(part.filename)
    enqueue(message, recipients=[org.account_manager], sender=config.desk.addresses[0], kind="notification",
            automatic=True, now=now, ticket=ticket.id)  # fmt: skip
    files = f" with {', '.join(attached)}" if attached else ""
    Event.create(ticket=ticket, at=at, kind="notified", actor="maildesk",
                 detail=f"account manager {org.account_manager}: {what}{files}")  # fmt: skip
    return True
