"""Agents answer from their mail client: replies relayed to the customer, command lines applied.

Two stages. `identify` runs before threading: mail sent to a signed reply address by the
agent it was given to is trusted (identity.py), and its ticket is the one the signature
names. `run` runs after the message is stored: command lines are applied (commands.py), the
rest of the text is relayed to the customer side unless it is an internal note, and the
agent gets a confirmation with what each command did or why it did not. Untrusted mail that
claims an agent's From runs nothing and reaches nobody; the agent is told.

Every command, applied or refused, leaves an event on the ticket.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from maildesk.agents.commands import COMMANDS, INTERNAL, Act, Outcome, commands_in, set_issue_type, set_team
from maildesk.agents.identity import AgentMail, VendorMail, identify, is_vendor, vendor_token
from maildesk.clock import naive_utc
from maildesk.respond import relay
from maildesk.respond.notices import notify_agents, tell_account_manager, tell_agent
from maildesk.signing import desk_secret
from maildesk.sla.overflow import tell_vendor
from maildesk.tickets.statuses import AWAITING_CUSTOMER, OWED
from maildesk.tickets.store.models import Event, Message, OutboundMail

if TYPE_CHECKING:
    from maildesk.pipeline import MailContext, Verdict

__all__ = ["COMMANDS", "AgentMail", "identify_stage", "run", "set_issue_type", "set_team"]

log = logging.getLogger(__name__)

# which command's mail the requester gets when the agent wrote no text: the weightiest one
_TEMPLATE_ORDER = ("closing", "resolution", "request_info", "escalation", "status_update")
_STATUS_COMMANDS = frozenset(
    {"#status", "#resolve", "#close", "#needinfo", "#ask", "#spam", "#notspam", "#ham"}
)
_UNVERIFIED_NOTICES_PER_HOUR = 3  # a forger cannot flood the agent they imitate


def identify_stage(ctx: MailContext) -> Verdict:
    from maildesk.pipeline import CONTINUE

    mail = ctx.parsed
    if mail is None or ctx.verdict.kind != "normal" or ctx.bounce is not None:
        return CONTINUE  # an agent's out-of-office answer to a notification acts on nothing
    if mail.sender is None:
        return CONTINUE
    secret = desk_secret(ctx.config)
    if is_vendor(mail.sender.email, ctx.config):
        ctx.vendor_mail = vendor_token(mail, ctx.config, secret) or VendorMail(None)
        return CONTINUE
    ctx.agent_mail = identify(mail, ctx.config, secret)
    return CONTINUE


def run(ctx: MailContext) -> Verdict:
    from maildesk.pipeline import CONTINUE

    mail, ticket, agent = ctx.parsed, ctx.ticket, ctx.agent_mail
    if mail is None or ticket is None or agent is None or ctx.verdict.kind != "normal":
        return CONTINUE
    now = naive_utc(ctx.now)
    if not agent.trusted:
        _refuse(ctx, agent)
        return CONTINUE
    found = commands_in(mail.new_text)
    internal = agent.internal
    results: list[tuple[str, Outcome]] = []
    for name, argument in found:
        given = f"#{name} {argument}".strip()
        if name == "important" and ticket.vendor == "dispatched":
            tell_vendor(
                ticket, ctx.config, now, "vendor_note", agent.text, agent.agent.name or agent.agent.address
            )
            results.append((given, Outcome(True, "kept as an internal note and copied to the vendor")))
            continue
        if name in INTERNAL:
            results.append((given, Outcome(True, "kept as an internal note")))
            continue
        command = COMMANDS.get(name)
        if command is None:
            outcome = Outcome(False, f"unknown command; use {', '.join(sorted(COMMANDS))} or #internal")
            Event.create(
                ticket=ticket, at=now, kind="command_unknown", detail=given, actor=agent.agent.address
            )
        else:
            outcome = command(Act(ticket, argument, agent.agent.address, now, ctx.config))
            Event.create(
                ticket=ticket, at=now, kind="command" if outcome.ok else "command_failed",
                detail=f"#{name}: {outcome.detail}"[:4000], actor=agent.agent.address,
            )  # fmt: skip
        results.append((given, outcome))
    if ticket.status == "new":
        ticket.status = "open"
    ticket.sla_next_at = now  # deadlines may have moved: the SLA clock looks again
    ticket.save()

    text = agent.text
    sent = None
    if not internal and ticket.status != "spam":
        name = agent.agent.name or agent.agent.address
        texted = next((o for _, o in results if o.ok and o.text_as), None)
        if texted is not None:  # a canned answer or a resolution carries the agent's own words
            context = {**texted.context, texted.text_as: text}
            sent = relay.send(ticket, ctx.config, texted.tell_customer, context, now=now, agent_name=name,
                              kind="reply")  # fmt: skip
        elif text.strip():
            # seed 003: a change of priority is told to the requester, here with the agent's answer
            notes = [f"We now handle your request at {o.context['priority']} priority."
                     for _, o in results if o.ok and o.tell_customer == "status_update"]  # fmt: skip
            sent = relay.send(ticket, ctx.config, "agent_reply", {"text": text, "notes": notes}, now=now,
                              agent_name=name, kind="reply")  # fmt: skip
        else:
            chosen = _customer_template(results)
            if chosen is not None:
                sent = relay.send(ticket, ctx.config, chosen.tell_customer, dict(chosen.context), now=now,
                                  agent_name=name, kind="reply")  # fmt: skip
        steered = any(o.ok and given.split(" ")[0] in _STATUS_COMMANDS for given, o in results)
        if sent is not None and not steered and ticket.status in OWED:
            # answered: the customer's turn (seed 002), unless the agent said otherwise
            ticket.status = AWAITING_CUSTOMER
            ticket.save()
        if sent is None and (text.strip() or _customer_template(results)):
            Event.create(ticket=ticket, at=now, kind="reply_not_sent", actor=agent.agent.address,
                         detail="no deliverable requester or participant")  # fmt: skip
    _tell_others(ctx, results)
    if found or (not internal and sent is None):
        _confirm(ctx, agent, results, sent, internal, bool(text.strip()))
    return CONTINUE


def _customer_template(results: list[tuple[str, Outcome]]) -> Outcome | None:
    wanted = [o for _, o in results if o.ok and o.tell_customer]
    wanted.sort(
        key=lambda o: _TEMPLATE_ORDER.index(o.tell_customer) if o.tell_customer in _TEMPLATE_ORDER else 99
    )
    return wanted[0] if wanted else None


def _tell_others(ctx: MailContext, results: list[tuple[str, Outcome]]) -> None:
    """A new assignee gets the ticket; a new tier gets the escalation notice."""
    mail, ticket, agent = ctx.parsed, ctx.ticket, ctx.agent_mail
    assert mail is not None and ticket is not None and agent is not None
    now = naive_utc(ctx.now)
    requester = ticket.requester
    who = (requester.name, requester.email) if requester is not None else ("", "")
    latest = (
        Message.select(Message.text)
        .where((Message.ticket == ticket.id) & (Message.kind == "customer"))
        .order_by(Message.id.desc())
        .first()
    )
    by = agent.agent.name or agent.agent.address
    for _, outcome in results:
        if not outcome.ok or not outcome.notify:
            continue
        if outcome.notify == ("account-manager",):
            tell_account_manager(ticket, ctx.config, ctx.now, outcome.detail)
            continue
        targets = [a for a in (ctx.config.agent(x) for x in outcome.notify) if a is not None]
        escalated = outcome.notice == "escalation_notice"
        notify_agents(
            ticket, ctx.config, now, event="escalated" if escalated else "assigned",
            text=latest.text if latest else "", requester=who, agents=targets, template=outcome.notice,
            extra={**outcome.context, "by": by} if escalated else None,
        )  # fmt: skip


def _confirm(
    ctx: MailContext, agent: AgentMail, results: list[tuple[str, Outcome]], sent: relay.Sent | None,
    internal: bool, wrote: bool,
) -> None:  # fmt: skip
    ticket = ctx.ticket
    assert ticket is not None
    lines = [{"command": given, "ok": o.ok, "detail": o.detail} for given, o in results]
    if not internal and sent is None and not wrote and not any(o.tell_customer for _, o in results):
        lines.append({"command": "(reply)", "ok": True, "detail": "nothing was sent to the customer"})
    failed = sum(1 for line in lines if not line["ok"])
    ref = ctx.ticket_ref
    tell_agent(
        ticket, ctx.config, ctx.now, agent.agent, "agent_confirmation",
        {"relayed_to": list(sent.to) if sent else [], "internal": internal, "results": lines},
        subject=f"[{ref}] {'Done' if not failed else f'{failed} command(s) failed'}: {ticket.subject}",
    )  # fmt: skip


def _refuse(ctx: MailContext, agent: AgentMail) -> None:
    """Untrusted mail in an agent's name: an event, and a notice to the real agent (rate-limited)."""
    mail, ticket = ctx.parsed, ctx.ticket
    assert mail is not None and ticket is not None and mail.sender is not None
    now = naive_utc(ctx.now)
    Event.create(
        ticket=ticket, at=now, kind="agent_unverified", actor="maildesk",
        detail=f"{mail.sender.email}: {agent.problem}; no command run, nothing relayed"[:4000],
    )  # fmt: skip
    if ctx.new_ticket and not commands_in(mail.new_text):
        return  # an agent opening a ticket for a customer: nothing was refused
    since = now - timedelta(hours=1)
    recent = OutboundMail.select().where(
        (OutboundMail.recipient == agent.agent.address.lower())
        & (OutboundMail.kind == "refusal")
        & (OutboundMail.created_at >= since)
    )
    if recent.count() >= _UNVERIFIED_NOTICES_PER_HOUR:
        return
    ref = ctx.ticket_ref
    tell_agent(
        ticket, ctx.config, ctx.now, agent.agent, "unverified_notice",
        {"sender": mail.sender.email, "reason": agent.problem},
        subject=f"[{ref}] Not run: mail in your name without a signed reply address", reply_token=False,
        kind="refusal",
    )  # fmt: skip
