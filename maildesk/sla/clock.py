"""The SLA clock: one pass looks at every ticket whose time has come, and acts once.

Tickets carry `sla_next_at`, the earliest instant anything can fall due for them; every
update sets it to "now", and each pass works out the deadlines of the tickets it looks at
and writes the next instant back. So a pass reads only the tickets that are due (an index
range, however many are open), and a pass with nothing due writes nothing. What a pass
does is recorded in `SlaMark` under the occasion it is for, so a reminder, an escalation
or a dispatch happens once per occasion even if passes overlap or repeat.

The rules, from the seeds: first response within `sla.first_response` business time
(a breach is an event and, with `escalate_on_breach`, moves the ticket up a tier); a ticket
unclaimed for `sla.unclaimed_alert` alerts every agent of its team; one without update for
`sla.no_update` reminds its assignee; urgent and high tickets remind the assignee to send the
customer a status update every `sla.status_update`; overflow to the vendor after hours, when
unclaimed past `vendor.unclaimed_after`, when the open queue is over `vendor.max_open`, or on
`#vendor`; closing after `sla.confirm_within` business days without an answer to a resolution,
or after two requests for missing information went unanswered (seed 001).
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from peewee import Database, fn

from maildesk.clock import naive_utc
from maildesk.config import Config
from maildesk.respond import relay
from maildesk.respond.notices import agents_for, notify_agents
from maildesk.sla.calendar import BusinessCalendar
from maildesk.sla.overflow import dispatch
from maildesk.tickets.store.models import Contact, Event, OutboundMail, SlaMark, Ticket

log = logging.getLogger(__name__)

OPEN = ("new", "open", "pending")
WATCHED = (*OPEN, "resolved")
TIERS = {2: "our senior engineers", 3: "the head of IT"}
BATCH = 500


@dataclass
class PassResult:
    looked_at: int = 0
    actions: collections.Counter[str] = field(default_factory=collections.Counter)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        return {"looked_at": self.looked_at, "actions": dict(self.actions), "seconds": round(self.seconds, 3)}


def run_pass(config: Config, database: Database, now: datetime) -> PassResult:
    """One pass of the clock at `now`."""
    started = time.perf_counter()
    result = PassResult()
    at = naive_utc(now)
    calendar = BusinessCalendar(config.hours)
    with database.connection_context():
        queue: list[int] = []  # the team's open queue (without what the vendor holds), kept as tickets go
        if config.vendor.address:
            queue.append(
                Ticket.select()
                .where(
                    Ticket.status.in_(OPEN)
                    & Ticket.merged_into.is_null()
                    & (Ticket.vendor.is_null() | (Ticket.vendor != "dispatched"))
                )
                .count()
            )
        seen: set[int] = set()
        while True:
            query = (
                Ticket.select()
                .where(Ticket.sla_next_at.is_null(False) & (Ticket.sla_next_at <= at))
                .order_by(Ticket.sla_next_at, Ticket.id)
                .limit(BATCH)
            )
            tickets = [t for t in query if t.id not in seen]
            if not tickets:
                break
            marks = _marks([t.id for t in tickets])
            for ticket in tickets:
                seen.add(ticket.id)
                with database.atomic():
                    rules = _Rules(ticket, config, calendar, at, now, marks, queue, result)
                    rules.apply()
            result.looked_at += len(tickets)
    result.seconds = time.perf_counter() - started
    return result


def _marks(ticket_ids: list[int]) -> set[tuple[int, str, str]]:
    rows = SlaMark.select(SlaMark.ticket, SlaMark.kind, SlaMark.key).where(SlaMark.ticket.in_(ticket_ids))
    return {(row.ticket_id, row.kind, row.key) for row in rows}


class _Rules:
    """The rules for one ticket at one instant; collects when to look again."""

    def __init__(
        self,
        ticket: Ticket,
        config: Config,
        calendar: BusinessCalendar,
        at: datetime,
        now: datetime,
        marks: set[tuple[int, str, str]],
        queue: list[int],
        result: PassResult,
    ) -> None:
        self.ticket, self.config, self.calendar = ticket, config, calendar
        self.at, self.now, self.marks, self.queue, self.result = at, now, marks, queue, result
        self.later: list[datetime] = []
        self.ref = f"{config.desk.ticket_prefix}-{ticket.number}"

    def apply(self) -> None:
        t = self.ticket
        if t.status in WATCHED and t.merged_into_id is None:
            self._vendor()
            if t.status == "resolved":
                self._confirmation()
            if t.status == "pending":
                self._information()
            if t.status in ("new", "open"):
                self._first_response()
                self._unclaimed()
                self._status_update()
            if t.status in OPEN:  # not when a closing rule has just closed it
                self._no_update()
        future = [w for w in self.later if w > self.at]
        t.sla_next_at = min(future) if future else None
        if t.is_dirty():
            t.save(only=t.dirty_fields)

    # -- helpers ---------------------------------------------------------------------------

    def _once(self, kind: str, key: str = "") -> bool:
        """True the first time for this ticket, kind and occasion; records it."""
        if (self.ticket.id, kind, key) in self.marks:
            return False
        SlaMark.create(ticket=self.ticket, kind=kind, key=key, at=self.at)
        self.marks.add((self.ticket.id, kind, key))
        self.result.actions[kind] += 1
        return True

    def _due(self, when: datetime) -> bool:
        """Has `when` come? If not, look again then."""
        if self.at >= when:
            return True
        self.later.append(when)
        return False

    def _event(self, kind: str, detail: str) -> None:
        Event.create(ticket=self.ticket, at=self.at, kind=kind, detail=detail[:4000], actor="sla")

    def _breach(self, deadline: str, due: datetime, detail: str) -> None:
        self._event("sla_breached", f"{deadline}: due {due:%Y-%m-%d %H:%M} UTC, {detail}")

    def _requester(self) -> tuple[str, str]:
        t = self.ticket
        contact = Contact.get_or_none(Contact.id == t.requester_id) if t.requester_id else None
        return (contact.name, contact.email) if contact is not None else ("", "")

    def _remind(self, agents_template: str, reason: str, due: datetime, event: str) -> None:
        notify_agents(
            self.ticket,
            self.config,
            self.now,
            event=event,
            text="",
            requester=self._requester(),
            template=agents_template,
            extra={"reason": reason, "due": f"{due:%Y-%m-%d %H:%M} UTC"},
        )

    # -- the rules --------------------------------------------------------------------------

    def _first_response(self) -> None:
        t = self.ticket
        if t.first_response_at is not None:
            return
        if t.first_response_due is None:
            t.first_response_due = naive_utc(self.calendar.add(t.created_at, self.config.sla.first_response))
        due = t.first_response_due
        if not self._due(due) or not self._once("first_response"):
            return
        self._breach("first_response", due, "the customer has had no answer")
        if self.config.sla.escalate_on_breach and t.tier < 2:
            self._escalate("the first response deadline passed")

    def _escalate(self, reason: str) -> None:
        t = self.ticket
        t.tier += 1
        level = TIERS.get(t.tier, "the head of IT")
        t.assignee = None
        self._event("escalated", f"to tier {t.tier} ({level}): {reason}")
        tier = [a for a in self.config.agents if a.tier == t.tier]
        targets = [a for a in tier if a.team == t.team] or tier
        notify_agents(
            t,
            self.config,
            self.now,
            event="escalated",
            text="",
            requester=self._requester(),
            agents=targets,
            template="escalation_notice",
            extra={"level": level, "reason": reason, "by": "the SLA clock"},
        )
        # seed 003: escalations are communicated to the requester
        relay.send(
            t,
            self.config,
            "escalation",
            {"level": level, "reason": ""},
            now=self.at,
            agent_name="",
            kind="notification",
            automatic=True,
        )

    def _unclaimed(self) -> None:
        t = self.ticket
        if t.assignee_id is not None or t.vendor == "dispatched":
            return
        due = naive_utc(self.calendar.add(t.created_at, self.config.sla.unclaimed_alert))
        if not self._due(due) or not self._once("unclaimed"):
            return
        self._breach("unclaimed", due, "nobody has taken it")
        team = [a for a in self.config.agents if t.team and a.team == t.team] or list(self.config.agents)
        notify_agents(
            t,
            self.config,
            self.now,
            event="unclaimed",
            text="",
            requester=self._requester(),
            agents=team,
            template="sla_reminder",
            extra={
                "reason": "nobody has taken this ticket yet; reply with #take to claim it",
                "due": f"{due:%Y-%m-%d %H:%M} UTC",
            },
        )

    def _no_update(self) -> None:
        t = self.ticket
        due = t.updated_at + self.config.sla.no_update
        if not self._due(due) or not self._once("update", f"{t.updated_at:%Y%m%d%H%M%S}"):
            return
        self._breach("update", due, f"no update for {self.config.sla.no_update.days or 1} day(s)")
        agents = agents_for(t, self.config)
        notify_agents(
            t,
            self.config,
            self.now,
            event="reminder",
            text="",
            requester=self._requester(),
            agents=agents,
            template="sla_reminder",
            extra={
                "reason": "this ticket has had no update for over "
                f"{self.config.sla.no_update.days or 1} day(s)",
                "due": f"{due:%Y-%m-%d %H:%M} UTC",
            },
        )

    def _status_update(self) -> None:
        t = self.ticket
        interval = self.config.sla.status_update.get(t.priority)
        if interval is None or t.first_response_at is None:
            return
        last = (
            OutboundMail.select(fn.MAX(OutboundMail.created_at))
            .where((OutboundMail.ticket == t.id) & (OutboundMail.kind == "reply"))
            .scalar()
        )
        since = max(t.first_response_at, last) if last else t.first_response_at
        due = naive_utc(self.calendar.add(since, interval))
        if not self._due(due) or not self._once("status_update", f"{since:%Y%m%d%H%M%S}"):
            return
        notify_agents(
            t,
            self.config,
            self.now,
            event="reminder",
            text="",
            requester=self._requester(),
            agents=agents_for(t, self.config),
            template="sla_reminder",
            extra={
                "reason": f"a {t.priority} ticket: the customer is due a status update",
                "due": f"{due:%Y-%m-%d %H:%M} UTC",
            },
        )

    def _vendor(self) -> None:
        t = self.ticket
        vendor = self.config.vendor
        if not vendor.address or t.vendor in ("dispatched", "returned"):
            return
        reason = ""
        if t.vendor == "requested":
            reason = "an agent asked for it (#vendor)"
        elif t.status not in ("new", "open"):
            return
        elif vendor.after_hours and not self.calendar.is_open(t.created_at):
            reason = "it arrived after hours"  # all of them, whoever the rota assigned it to (seed 004)
        elif t.assignee_id is not None:
            return
        elif self.queue and self.queue[0] > vendor.max_open:
            reason = f"the open queue holds {self.queue[0]} tickets (limit {vendor.max_open})"
        else:
            due = naive_utc(self.calendar.add(t.created_at, vendor.unclaimed_after))
            if not self._due(due):
                return
            reason = "nobody took it within the limit"
        if self._once("dispatch") and dispatch(t, self.config, self.now, reason) and self.queue:
            self.queue[0] -= 1

    def _confirmation(self) -> None:
        t = self.ticket
        if t.waiting_since is None:
            return
        due = naive_utc(self.calendar.add_days(t.waiting_since, self.config.sla.confirm_within))
        if not self._due(due) or not self._once("close", f"{t.waiting_since:%Y%m%d%H%M%S}"):
            return
        self._close(
            "no_answer",
            f"no answer to the resolution within {self.config.sla.confirm_within} business day(s)",
        )

    def _information(self) -> None:
        t = self.ticket
        if t.waiting_since is None:
            return
        key = f"{t.waiting_since:%Y%m%d%H%M%S}"
        first = naive_utc(self.calendar.add_days(t.waiting_since, self.config.sla.info_within))
        if not self._due(first):
            return
        if self._once("follow_up", key):
            relay.send(
                t,
                self.config,
                "follow_up",
                {"attempt": 2, "waiting_for": "information", "missing": [], "deadline": ""},
                now=self.at,
                agent_name="",
                kind="notification",
                automatic=True,
            )
            self._event("followed_up", "second request for the missing information")
        second = naive_utc(self.calendar.add_days(first, self.config.sla.info_within))
        if self._due(second) and self._once("close", key):
            self._close("no_information", "two requests for the missing information went unanswered")

    def _close(self, reason: str, detail: str) -> None:
        t = self.ticket
        t.status, t.closed_at, t.updated_at, t.waiting_since = "closed", self.at, self.at, None
        self._event("closed", detail)
        relay.send(
            t,
            self.config,
            "closing",
            {"reason": reason, "resolution": ""},
            now=self.at,
            agent_name="",
            kind="notification",
            automatic=True,
        )
