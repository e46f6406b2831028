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
import contextlib
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from peewee import Database

from maildesk.clock import naive_utc
from maildesk.config import Config
from maildesk.respond import relay
from maildesk.respond.notices import agents_for, notify_agents
from maildesk.sla.calendar import BusinessCalendar
from maildesk.sla.overflow import dispatch
from maildesk.tickets.issue_records import stored
from maildesk.tickets.statuses import AWAITING_CUSTOMER, OPEN_STATUSES, OWED, RESOLVED
from maildesk.tickets.store.db import connection_lost
from maildesk.tickets.store.fast import Statements
from maildesk.tickets.store.models import Contact, Event, OutboundMail, SlaMark, Ticket
from maildesk.tickets.tiers import TIERS, agents_of_tier

log = logging.getLogger(__name__)

OPEN = OPEN_STATUSES
WATCHED = (*OPEN, RESOLVED)
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
        sql = Statements(database)
        seen: set[int] = set()
        while True:
            tickets = [t for t in _due_rows(database, at) if t.id not in seen]
            if not tickets:
                break
            ids = [t.id for t in tickets]
            batch = _Batch(
                database,
                sql,
                config,
                calendar,
                at,
                now,
                _marks(database, ids),
                _last_replies(database, ids),
                queue,
                result,
            )
            # one commit per batch; a ticket that acts does so in a savepoint of its own
            with database.atomic():
                for ticket in tickets:
                    seen.add(ticket.id)
                    try:
                        _Rules(ticket, batch).apply()
                    except Exception:
                        if connection_lost(database):
                            raise  # the whole pass is retried; no ticket is to blame
                        log.exception("SLA rules failed for ticket %s; looked at again next pass", ticket.id)
                        result.actions["failed"] += 1
                _write_schedules(database, batch.schedules)
            result.looked_at += len(tickets)
    result.seconds = time.perf_counter() - started
    return result


_COLUMNS = (
    "id", "number", "subject", "status", "priority", "team", "issue_type", "assignee_id", "requester_id",
    "organization_id", "created_at", "updated_at", "first_response_at", "first_response_due", "waiting_since",
    "vendor", "tier", "merged_into_id",
)  # fmt: skip
_TIMES = frozenset({"created_at", "updated_at", "first_response_at", "first_response_due", "waiting_since"})


@dataclass(slots=True)
class _Row:
    """A due ticket as read, before anything happens to it: reading a model per ticket costs
    more than every rule together, and most tickets only get their next look written back."""

    id: int
    number: int
    subject: str
    status: str
    priority: str
    team: str
    issue_type: str
    assignee_id: int | None
    requester_id: int | None
    organization_id: int | None
    created_at: datetime
    updated_at: datetime
    first_response_at: datetime | None
    first_response_due: datetime | None
    waiting_since: datetime | None
    vendor: str | None
    tier: int
    merged_into_id: int | None


def _due_rows(database: Database, at: datetime) -> list[_Row]:
    table = Ticket._meta.table_name
    columns = ", ".join(Ticket._meta.fields[c.removesuffix("_id")].column_name if c.endswith("_id") else c
                        for c in _COLUMNS)  # fmt: skip
    mark = database.param
    sql = (
        f"SELECT {columns} FROM {table} WHERE sla_next_at IS NOT NULL AND sla_next_at <= {mark}"
        f" ORDER BY sla_next_at, id LIMIT {BATCH}"
    )
    rows = []
    for values in database.execute_sql(sql, (Ticket.sla_next_at.db_value(at),)).fetchall():
        item = dict(zip(_COLUMNS, values, strict=True))
        for name in _TIMES:
            if item[name] is not None:
                item[name] = naive_utc(item[name])
        rows.append(_Row(**item))
    return rows


@dataclass
class _Batch:
    """What the tickets of one batch share: the clock, what was done before, what to write back."""

    database: Database
    sql: Statements  # pre-rendered INSERTs for the marks, events and mail a busy pass writes
    config: Config
    calendar: BusinessCalendar
    at: datetime  # naive UTC
    now: datetime  # aware
    marks: set[tuple[int, str, str]]
    last_replies: dict[int, datetime]
    queue: list[int]  # the open queue's length, when the vendor's overflow needs it
    result: PassResult
    schedules: list[tuple[object, object, int]] = field(default_factory=list)


def _last_replies(database: Database, ticket_ids: list[int]) -> dict[int, datetime]:
    """When each ticket's customer side last got a reply from a person (for status updates)."""
    # raw SQL: peewee renders an IN list of 500 parameters slower than SQLite runs the query
    marks = ", ".join([database.param] * len(ticket_ids))
    sql = (
        f"SELECT ticket_id, MAX(created_at) FROM {OutboundMail._meta.table_name}"
        f" WHERE ticket_id IN ({marks}) AND kind = 'reply' GROUP BY ticket_id"
    )
    rows = database.execute_sql(sql, ticket_ids).fetchall()
    return {int(ticket_id): naive_utc(at) for ticket_id, at in rows if at is not None}


def _write_schedules(database: Database, rows: list[tuple[object, object, int]]) -> None:
    """The tickets whose only change is their schedule, in one statement run for all of them."""
    if not rows:
        return
    mark = database.param
    table = Ticket._meta.table_name
    sql = f"UPDATE {table} SET sla_next_at = {mark}, first_response_due = {mark} WHERE id = {mark}"
    database.cursor().executemany(sql, rows)


def _marks(database: Database, ticket_ids: list[int]) -> set[tuple[int, str, str]]:
    marks = ", ".join([database.param] * len(ticket_ids))
    sql = f'SELECT ticket_id, kind, "key" FROM {SlaMark._meta.table_name} WHERE ticket_id IN ({marks})'
    return {(int(t), k, key) for t, k, key in database.execute_sql(sql, ticket_ids).fetchall()}


class _Rules:
    """The rules for one ticket at one instant; collects when to look again."""

    def __init__(self, row: _Row, batch: _Batch) -> None:
        # `ticket` is the row until a rule acts, then the stored Ticket (see _once)
        self.ticket: Any = row
        self.batch, self.config, self.calendar = batch, batch.config, batch.calendar
        self.at, self.now, self.marks, self.queue, self.result = (
            batch.at, batch.now, batch.marks, batch.queue, batch.result
        )  # fmt: skip
        self.later: list[datetime] = []
        self.stack = contextlib.ExitStack()

    def apply(self) -> None:
        with self.stack:  # the savepoint a rule opened, if any: committed, or rolled back on error
            self._rules()
            future = [w for w in self.later if w > self.at]
            next_at = min(future) if future else None
            t = self.ticket
            if isinstance(t, _Row):
                # the usual case, nothing happened: written with the batch, not a statement of its own
                due = Ticket.first_response_due.db_value(t.first_response_due)
                self.batch.schedules.append((Ticket.sla_next_at.db_value(next_at), due, t.id))
            else:
                t.sla_next_at = next_at
                t.save(only=t.dirty_fields)

    def _rules(self) -> None:
        if self.ticket.status not in WATCHED or self.ticket.merged_into_id is not None:
            return
        self._vendor()
        if self.ticket.status == "resolved":
            self._confirmation()
        if self.ticket.status == AWAITING_CUSTOMER:
            self._information()
        if self.ticket.status in OWED:
            self._first_response()
            self._unclaimed()
            self._scheduling()
        if self.ticket.status in OPEN:  # not when a closing rule has just closed it
            self._status_update()  # seed 003: critical and high open issues, whoever's turn it is
            self._no_update()

    # -- helpers ---------------------------------------------------------------------------

    def _once(self, kind: str, key: str = "") -> bool:
        """True the first time for this ticket, kind and occasion; records it.

        The first time anything happens to a ticket in a pass, a savepoint opens and the
        stored Ticket replaces the row, so what follows (and the rules after) act on it.
        """
        if (self.ticket.id, kind, key) in self.marks:
            return False
        if isinstance(self.ticket, _Row):
            row = self.ticket
            self.stack.enter_context(self.batch.database.atomic())
            self.ticket = Ticket.get_by_id(row.id)
            if self.ticket.first_response_due != row.first_response_due:
                self.ticket.first_response_due = row.first_response_due
        self.batch.sql.insert(SlaMark, {"ticket": self.ticket.id, "kind": kind, "key": key, "at": self.at})
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
        self.batch.sql.insert(
            Event,
            {"ticket": self.ticket.id, "at": self.at, "kind": kind, "detail": detail[:4000], "actor": "sla"},
        )

    def _breach(self, deadline: str, due: datetime, detail: str) -> None:
        self._event("sla_breached", f"{deadline}: due {due:%Y-%m-%d %H:%M} UTC, {detail}")

    def _mail_requester(self, template: str, values: dict[str, object]) -> None:
        """The clock's own mail to the requester: automatic, from no agent."""
        relay.send(self.ticket, self.config, template, values, now=self.at, agent_name="",
                   kind="notification", automatic=True)  # fmt: skip

    def _requester(self) -> tuple[str, str]:
        t = self.ticket
        contact = Contact.get_or_none(Contact.id == t.requester_id) if t.requester_id else None
        return (contact.name, contact.email) if contact is not None else ("", "")

    def _remind(self, event: str, reason: str, due: datetime) -> None:
        """The sla_reminder to the ticket's agents (its assignee, else its team, else everyone)."""
        notify_agents(
            self.ticket,
            self.config,
            self.now,
            event=event,
            text="",
            requester=self._requester(),
            agents=agents_for(self.ticket, self.config),
            template="sla_reminder",
            sql=self.batch.sql,
            extra={"reason": reason, "due": f"{due:%Y-%m-%d %H:%M} UTC"},
        )

    # -- the rules --------------------------------------------------------------------------

    def _first_response(self) -> None:
        t = self.ticket
        if t.first_response_at is not None:
            return
        if t.first_response_due is None:
            t.first_response_due = naive_utc(
                self.calendar.add(t.created_at, self.config.sla.first_response_for(t.priority))
            )
        due = t.first_response_due
        if not self._due(due) or not self._once("first_response"):
            return
        self._breach("first_response", due, "the customer has had no answer")
        if self.config.sla.escalate_on_breach and self.ticket.tier < 2:
            self._escalate("the first response deadline passed")

    def _escalate(self, reason: str) -> None:
        t = self.ticket
        t.tier += 1
        level = TIERS[t.tier]
        t.assignee = None
        self._event("escalated", f"to tier {t.tier} ({level}): {reason}")
        targets = agents_of_tier(self.config, t.tier, t.team)
        notify_agents(
            t,
            self.config,
            self.now,
            event="escalated",
            text="",
            requester=self._requester(),
            agents=targets,
            template="escalation_notice",
            sql=self.batch.sql,
            extra={"level": level, "reason": reason, "by": "the SLA clock"},
        )
        # seed 003: escalations are communicated to the requester
        self._mail_requester("escalation", {"level": level, "reason": ""})

    def _unclaimed(self) -> None:
        t = self.ticket
        if t.assignee_id is not None or t.vendor == "dispatched":
            return
        due = naive_utc(self.calendar.add(t.created_at, self.config.sla.unclaimed_alert))
        if not self._due(due) or not self._once("unclaimed"):
            return
        self._breach("unclaimed", due, "nobody has taken it")
        # every agent of the team (it has no assignee): agents_for gives the team, else everyone
        self._remind("unclaimed", "nobody has taken this ticket yet; reply with #take to claim it", due)

    def _scheduling(self) -> None:
        """Seed 004: unclaimed after the team alert, a ticket that can wait gets a scheduling link, once."""
        t = self.ticket
        url = self.config.links.scheduling
        if (
            not url
            or t.assignee_id is not None
            or t.vendor is not None
            or t.priority not in ("low", "normal")
        ):
            return
        alert = self.calendar.add(t.created_at, self.config.sla.unclaimed_alert)
        due = naive_utc(self.calendar.add(alert, self.config.sla.scheduling_after))
        vendor = self.config.vendor
        if vendor.address and naive_utc(self.calendar.add(t.created_at, vendor.unclaimed_after)) <= due:
            return  # it goes to the vendor first; the customer is not asked to wait
        if not self._due(due) or not self._once("scheduling"):
            return
        self._mail_requester("scheduling_offer", {"url": url})
        self._event("scheduling_offered", f"offered {url}")

    def _no_update(self) -> None:
        t = self.ticket
        due = t.updated_at + self.config.sla.no_update
        if not self._due(due) or not self._once("update", f"{t.updated_at:%Y%m%d%H%M%S}"):
            return
        days = self.config.sla.no_update.days or 1
        self._breach("update", due, f"no update for {days} day(s)")
        self._remind("reminder", f"this ticket has had no update for over {days} day(s)", due)

    def _status_update(self) -> None:
        t = self.ticket
        interval = self.config.sla.status_update.get(t.priority)
        if interval is None or t.first_response_at is None:
            return
        last = self.batch.last_replies.get(t.id)
        since = max(t.first_response_at, last) if last else t.first_response_at
        due = naive_utc(self.calendar.add(since, interval))
        if not self._due(due) or not self._once("status_update", f"{since:%Y%m%d%H%M%S}"):
            return
        self._remind("reminder", f"a {self.ticket.priority} ticket: the customer is due a status update", due)

    def _vendor(self) -> None:
        t = self.ticket
        vendor = self.config.vendor
        if not vendor.address or t.vendor in ("dispatched", "returned"):
            return
        reason = ""
        if t.vendor == "requested":
            reason = "an agent asked for it (#vendor)"
        elif t.status not in OWED:
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
        if self._once("dispatch") and dispatch(self.ticket, self.config, self.now, reason) and self.queue:
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
            self._mail_requester(
                "follow_up",
                {
                    "attempt": 2,
                    "waiting_for": "information",
                    "missing": stored(self.ticket).missing(),
                    "deadline": "",
                },
            )
            self._event("followed_up", "second request for the missing information")
        second = naive_utc(self.calendar.add_days(first, self.config.sla.info_within))
        if self._due(second) and self._once("close", key):
            self._close("no_information", "two requests for the missing information went unanswered")

    def _close(self, reason: str, detail: str) -> None:
        t = self.ticket
        t.status, t.closed_at, t.updated_at, t.waiting_since = "closed", self.at, self.at, None
        self._event("closed", detail)
        self._mail_requester("closing", {"reason": reason, "resolution": ""})
