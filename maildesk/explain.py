"""`maildesk explain FILE.eml`: every decision the pipeline would make about a message, and why.

The whole pipeline runs against the current database inside a transaction that is rolled
back, with attachments written to a scratch folder that is thrown away, so nothing changes:
not the tickets, not the outbox, not the spool. What it reports comes from the same code
that decides for real (no second implementation to drift): the screening verdict and its
reasons, the agent or vendor identity, which threading rule matched or why none did, the
issue type with its confidence, priority with its reasons, team and assignee (the events the
stages wrote), and every message that would be queued.
"""

from __future__ import annotations

import email
import json
import tempfile
from datetime import datetime
from email.policy import default
from pathlib import Path
from typing import TYPE_CHECKING, Any

from peewee import fn

from maildesk import signing
from maildesk.pipeline import CONTINUE, Action, MailContext
from maildesk.subjects import subject_key, ticket_numbers
from maildesk.threader import _may_use
from maildesk.tickets.store.fast import Statements
from maildesk.tickets.store.models import Event, InboundMail, Message, OutboundMail, Ticket

if TYPE_CHECKING:
    from maildesk.desk import Desk
    from maildesk.parse.message import ParsedMail

_TRIAGE_EVENTS = ("classified", "priority", "routed", "assigned", "assign_skipped", "team_alerted")


def explain_file(desk: Desk, raw: bytes, now: datetime) -> dict[str, Any]:
    config = desk.config
    worker = desk.worker
    last_event = Event.select(fn.MAX(Event.id)).scalar() or 0
    last_mail = OutboundMail.select(fn.MAX(OutboundMail.id)).scalar() or 0
    last_ticket = Ticket.select(fn.MAX(Ticket.number)).scalar() or 0
    stages: list[dict[str, str]] = []
    result: dict[str, Any] = {}
    with (
        tempfile.TemporaryDirectory(prefix="maildesk-explain-") as scratch,
        desk.database.atomic() as transaction,
    ):
        row = InboundMail.create(
            sha256="explain", dedupe_key="explain", size=len(raw), source="explain", received_at=now
        )
        ctx = MailContext(
            spool_id=row.id,
            raw=raw,
            source="explain",
            now=now,
            config=config,
            storage=Path(scratch),  # attachments land here, and go with it
            sql=Statements(desk.database),
            spam_model=worker.spam_model,
            issue_model=worker.text_model("issue-type"),
            team_model=worker.text_model("team"),
            request_model=worker.text_model("request-type"),
            org_ids=dict(worker.org_ids),
            contacts={},
        )
        for stage in worker.stages:
            name = stage.__module__.rpartition(".")[2] + "." + stage.__name__
            verdict = stage(ctx)
            if verdict is not CONTINUE:
                ctx.verdict = verdict
                stages.append({"stage": name, "action": verdict.action.value, "kind": verdict.kind})
            if verdict.action in (Action.QUARANTINE, Action.STOP):
                break
        result = _report(ctx, config.desk.ticket_prefix, last_event, last_mail, last_ticket)
        result["stopped_by"] = stages
        transaction.rollback()
    signing.forget()  # a secret made inside the rolled-back transaction must not outlive it
    return result


def _report(
    ctx: MailContext, prefix: str, last_event: int, last_mail: int, last_ticket: int
) -> dict[str, Any]:
    mail = ctx.parsed
    verdict = ctx.verdict
    out: dict[str, Any] = {
        "message_id": mail.message_id if mail else "",
        "from": mail.sender.email if mail and mail.sender else None,
        "subject": mail.subject if mail else "",
        "screening": {
            "verdict": verdict.kind,
            "action": verdict.action.value,
            "reasons": list(verdict.reasons),
            "spam_score": ctx.spam_score,
        },
    }
    if ctx.agent_mail is not None:
        agent = ctx.agent_mail
        out["agent"] = {"agent": agent.agent.address, "trusted": agent.trusted, "problem": agent.problem,
                        "internal": agent.internal}  # fmt: skip
    if ctx.vendor_mail is not None:
        out["vendor"] = {"ticket": ctx.vendor_mail.ticket_number}
    decision = ctx.thread
    if decision is not None and mail is not None:
        ticket = ctx.ticket
        out["threading"] = {
            "rule": decision.how,
            "ticket": f"{prefix}-{ticket.number}" if ticket is not None else None,
            "new_ticket": ctx.new_ticket,
            "reopens": decision.reopen,
            "follow_up_of": _ref(prefix, decision.follow_up_of),
            "merges": [_ref(prefix, t) for t in decision.merge],
            "why": _why(mail, decision.how, decision.refused_tag, ctx, prefix),
        }
    ticket = ctx.ticket
    if ticket is not None:
        fresh = Ticket.get_or_none(Ticket.id == ticket.id)
        if fresh is not None:
            out["triage"] = {
                "issue_type": fresh.issue_type,
                "type_confidence": fresh.type_confidence,
                "priority": fresh.priority,
                "team": fresh.team or None,
                "assignee": fresh.assignee.address if fresh.assignee is not None else None,
                "status": fresh.status,
            }
        out["decisions"] = [
            {"kind": e.kind, "detail": e.detail}
            for e in Event.select()
            .where((Event.id > last_event) & (Event.ticket == ticket.id))
            .order_by(Event.id)
        ]
        out["stored_as"] = [
            {"kind": m.kind, "visibility": m.visibility}
            for m in Message.select().where((Message.ticket == ticket.id) & (Message.inbound == ctx.spool_id))
        ]
    out["would_send"] = [_outgoing(row) for row in OutboundMail.select().where(OutboundMail.id > last_mail)]
    if ctx.new_ticket:
        out["note"] = f"would open {prefix}-{last_ticket + 1}"
    return out


def _why(mail: ParsedMail, how: str, refused_tag: int | None, ctx: MailContext, prefix: str) -> list[str]:
    """Why the rule that matched matched, or why each stronger rule did not."""
    parents = [*mail.in_reply_to, *mail.references]
    if how == "signed address":
        return ["the mail was sent to a signed reply address, which names the ticket"]
    if how in ("in-reply-to", "references", "child"):
        return [f"a Message-ID in {how} ({len(parents)} referenced) is one we stored or sent"]
    reasons = []
    if parents:
        reasons.append(
            f"none of the {len(parents)} Message-IDs in In-Reply-To/References is one we stored or sent"
        )
    else:
        reasons.append("no In-Reply-To or References header")
    numbers = ticket_numbers(mail.subject, ctx.config.desk.ticket_prefix)
    if how == "tag":
        return [*reasons, "the subject tag names the ticket, and the sender may write to it"]
    if not numbers:
        reasons.append(f"no subject tag [{prefix}-n]")
    for number in numbers:
        ticket = Ticket.get_or_none(Ticket.number == number)
        if ticket is None:
            reasons.append(f"subject tag {prefix}-{number}: no such ticket")
        elif refused_tag == number or not _may_use(
            ticket, mail.sender.email if mail.sender else "", ctx.config, ctx.sql
        ):
            reasons.append(
                f"subject tag {prefix}-{number} ignored: the sender is not its requester, "
                "a participant or a colleague"
            )
    if how == "subject":
        return [*reasons, "an open ticket from the same sender has this subject, within the subject window"]
    key = subject_key(mail.subject)
    if not key:
        reasons.append("the subject is too general to match on")
    elif how == "new":
        reasons.append(
            f"no open ticket from this sender with the subject {key!r} "
            f"within {ctx.config.threading.subject_window}"
        )
    if how == "bounce":
        return ["a delivery report: the ticket of the mail that bounced"]
    return reasons


def _ref(prefix: str, ticket_id: int | None) -> str | None:
    if ticket_id is None:
        return None
    ticket = Ticket.get_or_none(Ticket.id == ticket_id)
    return f"{prefix}-{ticket.number}" if ticket is not None else None


def _outgoing(row: OutboundMail) -> dict[str, Any]:
    message = email.message_from_bytes(bytes(row.data or b""), policy=default)
    return {
        "kind": row.kind,
        "to": list(json.loads(row.recipients)),
        "subject": str(message["Subject"] or ""),
        "automatic": bool(row.automatic),
    }
