"""What is due, breached, unanswered and unattended: `maildesk report sla` and the lead's digest.

Read-only. Deadlines are those the clock keeps (clock.py): first response and unclaimed in
business time from the ticket's creation, no update in wall-clock time from its last update.
Open tickets are read once, column by column, so the report stays a single scan however many
tickets are open.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from maildesk.clock import naive_utc
from maildesk.config import Config
from maildesk.sla.calendar import BusinessCalendar
from maildesk.sla.clock import OPEN
from maildesk.tickets.statuses import OWED
from maildesk.tickets.store.models import Agent, Ticket


@dataclass(frozen=True)
class Deadline:
    ref: str
    subject: str
    priority: str
    team: str
    assignee: str | None
    deadline: str  # first_response, unclaimed, update
    due_at: str
    breached_at: str | None = None


@dataclass(frozen=True)
class SlaReport:
    now: str
    due: list[Deadline]
    breached: list[Deadline]
    unanswered: list[Deadline]
    unattended: list[Deadline]

    def as_dict(self) -> dict[str, object]:
        return {
            "now": self.now,
            "due": [asdict(d) for d in self.due],
            "breached": [asdict(d) for d in self.breached],
            "unanswered": [asdict(d) for d in self.unanswered],
            "unattended": [asdict(d) for d in self.unattended],
        }


def _iso(at: datetime) -> str:
    return naive_utc(at).strftime("%Y-%m-%dT%H:%M:%SZ")


def sla_report(config: Config, now: datetime, within: timedelta = timedelta(hours=24)) -> SlaReport:
    """Deadlines of open tickets: coming within `within`, already breached, and the two lists."""
    at = naive_utc(now)
    calendar = BusinessCalendar(config.hours)
    agents = {a.id: a.address for a in Agent.select(Agent.id, Agent.address)}
    rows = (
        Ticket.select(
            Ticket.number, Ticket.subject, Ticket.priority, Ticket.team, Ticket.assignee, Ticket.status,
            Ticket.created_at, Ticket.updated_at, Ticket.first_response_at, Ticket.first_response_due,
            Ticket.vendor,
        )
        .where(Ticket.status.in_(OPEN) & Ticket.merged_into.is_null())
        .order_by(Ticket.created_at, Ticket.id)
    )  # fmt: skip
    due: list[Deadline] = []
    breached: list[Deadline] = []
    unanswered: list[Deadline] = []
    unattended: list[Deadline] = []
    for t in rows.iterator():
        assignee = agents.get(t.assignee_id) if t.assignee_id else None

        def deadline(kind: str, when: datetime, t: Ticket = t, assignee: str | None = assignee) -> Deadline:
            late = when <= at
            return Deadline(
                f"{config.desk.ticket_prefix}-{t.number}", t.subject, t.priority, t.team, assignee, kind,
                _iso(when), _iso(when) if late else None,
            )  # fmt: skip

        found = []
        if t.first_response_at is None and t.status in OWED:
            when = t.first_response_due or naive_utc(
                calendar.add(t.created_at, config.sla.first_response_for(t.priority))
            )
            item = deadline("first_response", when)
            unanswered.append(item)
            found.append(item)
        if t.assignee_id is None and t.status in OWED and t.vendor != "dispatched":
            found.append(
                deadline("unclaimed", naive_utc(calendar.add(t.created_at, config.sla.unclaimed_alert)))
            )
        update = deadline("update", t.updated_at + config.sla.no_update)
        found.append(update)
        if update.breached_at is not None:
            unattended.append(update)
        for item in found:
            if item.breached_at is not None:
                breached.append(item)
            elif datetime.strptime(item.due_at, "%Y-%m-%dT%H:%M:%SZ") <= at + within:
                due.append(item)
    due.sort(key=lambda d: d.due_at)
    breached.sort(key=lambda d: d.due_at)
    return SlaReport(_iso(at), due, breached, unanswered, unattended)
