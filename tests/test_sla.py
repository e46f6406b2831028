"""The SLA clock driven through the CLI with `--now`: hours, nights, a weekend and a holiday.

Europe/Zurich is UTC+1 in November and December, so 10:00 local is 09:00Z. The desk opens
Mon-Fri 10:00-17:40 and Sat 09:30-13:30 (seed 003), closed on 25 and 26 December.
"""

from __future__ import annotations

import json
import re
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import Desk
from tests.mail import make_mail, reply_to, sent_mail, to_agent

# the pipeline behaves the same on SQLite and on PostgreSQL
pytestmark = pytest.mark.both_databases

SLA = """
[[agents]]
address = "carol@helpdesk.example"
name = "Carol Senior"
team = "Service Desk"
tier = 2

[[routing]]
keywords = ["printer", "laptop", "vpn", "scanner"]
team = "Service Desk"

[hours]
timezone = "Europe/Zurich"
holidays = ["2026-12-25", "2026-12-26"]

[vendor]
name = "Vendor Help Desk"
address = "dispatch@vendor.example"
domains = ["vendor.example"]
after_hours = false
unclaimed_after = "6h"
max_open = 1000
"""


def with_clock(desk: Desk) -> Desk:
    text = desk.config.read_text().replace(
        'secret = "test-secret"\n', 'secret = "test-secret"\nlead = "lead@helpdesk.example"\n'
    )
    # a top-level key must come before the first table
    desk.config.write_text('assignment = "none"\n' + text + SLA + desk.maildir_relay)
    return desk


@pytest.fixture
def clock(desk: Desk) -> Desk:
    return with_clock(desk)


def tick(desk: Desk, now: str) -> dict:
    result = desk.run("sla", "run", "--json", now=now)
    assert result.code == 0, result.err
    assert desk.run("outbox", "flush", now=now).code == 0
    return dict(json.loads(result.out))


def mail(desk: Desk) -> list[EmailMessage]:
    return sent_mail(desk.root / "out")


def to(desk: Desk, address: str) -> list[EmailMessage]:
    return [m for m in mail(desk) if address in str(m["To"])]


def events(desk: Desk, ref: str, kind: str) -> list[str]:
    return [e["detail"] for e in desk.show(ref)["events"] if e["kind"] == kind]


def customer_writes(
    desk: Desk, tmp_path: Path, mid: str, now: str, subject: str, sender: str = "anna@customer.example"
) -> None:
    path = tmp_path / f"{mid}.eml"
    path.write_bytes(make_mail(sender=sender, subject=subject, message_id=f"{mid}@customer.example"))
    desk.ingest(path, now=now)
    assert desk.run("outbox", "flush", now=now).code == 0


def test_unclaimed_alert_first_response_breach_and_escalation_each_happen_once(
    clock: Desk, tmp_path: Path
) -> None:
    # Monday 09:01 local, before opening: the clock starts at 10:00
    customer_writes(clock, tmp_path, "a1", "2026-11-02T08:01:00Z", "Printer on floor 2 is jammed")
    before = len(mail(clock))
    assert tick(clock, "2026-11-02T08:02:00Z")["actions"] == {}
    assert tick(clock, "2026-11-02T09:59:00Z")["actions"] == {}  # 10:59 local: 59 business minutes
    assert len(mail(clock)) == before

    # 11:00 local: an hour unclaimed, every agent of the team is alerted
    assert tick(clock, "2026-11-02T10:00:00Z")["actions"] == {"unclaimed": 1}
    alerts = [m for m in mail(clock)[before:] if "nobody has taken" in m.get_body(("plain",)).get_content()]
    assert sorted(str(m["To"]).split("<")[-1].rstrip(">") for m in alerts) == [
        "alice@helpdesk.example", "bob@helpdesk.example", "carol@helpdesk.example",
    ]  # fmt: skip
    assert tick(clock, "2026-11-02T10:30:00Z")["actions"] == {}
    assert len(events(clock, "MD-1", "sla_breached")) == 1

    # 12:00 local: two business hours without an answer; a breach, and tier 2 takes over
    assert tick(clock, "2026-11-02T11:00:00Z")["actions"] == {"first_response": 1}
    breaches = events(clock, "MD-1", "sla_breached")
    assert len(breaches) == 2 and breaches[1].startswith("first_response: due 2026-11-02 11:00")
    notice = to_agent(mail(clock), "carol@", "")
    assert "the first response deadline passed" in notice.get_body(("plain",)).get_content()
    told = [m for m in to(clock, "anna@") if "senior engineers" in m.get_body(("plain",)).get_content()]
    assert len(told) == 1 and told[0]["Auto-Submitted"] == "auto-generated"
    assert "vendor" not in told[0].get_body(("plain",)).get_content().lower()
    (escalated,) = events(clock, "MD-1", "escalated")
    assert escalated.startswith("to tier 2 (our senior engineers)")
    assert clock.show("MD-1")["first_response_at"] is None  # the clock's mail is no answer
    count = len(mail(clock))
    assert tick(clock, "2026-11-02T11:01:00Z")["actions"] == {}
    assert tick(clock, "2026-11-02T13:00:00Z")["actions"] == {}
    assert len(mail(clock)) == count


def test_deadlines_skip_the_night_and_the_weekend(clock: Desk, tmp_path: Path) -> None:
    # Friday 17:30 local: 10 business minutes on Friday, the rest from Saturday 09:30
    customer_writes(clock, tmp_path, "w1", "2026-11-06T16:30:00Z", "Scanner offline")
    assert "first_response" not in tick(clock, "2026-11-07T10:19:00Z")["actions"]  # Sat 11:19 local
    assert tick(clock, "2026-11-07T10:20:00Z")["actions"].get("first_response") == 1  # Sat 11:20 local
    report = clock.run("report", "sla", "--json", now="2026-11-07T10:21:00Z")
    data = json.loads(report.out)
    assert set(data) == {"now", "due", "breached", "unanswered", "unattended"}
    (late,) = [d for d in data["breached"] if d["deadline"] == "first_response"]
    assert late["ref"] == "MD-1" and late["due_at"] == "2026-11-07T10:20:00Z" and late["breached_at"]
    assert [d["ref"] for d in data["unanswered"]] == ["MD-1"]


def test_a_ticket_without_update_for_two_days_reminds_its_assignee_once(clock: Desk, tmp_path: Path) -> None:
    customer_writes(clock, tmp_path, "u1", "2026-11-02T09:30:00Z", "VPN drops every hour")
    clock.run("tickets", "label", "MD-1", "--team", "Service Desk", "--by", "lead")
    notice = to_agent(mail(clock), "alice@")
    raw = reply_to(notice, "alice@helpdesk.example", "Looking into it.\n#take", message_id="u2@h")
    (tmp_path / "u2.eml").write_bytes(raw)
    clock.ingest(tmp_path / "u2.eml", now="2026-11-02T09:40:00Z")
    tick(clock, "2026-11-02T09:41:00Z")
    before = len(to(clock, "alice@"))
    assert "update" not in tick(clock, "2026-11-04T09:39:00Z")["actions"]
    assert tick(clock, "2026-11-04T09:41:00Z")["actions"].get("update") == 1
    reminders = to(clock, "alice@")[before:]
    assert (
        len(reminders) == 1 and "no update for over 2 day" in reminders[0].get_body(("plain",)).get_content()
    )
    assert to(clock, "bob@")[-1:] != reminders  # the assignee, not the team
    assert "update" not in tick(clock, "2026-11-05T09:00:00Z")["actions"]
    assert [
        d["ref"]
        for d in json.loads(clock.run("report", "sla", "--json", now="2026-11-05T09:00:00Z").out)[
            "unattended"
        ]
    ] == ["MD-1"]


def test_a_resolved_ticket_closes_after_one_business_day_without_answer_over_the_holidays(
    clock: Desk, tmp_path: Path
) -> None:
    customer_writes(clock, tmp_path, "h1", "2026-12-24T08:00:00Z", "Laptop will not boot")
    notice = to_agent(mail(clock), "alice@")
    raw = reply_to(
        notice, "alice@helpdesk.example", "Replaced the disk.\n#status resolved", message_id="h2@h"
    )
    (tmp_path / "h2.eml").write_bytes(raw)
    clock.ingest(tmp_path / "h2.eml", now="2026-12-24T11:00:00Z")  # Thursday 12:00 local
    assert clock.show("MD-1")["status"] == "resolved"
    # Friday 25 and Saturday 26 are holidays, Sunday closed: the one business day ends Monday 12:00
    assert "close" not in tick(clock, "2026-12-28T10:59:00Z")["actions"]
    assert tick(clock, "2026-12-28T11:00:00Z")["actions"].get("close") == 1
    ticket = clock.show("MD-1")
    assert ticket["status"] == "closed"
    closing = [m for m in to(clock, "anna@") if "closed" in m.get_body(("plain",)).get_content().lower()]
    assert len(closing) >= 1
    assert tick(clock, "2026-12-29T11:00:00Z")["actions"] == {}


def test_two_unanswered_requests_for_information_close_the_ticket(clock: Desk, tmp_path: Path) -> None:
    customer_writes(clock, tmp_path, "i1", "2026-11-02T09:00:00Z", "Printer error E-42")
    notice = to_agent(mail(clock), "alice@")
    raw = reply_to(
        notice, "alice@helpdesk.example", "#needinfo the printer's asset number", message_id="i2@h"
    )
    (tmp_path / "i2.eml").write_bytes(raw)
    clock.ingest(tmp_path / "i2.eml", now="2026-11-02T10:00:00Z")
    assert clock.show("MD-1")["status"] == "awaiting-customer"
    assert tick(clock, "2026-11-03T09:59:00Z")["actions"] == {}
    assert tick(clock, "2026-11-03T10:00:00Z")["actions"] == {"follow_up": 1}
    assert clock.show("MD-1")["status"] == "awaiting-customer"
    assert tick(clock, "2026-11-04T10:00:00Z")["actions"] == {"close": 1}
    assert clock.show("MD-1")["status"] == "closed"
    texts = [m.get_body(("plain",)).get_content() for m in to(clock, "anna@")]
    assert sum("asset number" in t for t in texts) == 1  # the request itself
    assert any("information" in t.lower() and "closed" in t.lower() for t in texts)


def test_a_customer_answer_stops_the_follow_ups(clock: Desk, tmp_path: Path) -> None:
    customer_writes(clock, tmp_path, "j1", "2026-11-02T09:00:00Z", "Printer error E-42")
    notice = to_agent(mail(clock), "alice@")
    raw = reply_to(notice, "alice@helpdesk.example", "#needinfo asset number", message_id="j2@h")
    (tmp_path / "j2.eml").write_bytes(raw)
    clock.ingest(tmp_path / "j2.eml", now="2026-11-02T10:00:00Z")
    customer_writes(clock, tmp_path, "j3", "2026-11-02T12:00:00Z", "Re: [MD-1] Printer error E-42")
    assert clock.show("MD-1")["status"] == "awaiting-support"
    actions = tick(clock, "2026-11-05T10:00:00Z")["actions"]
    assert "follow_up" not in actions and "close" not in actions


def test_the_leads_digest_goes_once_per_slot_on_open_days(clock: Desk, tmp_path: Path) -> None:
    customer_writes(clock, tmp_path, "d1", "2026-11-02T08:00:00Z", "Printer on floor 2 is jammed")
    assert tick(clock, "2026-11-02T10:29:00Z")["digest"] == ""  # 11:29 local
    assert tick(clock, "2026-11-02T10:30:00Z")["digest"] == "lead@helpdesk.example"
    assert tick(clock, "2026-11-02T10:45:00Z")["digest"] == ""
    (digest,) = to(clock, "lead@")
    text = digest.get_body(("plain",)).get_content()
    assert "MD-1" in text and "Customers without an answer yet (1" in text
    html = digest.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert 'id="digest-unanswered"' in html
    # the report's figures, inline: every cid the HTML uses is attached as a PNG
    images = {str(part["Content-ID"]).strip("<>"): part.get_content() for part in digest.walk()
              if part.get_content_type() == "image/png"}  # fmt: skip
    used = set(re.findall(r'src="cid:([^"]+)"', html))
    assert len(used) == 5 and used == set(images)
    assert all(png.startswith(b"\x89PNG") for png in images.values())
    assert tick(clock, "2026-11-02T16:00:00Z")["digest"] == "lead@helpdesk.example"  # 17:00 local
    assert tick(clock, "2026-11-08T10:30:00Z")["digest"] == ""  # Sunday: closed


def test_after_hours_mail_goes_to_the_vendor_and_the_customer_is_never_told(
    clock: Desk, tmp_path: Path
) -> None:
    clock.config.write_text(clock.config.read_text().replace("after_hours = false", "after_hours = true"))
    customer_writes(clock, tmp_path, "v1", "2026-11-02T20:00:00Z", "Printer on fire")  # Monday 21:00 local
    assert tick(clock, "2026-11-02T20:01:00Z")["actions"] == {"dispatch": 1}
    (dispatched,) = to(clock, "dispatch@vendor.example")
    assert "[MD-1]" in dispatched["Subject"] and dispatched["Auto-Submitted"] is None
    body = dispatched.get_body(("plain",)).get_content()
    assert "anna@customer.example" in body and "the printer on floor 2 is jammed again" in body
    assert "+md-1.a0.r." in str(dispatched["Reply-To"])
    assert clock.show("MD-1")["vendor"] == "dispatched"
    assert tick(clock, "2026-11-02T20:30:00Z")["actions"] == {}
    for message in to(clock, "anna@"):
        assert "vendor" not in message.as_string().lower()


def resolve(
    desk: Desk, tmp_path: Path, now: str, body: str = "Replaced the toner.\n#status resolved"
) -> None:
    notice = to_agent(mail(desk), "alice@")
    (tmp_path / "r.eml").write_bytes(reply_to(notice, "alice@helpdesk.example", body, message_id="r@h"))
    desk.ingest(tmp_path / "r.eml", now=now)
    assert desk.run("outbox", "flush", now=now).code == 0


@pytest.mark.parametrize(
    ("answer", "status"),
    [("Thanks, it works now!", "closed"), ("Thanks, but it still prints blank pages.", "open")],
)
def test_a_customer_who_confirms_closes_the_ticket_one_who_doubts_reopens_it(
    clock: Desk, tmp_path: Path, answer: str, status: str
) -> None:
    customer_writes(clock, tmp_path, "c1", "2026-11-02T09:00:00Z", "Printer prints blank pages")
    resolve(clock, tmp_path, "2026-11-02T10:00:00Z")
    path = tmp_path / "c2.eml"
    path.write_bytes(
        make_mail(
            subject="Re: [MD-1] Printer prints blank pages", body=answer, message_id="c2@customer.example"
        )
    )
    clock.ingest(path, now="2026-11-02T11:00:00Z")
    assert clock.run("outbox", "flush").code == 0
    assert clock.show("MD-1")["status"] == status
    closings = [
        m
        for m in to(clock, "anna@")
        if "confirm" in m.get_body(("plain",)).get_content().lower()
        and "closed" in m.get_body(("plain",)).get_content().lower()
    ]
    assert len(closings) == (1 if status == "closed" else 0)
    assert tick(clock, "2026-11-05T11:00:00Z")["actions"].get("close") is None  # nothing left to close


def test_high_priority_tickets_remind_the_assignee_to_update_the_customer(
    clock: Desk, tmp_path: Path
) -> None:
    customer_writes(clock, tmp_path, "s1", "2026-11-02T09:00:00Z", "VPN down for the whole office")
    resolve(clock, tmp_path, "2026-11-02T09:30:00Z", "We are on it.\n#take\n#priority high")
    assert clock.show("MD-1")["priority"] == "high"
    before = len(to(clock, "alice@"))
    # high: a status update every 4 business hours from the last reply (10:30 local)
    assert "status_update" not in tick(clock, "2026-11-02T13:29:00Z")["actions"]
    assert tick(clock, "2026-11-02T13:30:00Z")["actions"].get("status_update") == 1
    reminder = to(clock, "alice@")[before:]
    assert len(reminder) == 1 and "status update" in reminder[0].get_body(("plain",)).get_content()
    assert "status_update" not in tick(clock, "2026-11-02T14:00:00Z")["actions"]


def test_vendor_on_request_and_important_notes_are_copied(clock: Desk, tmp_path: Path) -> None:
    customer_writes(clock, tmp_path, "x1", "2026-11-02T09:00:00Z", "Printer on floor 2 is jammed")
    resolve(clock, tmp_path, "2026-11-02T09:10:00Z", "#vendor")
    assert clock.show("MD-1")["vendor"] == "requested"
    assert tick(clock, "2026-11-02T09:11:00Z")["actions"] == {"dispatch": 1}
    (dispatched,) = to(clock, "dispatch@vendor.example")
    assert "an agent asked for it" in dispatched.get_body(("plain",)).get_content()
    notice = to_agent(mail(clock), "alice@")
    note = reply_to(
        notice,
        "alice@helpdesk.example",
        "The customer replaced the toner yesterday.\n#important",
        message_id="x2@h",
    )
    (tmp_path / "x2.eml").write_bytes(note)
    clock.ingest(tmp_path / "x2.eml", now="2026-11-02T09:20:00Z")
    assert clock.run("outbox", "flush").code == 0
    copies = to(clock, "dispatch@vendor.example")
    assert len(copies) == 2 and "replaced the toner yesterday" in copies[1].get_body(("plain",)).get_content()
    assert all("toner yesterday" not in m.as_string() for m in to(clock, "anna@"))


def test_a_queue_over_its_limit_overflows_new_unclaimed_tickets(clock: Desk, tmp_path: Path) -> None:
    clock.config.write_text(clock.config.read_text().replace("max_open = 1000", "max_open = 2"))
    for i, subject in enumerate(["Printer jammed", "Laptop broken", "VPN slow"]):
        customer_writes(
            clock, tmp_path, f"q{i}", "2026-11-02T09:00:00Z", subject, sender=f"c{i}@customer.example"
        )
    # one over the limit: the oldest unclaimed ticket goes, and the queue is back within it
    assert tick(clock, "2026-11-02T09:01:00Z")["actions"] == {"dispatch": 1}
    (reason,) = [e for t in ("MD-1", "MD-2", "MD-3") for e in events(clock, t, "vendor_dispatched")]
    assert "open queue holds 3 tickets (limit 2)" in reason
    assert tick(clock, "2026-11-02T09:05:00Z")["actions"] == {}


def test_an_urgent_ticket_can_have_a_tighter_first_response(clock: Desk, tmp_path: Path) -> None:
    text = clock.config.read_text()
    clock.config.write_text(
        text.replace("[hours]", '[sla]\nfirst_response_by_priority = { urgent = "30m" }\n\n[hours]')
    )
    customer_writes(
        clock, tmp_path, "p1", "2026-11-02T10:00:00Z", "URGENT: printer on fire, whole office down"
    )
    assert clock.show("MD-1")["priority"] == "urgent"
    ack = next(m for m in to(clock, "anna@"))
    assert "within 30 business minutes" in ack.get_body(("plain",)).get_content()
    assert "first_response" not in tick(clock, "2026-11-02T10:29:00Z")["actions"]
    assert tick(clock, "2026-11-02T10:30:00Z")["actions"].get("first_response") == 1


def test_an_unclaimed_ticket_that_can_wait_is_offered_a_scheduling_link_once(
    clock: Desk, tmp_path: Path
) -> None:
    text = clock.config.read_text()
    clock.config.write_text(text + '\n[links]\nscheduling = "https://calendar.example/support"\n')
    customer_writes(clock, tmp_path, "s1", "2026-11-02T09:00:00Z", "Printer toner low")  # 10:00 local
    assert "scheduling" not in tick(clock, "2026-11-02T10:29:00Z")["actions"]
    assert tick(clock, "2026-11-02T10:30:00Z")["actions"].get("scheduling") == 1  # alert at 11:00, +30 min
    offers = [
        m for m in to(clock, "anna@") if "calendar.example/support" in m.get_body(("plain",)).get_content()
    ]
    assert len(offers) == 1 and offers[0]["Auto-Submitted"] == "auto-generated"
    assert "scheduling" not in tick(clock, "2026-11-02T12:00:00Z")["actions"]
    # an urgent one is not asked to wait
    customer_writes(
        clock, tmp_path, "s2", "2026-11-02T09:00:00Z", "URGENT: server down", sender="b@customer.example"
    )
    assert "scheduling" not in tick(clock, "2026-11-02T13:00:00Z")["actions"]
