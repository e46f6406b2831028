"""Classify and route a new ticket: issue type, priority, team, tier, assignee, urgent alert.

Runs once per ticket, when it is opened (a reply does not re-triage what a person may have
set). The procedure it encodes (seeds 000 and 002): set the issue type; it is urgent when a
customer reports an Incident, when a problem has a bigger impact on their work or production,
or when the customer says so ("believe them in a first instance"); priority organisations are
served first; otherwise first come, first served. Every decision leaves an event with its
reasons, so a person can see why and correct it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from peewee import fn

from maildesk.clock import naive_utc
from maildesk.tickets.statuses import OPEN_STATUSES
from maildesk.tickets.store.models import Agent, Event, Label, Message, Ticket

if TYPE_CHECKING:
    from maildesk.classifier.text import PlainTextModel, TextModel
    from maildesk.config import Config, RoutingRule
    from maildesk.pipeline import MailContext, Verdict
    from maildesk.tickets.store.fast import Statements

PRIORITIES = ("urgent", "high", "normal", "low")
OPEN_STATES = OPEN_STATUSES

# a customer saying it is urgent, in the languages our customers write in
_SAYS_URGENT = re.compile(
    r"\b(urgent|urgently|asap|a\.s\.a\.p|emergency|critical|immediately|right away|dringend|eilt|sofort|"
    r"urgente|urgence|tr[eè]s urgent|pilne|pilnie|spoed|dringend nodig|br[aå]dskande|kiireellinen)\b",
    re.IGNORECASE,
)
_OUTAGE = re.compile(
    r"\b(down|outage|offline|unreachable|not reachable|unavailable|not available|not responding|"
    r"stopped working|nothing works|not working at all|cannot connect|can ?not access|can't access|"
    r"no access|production|prod|standstill|halted|data loss|breach|hacked|ransomware)\b",
    re.IGNORECASE,
)
_MANY_AFFECTED = re.compile(
    r"\b(all (?:of )?(?:our |the )?(?:users|staff|employees|colleagues|customers|clients|stores|shops|sites|"
    r"branches|offices|locations|systems|servers)|every(?:one|body)|no ?one can|nobody can|"
    r"no (?:users?|customers?|clients?|employees?|staff|colleagues?|patients?|drivers?|stores?) "
    r"(?:can|could)|whole "
    r"(?:team|company|office|site|department|building)|entire (?:team|company|office|site|department)|"
    r"(?:[2-9]\d|\d{3,}) (?:users|people|employees|staff|customers|clients|stores|sites|devices))\b",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Triage:
    issue_type: str
    confidence: float | None
    priority: str
    priority_reasons: tuple[str, ...]
    team: str
    tier: int
    team_reason: str
    assignee: str  # agent address, or ""
    assign_reason: str


def run(ctx: MailContext) -> Verdict:
    from maildesk.pipeline import CONTINUE

    mail, ticket = ctx.parsed, ctx.ticket
    if not ctx.new_ticket or mail is None or ticket is None or ctx.verdict.kind != "normal":
        return CONTINUE
    if mail.sender is not None and ctx.config.agent(mail.sender.email):
        return CONTINUE  # an agent's own ticket: they triage it themselves
    text = f"{mail.subject}\n{mail.new_text}"
    triage = decide(ctx.config, text, mail.sender.email if mail.sender else "", ctx.issue_model,
                    ctx.team_model)  # fmt: skip
    apply(ticket, triage, naive_utc(ctx.now), ctx.sql)
    _request_type(ctx, triage.issue_type)
    _labels(ctx, text)
    if triage.priority == "urgent":
        from maildesk.respond.notices import alert_team

        alert_team(ctx, triage)
    return CONTINUE


def _labels(ctx: MailContext, text: str) -> None:
    """[[labels]] rules (seed 002): by organisation, sender domain or keyword."""
    mail, ticket = ctx.parsed, ctx.ticket
    assert mail is not None and ticket is not None
    sender = mail.sender.email if mail.sender else ""
    domain = sender.rpartition("@")[2].lower()
    org = ctx.config.organization_for(sender) if sender else None
    lowered = text.lower()
    now = naive_utc(ctx.now)
    for rule in ctx.config.label_rules:
        if rule.organization and (org is None or org.name != rule.organization):
            continue
        if rule.domains and not any(domain == d or domain.endswith("." + d) for d in rule.domains):
            continue
        if rule.keywords and not any(k in lowered for k in rule.keywords):
            continue
        Label.create(ticket=ticket, kind="label", value=rule.name, source="rule", created_at=now)
        Event.create(ticket=ticket, at=now, kind="labelled", detail=f"{rule.name} (rule)", actor="maildesk")


def _request_type(ctx: MailContext, issue_type: str) -> None:
    """Seed 001's request type, and what it sets going: the account manager, the feedback note."""
    from maildesk.request_types import CONFIGURATION, FEEDBACK, request_type
    from maildesk.respond.notices import tell_account_manager

    mail, ticket = ctx.parsed, ctx.ticket
    assert mail is not None and ticket is not None
    now = naive_utc(ctx.now)
    kind, why = request_type(mail.subject, mail.new_text, issue_type)
    if ctx.request_model is not None:
        # a model trained from the agents' own corrections, believed when it is sure enough
        from maildesk.classifier.text import ticket_text

        (guess,) = ctx.request_model.predict([ticket_text(mail.subject, mail.new_text)])
        if guess.confidence >= ctx.config.classify.min_confidence:
            kind, why = guess.label, f"request-type model ({guess.confidence:.2f}); the rules said {kind}"
    Ticket.update(request_type=kind).where(Ticket.id == ticket.id).execute()
    ticket.request_type = kind
    ticket._dirty.discard("request_type")
    Event.create(ticket=ticket, at=now, kind="request_type", detail=f"{kind}: {why}", actor="maildesk")
    if kind == CONFIGURATION:
        # seed 002: the documents go with the ticket to the organisation's account manager
        tell_account_manager(ticket, ctx.config, ctx.now, "configuration change request", documents=True)
    elif kind == FEEDBACK:
        # seed 001: feedback is documented; the note keeps it with the ticket for the product people
        Message.create(
            ticket=ticket,
            message_id=f"feedback.{ticket.id}.{ctx.spool_id}@maildesk.invalid",
            direction="in",
            visibility="internal",
            kind="system",
            from_addr="",
            from_name="maildesk",
            date=now,
            arrived_at=now,
            subject=f"Feedback: {mail.subject}"[:250],
            text="Feedback recorded: " + " ".join(mail.new_text.split())[:2000],
        )


def decide(
    config: Config,
    text: str,
    sender: str,
    issue_model: TextModel | PlainTextModel | None,
    team_model: TextModel | PlainTextModel | None,
) -> Triage:
    """The triage of a new ticket from its text and sender (read-only but for assignment counts)."""
    from maildesk.classifier.text import ticket_text

    issue_type, confidence = "unclassified", None
    if issue_model is not None:
        (prediction,) = issue_model.predict([ticket_text(*_split(text))])
        confidence = round(prediction.confidence, 4)
        if prediction.confidence >= config.classify.min_confidence:
            issue_type = prediction.label
    org = config.organization_for(sender) if sender else None
    level, reasons = priority(issue_type, text, org.priority if org else False, org.name if org else "")
    rule = _matching_rule(config, issue_type, sender, text)
    team, tier, team_reason = "", 1, ""
    if rule is not None:
        team, tier, team_reason = rule.team, rule.tier, f"rule: {_describe(rule)}"
    elif team_model is not None:
        (guess,) = team_model.predict([text])
        if guess.confidence >= config.classify.team_min_confidence and any(
            t.name == guess.label for t in config.teams
        ):
            team, team_reason = guess.label, f"team model ({guess.confidence:.2f})"
    assignee, assign_reason = "", ""
    if rule is not None and rule.account_manager and org is not None and org.account_manager:
        assignee, assign_reason = org.account_manager, f"account manager of {org.name}"
    elif team and config.assignment != "none":
        assignee, assign_reason = _next_agent(config, team, tier)
    return Triage(issue_type, confidence, level, reasons, team, tier, team_reason, assignee, assign_reason)


def priority(
    issue_type: str, text: str, priority_org: bool, org_name: str = ""
) -> tuple[str, tuple[str, ...]]:
    """The priority and why: urgent, high or normal."""
    reasons: list[str] = []
    urgent = high = False
    if issue_type == "Incident":
        urgent = True
        reasons.append("issue type Incident")
    said = _SAYS_URGENT.search(text)
    if said:
        urgent = True
        reasons.append(f'the customer says "{said.group(0)}"')
    outage = _OUTAGE.search(text)
    many = _MANY_AFFECTED.search(text)
    if outage and many:
        urgent = True
        reasons.append(f'outage ("{outage.group(0)}") affecting many ("{many.group(0)}")')
    elif outage or many:
        high = True
        found = outage or many
        assert found is not None
        reasons.append(f'{"outage language" if outage else "many people affected"} ("{found.group(0)}")')
    if priority_org:
        high = True
        reasons.append(f"priority organisation {org_name}".strip())
    level = "urgent" if urgent else "high" if high else "normal"
    return level, tuple(reasons) or ("first come, first served",)


def apply(ticket: Ticket, triage: Triage, now: datetime, sql: Statements) -> None:
    """Write the triage to the ticket, with one event per decision (pre-rendered statements)."""
    ticket.issue_type, ticket.type_confidence = triage.issue_type, triage.confidence
    ticket.priority, ticket.team = triage.priority, triage.team
    events = [
        (
            "classified",
            f"{triage.issue_type}" + (f" ({triage.confidence:.2f})" if triage.confidence is not None else ""),
        ),
        ("priority", f"{triage.priority}: {'; '.join(triage.priority_reasons)}"),
    ]
    if triage.team:
        events.append(("routed", f"{triage.team}, tier {triage.tier}: {triage.team_reason}"))
    if triage.assignee:
        agent = Agent.get_or_none(Agent.address == triage.assignee)
        if agent is not None:
            ticket.assignee = agent
            events.append(("assigned", f"{triage.assignee}: {triage.assign_reason}"))
        else:
            events.append(
                ("assign_skipped", f"{triage.assignee} is not a configured agent ({triage.assign_reason})")
            )
    sql.execute(
        "triage-ticket",
        _triage_update,
        [
            ticket.issue_type,
            ticket.type_confidence,
            ticket.priority,
            ticket.team,
            ticket.assignee_id,
            ticket.id,
        ],
    )
    ticket._dirty.clear()  # written above: a later save() must not write it again
    for kind, detail in events:
        sql.insert(
            Event,
            {"ticket": ticket.id, "at": now, "kind": kind, "detail": detail[:4000], "actor": "maildesk"},
        )


def _triage_update() -> Any:
    return Ticket.update(issue_type="x", type_confidence=0.0, priority="x", team="x", assignee=0).where(
        Ticket.id == 0
    )


def _split(text: str) -> tuple[str, str]:
    subject, _, body = text.partition("\n")
    return subject, body


def _matching_rule(config: Config, issue_type: str, sender: str, text: str) -> RoutingRule | None:
    domain = sender.rpartition("@")[2].lower()
    org = config.organization_for(sender) if sender else None
    lowered = text.lower()
    for rule in config.routing:
        if rule.organization and (org is None or org.name != rule.organization):
            continue
        if rule.domains and not any(domain == d or domain.endswith("." + d) for d in rule.domains):
            continue
        if rule.issue_types and issue_type not in rule.issue_types:
            continue
        if rule.keywords and not any(k in lowered for k in rule.keywords):
            continue
        return rule
    return None


def _describe(rule: RoutingRule) -> str:
    parts = [
        f"organisation {rule.organization}" if rule.organization else "",
        f"domain {', '.join(rule.domains)}" if rule.domains else "",
        f"type {', '.join(rule.issue_types)}" if rule.issue_types else "",
        f"keyword {', '.join(rule.keywords)}" if rule.keywords else "",
    ]
    return " and ".join(p for p in parts if p) or "default"


def _next_agent(config: Config, team: str, tier: int) -> tuple[str, str]:
    """Round robin (the agent who was given a ticket longest ago) or least open tickets."""
    members = [a.address.lower() for a in config.agents if a.team == team and a.tier <= tier] or [
        a.address.lower() for a in config.agents if a.team == team
    ]
    if not members:
        return "", ""
    agents = {
        a.address.lower(): a
        for a in Agent.select().where(fn.LOWER(Agent.address).in_(members) & Agent.active)
    }
    if not agents:
        return "", ""
    if config.assignment == "least-open":
        open_counts: dict[int, int] = {}
        query = (
            Ticket.select(Ticket.assignee, fn.COUNT(Ticket.id))
            .where(Ticket.assignee.in_([a.id for a in agents.values()]) & Ticket.status.in_(OPEN_STATES))
            .group_by(Ticket.assignee)
        )
        # peewee's stubs do not know that tuples() yields tuples
        for agent_id, count in cast("list[tuple[int, int]]", list(query.tuples())):
            open_counts[int(agent_id)] = int(count)
        chosen = min(
            members,
            key=lambda m: (open_counts.get(agents[m].id, 0), members.index(m)) if m in agents else (10**9, 0),
        )
        return chosen, f"least open tickets in {team} ({open_counts.get(agents[chosen].id, 0)})"
    latest: dict[int, int] = {}
    query = (
        Ticket.select(Ticket.assignee, fn.MAX(Ticket.id))
        .where(Ticket.assignee.in_([a.id for a in agents.values()]))
        .group_by(Ticket.assignee)
    )
    for agent_id, last in cast("list[tuple[int, int]]", list(query.tuples())):
        latest[int(agent_id)] = int(last)
    chosen = min(
        (m for m in members if m in agents), key=lambda m: (latest.get(agents[m].id, 0), members.index(m))
    )
    return chosen, f"round robin in {team}"
