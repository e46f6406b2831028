"""The customer service lead's digest (seed 000): before lunch and before the end of the day.

It lists the tickets whose customer has had no answer yet (which must be empty by then),
those without update for over `sla.no_update`, the oldest open ticket of each team (has a
team missed it?), and mail that failed processing and sits in quarantine. It goes on days
the desk is open, once per configured time; a clock that was down at 11:30 sends the
11:30 digest when it comes back, and never the same one twice (a row in `setting` per
digest, inserted before sending, in the same transaction as the queued mail).
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

from markupsafe import Markup
from peewee import Database, IntegrityError, fn

from maildesk.clock import naive_utc
from maildesk.config import Config
from maildesk.outbox import enqueue
from maildesk.reports.sla_page import inline_figures
from maildesk.respond.render import build, environment_for
from maildesk.sla.calendar import BusinessCalendar
from maildesk.sla.clock import OPEN
from maildesk.sla.report import sla_report
from maildesk.tickets.store.models import InboundMail, Setting, Ticket

_QUARANTINE_SHOWN = 20


def due_slot(config: Config, now: datetime) -> str | None:
    """The latest digest time of today that has passed, as "YYYY-MM-DD HH:MM" (local), if any."""
    zone = ZoneInfo(config.hours.timezone)
    local = now.astimezone(zone)
    calendar = BusinessCalendar(config.hours)
    if not calendar.is_open_day(local.date()):
        return None  # a closed day: the lead is off too
    passed = []
    for text in config.sla.digest:
        hour, minute = (int(x) for x in text.split(":"))
        if datetime.combine(local.date(), time(hour, minute), tzinfo=zone) <= local:
            passed.append(f"{local.date().isoformat()} {hour:02d}:{minute:02d}")
    return max(passed) if passed else None


def send_digest(config: Config, database: Database, now: datetime) -> str:
    """Queue the digest if one is due and not sent yet; returns the lead's address, or ""."""
    if not config.desk.lead:
        return ""
    slot = due_slot(config, now)
    if slot is None:
        return ""
    key = f"digest {slot}"
    try:
        with database.atomic():
            if Setting.get_or_none(Setting.name == key) is not None:
                return ""  # an earlier pass sent this one
            Setting.create(name=key, value=naive_utc(now).isoformat())
            _queue(config, now, slot)
    except IntegrityError:
        return ""  # another clock sent it at the same moment
    return config.desk.lead


def _queue(config: Config, now: datetime, slot: str) -> None:
    report = sla_report(config, now)
    prefix = config.desk.ticket_prefix
    firsts = (
        Ticket.select(fn.MIN(Ticket.number))
        .where(Ticket.status.in_(OPEN) & Ticket.merged_into.is_null())
        .group_by(Ticket.team)
    )
    oldest = [
        {
            "team": ticket.team or "(no team)",
            "ref": f"{prefix}-{ticket.number}",
            "subject": ticket.subject,
            "created": f"{ticket.created_at:%Y-%m-%d %H:%M}",
            "status": ticket.status,
        }
        for ticket in Ticket.select().where(Ticket.number.in_(firsts))
    ]
    quarantined = list(
        InboundMail.select(InboundMail.id, InboundMail.received_at, InboundMail.reason)
        .where(InboundMail.state == "quarantined")
        .order_by(InboundMail.received_at.desc())
        .limit(_QUARANTINE_SHOWN)
    )
    total_quarantined = InboundMail.select().where(InboundMail.state == "quarantined").count()
    context: dict[str, object] = {
        "desk": config.desk.name,
        "slot": slot,
        "unanswered": report.unanswered,
        "unattended": report.unattended,
        "breached": report.breached,
        "oldest": sorted(oldest, key=lambda o: o["team"]),
        "quarantined": [
            {"id": q.id, "received": f"{q.received_at:%Y-%m-%d %H:%M}", "reason": q.reason[:200]}
            for q in quarantined
        ],
        "quarantined_total": total_quarantined,
    }
    # the same figures as `report sla --html`, inline: our own autoescaped fragment, images by cid
    fragment, images = inline_figures(config, now)
    context["figures"] = Markup(fragment)
    counts = f"{len(report.unanswered)} unanswered, {len(report.unattended)} unattended"
    message = build(
        config,
        environment_for(config),
        "lead_digest",
        context,
        to=[("Lead", config.desk.lead)],
        subject=f"{config.desk.name}: {counts} ({slot})",
        now=now,
        automatic=True,
        auto_submitted="auto-generated",
    )
    html = message.get_body(("html",))
    if html is not None:
        for cid, png in images:
            html.add_related(png, "image", "png", cid=f"<{cid}>")  # type: ignore[attr-defined]
    enqueue(message, recipients=[config.desk.lead], sender=config.desk.addresses[0], kind="digest",
            automatic=True, now=now)  # fmt: skip
