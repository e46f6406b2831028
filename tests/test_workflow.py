"""The daily workflow by mail (issue 9): canned answers, linked tickets, development tickets,
watchers, labels, and who is told what, through the real CLI."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.conftest import Desk
from tests.mail import make_mail, reply_to, to_agent

# the pipeline behaves the same on SQLite and on PostgreSQL
pytestmark = pytest.mark.both_databases

LINKS = """
[links]
billing = "https://portal.example/billing"
training = "https://calendar.example/training"
"""


@pytest.fixture
def team(desk: Desk) -> Desk:
    text = desk.config.read_text().replace(
        "priority = true\n", 'priority = true\naccount_manager = "am@helpdesk.example"\n'
    )
    desk.config.write_text(text + LINKS + desk.maildir_relay)
    return desk


def to(desk: Desk, address: str) -> list[EmailMessage]:
    return [m for m in desk.outgoing() if address in str(m["To"]) or address in str(m["Cc"] or "")]


def opened(
    desk: Desk, tmp_path: Path, subject: str, sender: str = "anna@customer.example", mid: str = "q1"
) -> None:
    (tmp_path / f"{mid}.eml").write_bytes(
        make_mail(sender=sender, subject=subject, message_id=f"{mid}@c.example")
    )
    desk.ingest(tmp_path / f"{mid}.eml", now="2026-11-02T09:00:00Z")


def agent_says(desk: Desk, tmp_path: Path, body: str, mid: str, subject: str = "") -> None:
    notice = to_agent(desk.outgoing(), "@helpdesk.example", subject)
    agent = str(notice["To"]).split("<")[-1].rstrip(">")
    (tmp_path / f"{mid}.eml").write_bytes(reply_to(notice, agent, body, message_id=f"{mid}@h"))
    desk.ingest(tmp_path / f"{mid}.eml", now="2026-11-02T10:00:00Z")


def test_a_canned_answer_carries_the_link_and_the_agents_words(team: Desk, tmp_path: Path) -> None:
    opened(team, tmp_path, "How do I change our invoice address?")
    agent_says(team, tmp_path, "Happy to help with this.\n#answer billing-update", "a1")
    (answer,) = [m for m in to(team, "anna@") if m["Subject"].startswith("Re:")]
    text = answer.get_body(("plain",)).get_content()
    assert "https://portal.example/billing" in text and "Happy to help with this." in text
    assert "#answer" not in text and "Thank you" in text
    html = answer.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert '<a href="https://portal.example/billing">' in html
    assert team.show("MD-1")["first_response_at"] is not None


def test_a_cancellation_answer_tells_the_account_manager(team: Desk, tmp_path: Path) -> None:
    opened(team, tmp_path, "Please cancel our subscription", sender="m.keller@acme-solar.example")
    agent_says(team, tmp_path, "#answer cancellation", "c1")
    (heads_up,) = to(team, "am@helpdesk.example")
    assert "Acme Solar" in heads_up.get_body(("plain",)).get_content()
    (answer,) = [m for m in to(team, "m.keller@") if m["Subject"].startswith("Re:")]
    assert "cancel" in answer.get_body(("plain",)).get_content()


def test_unknown_canned_answer_is_explained(team: Desk, tmp_path: Path) -> None:
    opened(team, tmp_path, "Question")
    agent_says(team, tmp_path, "#answer refund", "u1")
    confirmation = [m for m in to(team, "@helpdesk.example") if "failed" in m["Subject"]]
    assert confirmation and "no canned answer 'refund'" in confirmation[0].get_body(("plain",)).get_content()


def test_links_development_tickets_and_labels_show_on_the_ticket(team: Desk, tmp_path: Path) -> None:
    opened(team, tmp_path, "Portal totals wrong", mid="l1")
    opened(team, tmp_path, "Report totals wrong too", sender="bob@customer.example", mid="l2")
    body = "#internal\n#link MD-2\n#bug https://tracker.example/DEV-881\n#label EB\n#label EB\n#link MD-99"
    agent_says(team, tmp_path, body, "k1", "Portal totals")
    first, second = team.show("MD-1"), team.show("MD-2")
    assert {"ref": "MD-2", "kind": "related", "direction": "out"} in first["links"]
    assert {"url": "https://tracker.example/DEV-881", "kind": "bug", "direction": "out"} in first["links"]
    assert {"ref": "MD-1", "kind": "related", "direction": "in"} in second["links"]
    assert first["labels"] == ["EB"]
    failed = [e["detail"] for e in first["events"] if e["kind"] == "command_failed"]
    assert failed == ["#link: no other ticket MD-99"]


def test_a_watcher_gets_public_updates_and_never_internal_notes(team: Desk, tmp_path: Path) -> None:
    opened(team, tmp_path, "Printer jammed")
    agent_says(team, tmp_path, "#internal\n#watch facilities@customer.example", "w1")
    assert "facilities@customer.example" in team.show("MD-1")["participants"]
    agent_says(team, tmp_path, "Supplier says the part ships Friday.\n#internal", "w2")
    agent_says(team, tmp_path, "Hello Anna, the technician comes on Monday.", "w3")
    watched = to(team, "facilities@customer.example")
    assert len(watched) == 1
    text = watched[0].get_body(("plain",)).get_content()
    assert "technician comes on Monday" in text and "Supplier" not in text


def test_a_team_set_to_hear_of_every_ticket_gets_a_courtesy_alert(desk: Desk, tmp_path: Path) -> None:
    text = desk.config.read_text()
    courtesy = '\n[[teams]]\nname = "Vega"\naddress = "vega@helpdesk.example"\nevery_ticket = true\n'
    desk.config.write_text(text + courtesy + desk.maildir_relay)
    opened(desk, tmp_path, "Printer jammed")
    (alert,) = to(desk, "vega@helpdesk.example")
    assert "for your information" in alert.get_body(("plain",)).get_content() and "[MD-1]" in alert["Subject"]
    assert alert["Reply-To"] is None  # a shared address gets no signed reply address
    opened(desk, tmp_path, "Scanner broken", mid="q2")
    assert len(to(desk, "vega@helpdesk.example")) == 2


@pytest.mark.parametrize(
    ("command", "words"),
    [
        ("Replaced the fuser unit.\n#resolve fix", "We found the cause of the problem and fixed it."),
        ("#resolve workaround", "we have put a workaround in place"),
        ("Use the second tray.\n#resolve user-error", "Use the second tray."),
    ],
)
def test_resolving_records_the_method_and_the_mail_explains_it(
    team: Desk, tmp_path: Path, command: str, words: str
) -> None:
    opened(team, tmp_path, "Printer prints blank pages")
    agent_says(team, tmp_path, command, "r1")
    ticket = team.show("MD-1")
    assert ticket["status"] == "resolved"
    (mail_,) = [m for m in to(team, "anna@") if m["Subject"].startswith("Re:")]
    text = " ".join(mail_.get_body(("plain",)).get_content().split())
    assert " ".join(words.split()) in text and "#resolve" not in text


def test_a_duplicate_is_resolved_against_the_ticket_it_repeats(team: Desk, tmp_path: Path) -> None:
    opened(team, tmp_path, "VPN down", mid="d1")
    opened(team, tmp_path, "VPN not working", sender="bob@customer.example", mid="d2")
    agent_says(team, tmp_path, "#resolve duplicate MD-1", "r2", "VPN not working")
    second = team.show("MD-2")
    assert second["status"] == "resolved"
    assert {"ref": "MD-1", "kind": "duplicate-of", "direction": "out"} in second["links"]
    bad = "#resolve duplicate"
    agent_says(team, tmp_path, bad, "r3", "VPN down")
    assert team.show("MD-1")["status"] != "resolved"


def test_statuses_follow_whose_turn_it_is(team: Desk, tmp_path: Path) -> None:
    opened(team, tmp_path, "Printer jammed")
    assert team.show("MD-1")["status"] == "new"
    agent_says(team, tmp_path, "Hello Anna, which floor is it on?", "s1")
    assert team.show("MD-1")["status"] == "awaiting-customer"  # answered: the customer's turn
    reply = make_mail(subject="Re: [MD-1] Printer jammed", body="Floor 2.", message_id="s2@c.example")
    (tmp_path / "s2.eml").write_bytes(reply)
    team.ingest(tmp_path / "s2.eml", now="2026-11-02T11:00:00Z")
    assert team.show("MD-1")["status"] == "awaiting-support"  # the customer answered: ours again
    agent_says(team, tmp_path, "Thanks, we are looking into it.\n#status support", "s3")
    assert team.show("MD-1")["status"] == "awaiting-support"  # seed 002: just an update, still ours
    agent_says(team, tmp_path, "#status pending", "s4")
    assert team.show("MD-1")["status"] == "awaiting-customer"  # the old name still works


FORWARDS = sorted((Path(__file__).parent.parent / "fixtures" / "emails" / "forwarded").glob("*.eml"))


@pytest.mark.parametrize("path", FORWARDS, ids=lambda p: p.stem)
def test_a_colleagues_forward_makes_the_customer_the_requester(
    team: Desk, path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import tomllib

    expect = tomllib.loads(path.with_suffix(".expect.toml").read_text(encoding="utf-8"))
    # as our border MTA records it: the colleague's own domain passed DMARC
    stamped = tmp_path_factory.mktemp("fwd") / path.name
    vouched = b"Authentication-Results: mx.helpdesk.example; dmarc=pass header.from=helpdesk.example\r\n"
    stamped.write_bytes(vouched + path.read_bytes())
    team.ingest(stamped, now="2026-11-03T20:00:00Z")
    (ticket,) = team.tickets()
    outer = str(parse_from(path))
    if not expect["found"] or not outer.endswith("@helpdesk.example"):
        assert ticket["requester"] == outer  # not a forward, or not one of ours: as it came
        return
    assert ticket["requester"] == expect["sender"]
    (first,) = [m for m in ticket["messages"] if m["direction"] == "in"]
    for phrase in expect.get("text_contains", []):
        assert phrase in " ".join(first["text"].split()), phrase
    forwarded = [e["detail"] for e in ticket["events"] if e["kind"] == "forwarded"]
    assert len(forwarded) == 1 and outer in forwarded[0]
    if team.run("tickets", "show", "MD-1").code == 0 and not outer.startswith(("alice@", "bob@")):
        assert outer in ticket["participants"]
    # the customer is acknowledged, the colleague is not answered as a customer
    acks = [
        m
        for m in team.outgoing()
        if m["Subject"] and "[MD-1]" in m["Subject"] and expect["sender"] in str(m["To"])
    ]
    assert len(acks) == 1


def parse_from(path: Path) -> str:
    from maildesk.parse.message import parse

    sender = parse(path.read_bytes()).sender
    assert sender is not None
    return sender.email


def test_request_types_and_what_they_set_going(team: Desk, tmp_path: Path) -> None:
    spec = ("spec-sheet.pdf", b"%PDF-1.4 spec", "application/pdf")
    change = make_mail(sender="m.keller@acme-solar.example", subject="Please add new equipment to project X",
                       body="Hello,\nplease add the attached inverters to our project.\nMarkus",
                       message_id="rt1@c.example", attachments=[spec])  # fmt: skip
    (tmp_path / "rt1.eml").write_bytes(change)
    team.ingest(tmp_path / "rt1.eml", now="2026-11-02T09:00:00Z")
    first = team.show("MD-1")
    assert first["request_type"] == "configuration change"
    (handover,) = to(team, "am@helpdesk.example")
    assert [p.get_filename() for p in handover.iter_attachments()] == ["spec-sheet.pdf"]
    opened(team, tmp_path, "Printer", mid="rt2")  # "the printer on floor 2 is jammed again"
    assert team.show("MD-2")["request_type"] == "technical issue"
    idea = make_mail(subject="Portal idea", body="It would be great if the portal had a dark mode.",
                     message_id="rt3@c.example")  # fmt: skip
    (tmp_path / "rt3.eml").write_bytes(idea)
    team.ingest(tmp_path / "rt3.eml", now="2026-11-02T09:10:00Z")
    third = team.show("MD-3")
    assert third["request_type"] == "feedback"
    (note,) = [m for m in third["messages"] if m["visibility"] == "internal"]
    assert "dark mode" in note["text"]
    # a ticket linked to the configuration change makes that one high priority (seed 002)
    agent_says(team, tmp_path, "#internal\n#link MD-1\n#request technical", "rt4", "Portal idea")
    assert team.show("MD-1")["priority"] == "high"
    assert team.show("MD-3")["request_type"] == "technical issue"


def test_label_rules_label_new_tickets_by_organisation_and_keyword(team: Desk, tmp_path: Path) -> None:
    rules = '\n[[labels]]\nname = "Key account"\norganization = "Acme Solar"\n'
    rules += '\n[[labels]]\nname = "EB"\nkeywords = ["energy bridge"]\n'
    team.config.write_text(team.config.read_text() + rules)
    opened(team, tmp_path, "Energy Bridge offline", sender="m.keller@acme-solar.example", mid="lb1")
    opened(team, tmp_path, "Printer jammed", mid="lb2")
    assert team.show("MD-1")["labels"] == ["Key account", "EB"]
    assert team.show("MD-2")["labels"] == []
    bad = team.config.read_text() + '\n[[labels]]\nname = "X"\n'
    team.config.write_text(bad)
    result = team.run("tickets", "list")
    assert result.code == 1 and "labels[2].name" in result.err


def test_closing_a_ticket_that_waits_on_a_development_ticket_says_so(team: Desk, tmp_path: Path) -> None:
    opened(team, tmp_path, "Report export misses a column")
    agent_says(team, tmp_path, "#internal\n#bug https://tracker.example/DEV-9\n#priority low", "dv1")
    agent_says(team, tmp_path, "#close", "dv2")
    assert team.show("MD-1")["status"] == "closed"
    closing = [m for m in to(team, "anna@") if "future release" in m.get_body(("plain",)).get_content()]
    assert len(closing) == 1 and "tracker.example" not in closing[0].as_string()


def test_the_issue_record_is_kept_and_only_missing_details_are_asked_for(team: Desk, tmp_path: Path) -> None:
    body = (
        "Hello,\n\nsince this morning around 9 the billing module shows "
        '"Error 500: Internal Server Error" when I open an invoice.\n\nAnna Berg\nPhone +41 44 123 45 67'
    )
    (tmp_path / "ir1.eml").write_bytes(
        make_mail(subject="Invoices fail to open", body=body, message_id="ir1@c.example")
    )
    team.ingest(tmp_path / "ir1.eml", now="2026-11-02T09:00:00Z")
    record = team.show("MD-1")["issue_record"]
    assert record["phone"] == "+41 44 123 45 67"
    assert record["errors"] and "Error 500" in record["errors"][0]
    assert record["occurred"] and record["resource"]
    agent_says(team, tmp_path, "#needinfo", "ir2")
    (asked,) = [m for m in to(team, "anna@") if m["Subject"].startswith("Re:")]
    text = asked.get_body(("plain",)).get_content()
    assert "phone" not in text.lower()  # we have it
    assert "building" in text.lower()  # we do not


def test_agents_corrections_train_a_request_type_model_that_routing_then_uses(
    team: Desk, tmp_path: Path
) -> None:
    import csv

    rows = []
    words = {
        "configuration change": [
            "switch our plan to {x}",
            "move {x} to the other site",
            "set {x} as default",
        ],
        "technical issue": ["{x} throws an error", "{x} crashes on start", "{x} is broken since today"],
        "feedback": ["love {x}, one idea", "{x} would be nicer in blue", "suggest a shortcut for {x}"],
        "general inquiry": ["how does {x} work", "where do I find {x}", "what does {x} cost"],
    }
    things = ["the portal", "the report", "the export", "the dashboard", "invoices", "the app", "the API"]
    for label, patterns in words.items():
        for pattern in patterns:
            for thing in things:
                rows.append({"text": pattern.format(x=thing), "label": label})
    data = tmp_path / "requests.csv"
    with data.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["text", "label"])
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "models"
    trained = team.run("train", "request-type", "--data", str(data), "--out", str(out))
    assert trained.code == 0, trained.err
    text = team.config.read_text().replace(
        "[[organizations]]",
        f'[classify]\nrequest_type_model = "{out / "request-type"}"\n\n[[organizations]]',
        1,
    )
    team.config.write_text(text)
    opened(team, tmp_path, "Question", mid="m1")
    ask = make_mail(
        subject="Dashboard", body="Please set the dashboard as default.", message_id="m2@c.example"
    )
    (tmp_path / "m2.eml").write_bytes(ask)
    team.ingest(tmp_path / "m2.eml", now="2026-11-02T09:05:00Z")
    second = team.show("MD-2")
    assert second["request_type"] == "configuration change"
    assert any("request-type model" in e["detail"] for e in second["events"] if e["kind"] == "request_type")


def test_spam_forging_the_desks_own_domain_is_still_screened(desk: Desk, tmp_path: Path) -> None:
    import re

    corpus = Path(__file__).parent.parent.parent / "shared" / "corpora" / "spamassassin-2002" / "spam"
    spam = sorted(corpus.iterdir())[:40]
    caught = 0
    for i, path in enumerate(spam):
        raw = re.sub(rb"(?mi)^From:.*$", b"From: ceo@helpdesk.example", path.read_bytes(), count=1)
        (tmp_path / f"s{i}.eml").write_bytes(raw)
        caught += desk.ingest(tmp_path / f"s{i}.eml")["spam"]
    assert caught >= 30  # the desk's own domain on the From buys no trust without our MTA's word for it
