"""Agents by mail, through the real CLI: notifications, relayed replies, commands, internal notes, forgery."""

from __future__ import annotations

from email.message import EmailMessage
from pathlib import Path

import pytest

from maildesk.respond.addresses import verify
from tests.conftest import Desk
from tests.mail import make_mail, reply_to, to_agent

# the pipeline behaves the same on SQLite and on PostgreSQL
pytestmark = pytest.mark.both_databases

TEAM = """
[[agents]]
address = "carol@helpdesk.example"
name = "Carol Senior"
team = "Service Desk"
tier = 2

[[routing]]
keywords = ["printer", "laptop", "vpn"]
team = "Service Desk"
"""


@pytest.fixture
def team(desk: Desk) -> Desk:
    desk.config.write_text(desk.config.read_text() + TEAM + desk.maildir_relay)
    return desk


def customer_mail(desk: Desk) -> list[EmailMessage]:
    return [m for m in desk.outgoing() if "@helpdesk.example" not in str(m["To"])]


def ingest(desk: Desk, tmp_path: Path, name: str, raw: bytes, now: str = "2026-11-02T10:00:00Z") -> dict:
    path = tmp_path / f"{name}.eml"
    path.write_bytes(raw)
    return desk.ingest(path, now=now)


def open_ticket(desk: Desk, tmp_path: Path, subject: str = "Printer on floor 2 is jammed") -> EmailMessage:
    """Anna opens a ticket; returns the notification the assignee got."""
    first = make_mail(name="Anna Berg", subject=subject, message_id="q1@customer.example")
    ingest(desk, tmp_path, "q1", first, now="2026-11-02T09:01:00Z")
    ticket = desk.show("MD-1")
    assignee = ticket["assignee"]
    assert assignee, "round robin assigns the new ticket"
    return to_agent(desk.outgoing(), assignee)


def answer(desk: Desk, tmp_path: Path, notice: EmailMessage, body: str, mid: str, sender: str = "") -> None:
    agent = sender or str(notice["To"]).split("<")[-1].rstrip(">")
    ingest(desk, tmp_path, mid, reply_to(notice, agent, body, message_id=mid))


def test_the_assignee_is_notified_with_a_signed_reply_address_of_their_own(
    team: Desk, tmp_path: Path
) -> None:
    notice = open_ticket(team, tmp_path)
    assert notice["To"].addresses[0].addr_spec == "alice@helpdesk.example"
    assert str(notice["From"]) == "Anna Berg via Example Support <support@helpdesk.example>"
    assert notice["Auto-Submitted"] == "auto-generated" and "[MD-1]" in notice["Subject"]
    token = verify("test-secret", notice["Reply-To"].addresses[0].addr_spec)
    assert token is not None and token.ticket_number == 1 and token.purpose == "reply"
    body = notice.get_body(("plain",)).get_content()
    assert "the printer on floor 2 is jammed again" in body and "#status" in body
    comment = next(w for w in body.split() if w.startswith("support+") and ".c." in w).rstrip(".,")
    assert verify("test-secret", comment).purpose == "comment"  # type: ignore[union-attr]
    # the customer's reply reaches the assignee too, threaded under the first notification
    second = make_mail(subject="Re: [MD-1] Printer on floor 2 is jammed", body="Still jammed.",
                       message_id="q2@customer.example", in_reply_to="q1@customer.example")  # fmt: skip
    ingest(team, tmp_path, "q2", second)
    again = to_agent(team.outgoing(), "alice@", "")
    assert "Still jammed." in again.get_body(("plain",)).get_content()
    assert again["In-Reply-To"] == "<q2@customer.example>"


def test_an_agent_reply_reaches_the_customer_from_the_desk_threaded_and_stripped(
    team: Desk, tmp_path: Path
) -> None:
    notice = open_ticket(team, tmp_path)
    answer(
        team,
        tmp_path,
        notice,
        "Hello Anna,\n\nthe printer is fixed now.\n#status resolved\n#priority low",
        "r1@h",
    )
    out = [m for m in customer_mail(team) if m["Subject"].startswith("Re:")]
    assert len(out) == 1
    reply = out[0]
    assert str(reply["From"]) == "Alice Example via Example Support <support@helpdesk.example>"
    assert reply["To"].addresses[0].addr_spec == "anna@customer.example"
    assert reply["In-Reply-To"] == "<q1@customer.example>" and "<q1@customer.example>" in reply["References"]
    assert reply["Subject"] == "Re: [MD-1] Printer on floor 2 is jammed"
    assert reply["Auto-Submitted"] is None  # a person wrote it
    assert reply["Reply-To"].addresses[0].addr_spec == "support@helpdesk.example"
    text = reply.get_body(("plain",)).get_content()
    assert "the printer is fixed now." in text
    assert "We now handle your request at low priority." in text  # seed 003: priority changes are told
    assert "#status" not in text and "#priority" not in text and "> " not in text  # no commands, no quote
    assert "alice@helpdesk.example" not in reply.as_string()  # the agent's own address never leaks
    html = reply.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "the printer is fixed now." in html
    ticket = team.show("MD-1")
    assert ticket["status"] == "resolved" and ticket["priority"] == "low"
    assert ticket["first_response_at"] is not None
    (mine,) = [m for m in ticket["messages"] if m["kind"] == "agent"]
    assert mine["visibility"] == "public" and "#status" not in mine["text"]
    confirmation = [m for m in team.outgoing() if "alice@" in str(m["To"]) and "Done" in m["Subject"]]
    assert len(confirmation) == 1
    body = confirmation[0].get_body(("plain",)).get_content()
    assert "anna@customer.example" in body and "#status resolved: done" in body


def test_internal_notes_and_the_comment_address_never_reach_the_customer(team: Desk, tmp_path: Path) -> None:
    notice = open_ticket(team, tmp_path)
    before = len(customer_mail(team))
    answer(team, tmp_path, notice, "Toner supplier is slow again.\n#internal", "n1@h")
    comment = next(
        w.rstrip(".,") for w in notice.get_body(("plain",)).get_content().split()
        if w.startswith("support+") and ".c." in w
    )  # fmt: skip
    raw = reply_to(notice, "alice@helpdesk.example", "Called the supplier.", message_id="n2@h", to=comment)
    ingest(team, tmp_path, "n2", raw)
    assert len(customer_mail(team)) == before
    notes = [m for m in team.show("MD-1")["messages"] if m["kind"] == "agent"]
    assert [n["visibility"] for n in notes] == ["internal", "internal"]
    assert team.show("MD-1")["first_response_at"] is None  # a note is no answer to the customer


def test_commands_are_applied_and_errors_explained_to_the_agent(team: Desk, tmp_path: Path) -> None:
    notice = open_ticket(team, tmp_path)
    body = "#assign bob\n#type incident\n#priority sky-high\n#frobnicate now\n#assign zed"
    answer(team, tmp_path, notice, body, "c1@h")
    ticket = team.show("MD-1")
    assert ticket["assignee"] == "bob@helpdesk.example" and ticket["issue_type"] == "Incident"
    assert ticket["priority"] == "normal"
    everything = team.outgoing()
    (confirmation,) = [m for m in everything if "alice@" in str(m["To"]) and "failed" in m["Subject"]]
    text = confirmation.get_body(("plain",)).get_content()
    assert "#assign bob: done" in text and "unknown priority 'sky-high'" in text
    assert "#frobnicate now: NOT DONE" in text and "no agent called 'zed'" in text
    assert "Nothing was sent to the customer" in text
    # bob, the new assignee, gets the ticket with his own signed address
    handed = to_agent(everything, "bob@")
    assert (
        verify("test-secret", handed["Reply-To"].addresses[0].addr_spec).agent_id
        != verify(  # type: ignore[union-attr]
            "test-secret", notice["Reply-To"].addresses[0].addr_spec
        ).agent_id
    )  # type: ignore[union-attr]
    kinds = [e["kind"] for e in ticket["events"]]
    assert kinds.count("command") == 2 and kinds.count("command_failed") == 2 and "command_unknown" in kinds


def test_escalation_tells_the_next_tier_and_the_requester(team: Desk, tmp_path: Path) -> None:
    notice = open_ticket(team, tmp_path)
    answer(team, tmp_path, notice, "#escalate needs a new fuser unit", "e1@h")
    everything = team.outgoing()
    carol = to_agent(everything, "carol@")
    assert "needs a new fuser unit" in carol.get_body(("plain",)).get_content()
    told = [m for m in everything if "anna@" in str(m["To"]) and m["Subject"].startswith("Re:")]
    assert len(told) == 1
    text = told[0].get_body(("plain",)).get_content()
    assert "senior engineers" in text and "vendor" not in text.lower()
    ticket = team.show("MD-1")
    assert ticket["assignee"] is None  # tier 2 takes it over
    assert team.sql("SELECT tier FROM ticket WHERE number = 1") == [(2,)]
    # carol answers from her own notification; the head is the last tier
    answer(team, tmp_path, carol, "#escalate\n#escalate", "e2@h")
    events = [e["detail"] for e in team.show("MD-1")["events"] if e["kind"].startswith("command")]
    assert any("tier 3" in d for d in events) and any("already at the last tier" in d for d in events)


@pytest.mark.parametrize(
    ("command", "template_words", "status"),
    [
        ("#close", "closed", "closed"),
        ("#status resolved replaced the fuser unit", "replaced the fuser unit", "resolved"),
        ("#needinfo the printer's asset number; the floor", "asset number", "awaiting-customer"),
    ],
)
def test_a_bare_command_sends_the_customer_its_template(
    team: Desk, tmp_path: Path, command: str, template_words: str, status: str
) -> None:
    notice = open_ticket(team, tmp_path)
    answer(team, tmp_path, notice, command, "b1@h")
    told = [m for m in customer_mail(team) if m["Subject"].startswith("Re:")]
    assert len(told) == 1
    text = told[0].get_body(("plain",)).get_content()
    assert template_words in text and "Thank" in text and "MD-1" in text
    ticket = team.show("MD-1")
    assert ticket["status"] == status and ticket["first_response_at"] is not None


def test_a_customer_reply_to_a_waiting_ticket_puts_it_back_with_the_team(team: Desk, tmp_path: Path) -> None:
    notice = open_ticket(team, tmp_path)
    answer(team, tmp_path, notice, "#needinfo asset number", "p1@h")
    assert team.show("MD-1")["status"] == "awaiting-customer"
    (asked,) = [m for m in customer_mail(team) if m["Subject"].startswith("Re:")]
    raw = make_mail(subject=str(asked["Subject"]), body="It is PR-2231.", message_id="p2@customer.example",
                    in_reply_to=asked["Message-ID"].strip("<>"))  # fmt: skip
    ingest(team, tmp_path, "p2", raw)
    assert team.show("MD-1")["status"] == "awaiting-support"


def test_a_forged_agent_from_runs_nothing_relays_nothing_and_the_agent_is_told(
    team: Desk, tmp_path: Path
) -> None:
    open_ticket(team, tmp_path)
    ack = next(m for m in customer_mail(team) if "anna@" in str(m["To"]))
    before = len(customer_mail(team))
    # a customer writes as alice, answering the acknowledgement so the headers thread it into MD-1
    forged = make_mail(sender="alice@helpdesk.example", subject="Re: [MD-1] Printer on floor 2 is jammed",
                       body="Closing this.\n#close\n#assign nobody", message_id="f1@evil.example",
                       in_reply_to=ack["Message-ID"].strip("<>"))  # fmt: skip
    ingest(team, tmp_path, "f1", forged)
    ticket = team.show("MD-1")
    assert ticket["status"] != "closed" and ticket["assignee"] == "alice@helpdesk.example"
    (kept,) = [m for m in ticket["messages"] if m["message_id"] == "f1@evil.example"]
    assert kept["kind"] == "customer"
    assert any(
        e["kind"] == "agent_unverified" and "no signed reply address" in e["detail"] for e in ticket["events"]
    )
    assert len(customer_mail(team)) == before
    warning = [m for m in team.outgoing() if "alice@" in str(m["To"]) and "Not run" in m["Subject"]]
    assert (
        len(warning) == 1 and "f1" not in warning[0]["Reply-To"]
        if warning[0]["Reply-To"]
        else len(warning) == 1
    )
    # a tag typed in a forged agent From does not join a ticket either
    tagged = make_mail(sender="alice@helpdesk.example", subject="[MD-1] #close", body="#close",
                       message_id="f2@evil.example")  # fmt: skip
    ingest(team, tmp_path, "f2", tagged)
    assert team.show("MD-1")["status"] != "closed"
    assert "f2@evil.example" not in [m["message_id"] for m in team.show("MD-1")["messages"]]


def test_a_signed_address_used_from_another_address_or_edited_does_not_act(
    team: Desk, tmp_path: Path
) -> None:
    notice = open_ticket(team, tmp_path)
    # the notification leaked to someone else, who answers it
    answer(team, tmp_path, notice, "#close", "x1@h", sender="mallory@evil.example")
    ticket = team.show("MD-1")
    assert ticket["status"] != "closed"
    assert any("was used by mallory@evil.example" in e["detail"] for e in ticket["events"])
    # alice's token with the ticket number changed does not verify
    address = notice["Reply-To"].addresses[0].addr_spec
    edited = address.replace("md-1.", "md-2.")
    ingest(team, tmp_path, "q3", make_mail(subject="Laptop will not boot", message_id="q3@customer.example"))
    raw = reply_to(notice, "alice@helpdesk.example", "#close", message_id="x2@h", to=edited)
    ingest(team, tmp_path, "x2", raw)
    assert team.show("MD-2")["status"] != "closed" and team.show("MD-1")["status"] != "closed"


def test_a_token_from_one_ticket_acts_only_on_that_ticket(team: Desk, tmp_path: Path) -> None:
    notice = open_ticket(team, tmp_path)
    ingest(team, tmp_path, "q3", make_mail(subject="Laptop will not boot", message_id="q3@customer.example"))
    # alice writes to MD-1's signed address but with MD-2's subject tag and headers
    raw = reply_to(notice, "alice@helpdesk.example", "#close", message_id="y1@h")
    raw = raw.replace(
        b"Subject: Re: [MD-1] Printer on floor 2 is jammed", b"Subject: Re: [MD-2] Laptop will not boot"
    )
    raw = raw.replace(notice["Message-ID"].encode(), b"<q3@customer.example>")
    ingest(team, tmp_path, "y1", raw)
    assert team.show("MD-1")["status"] == "closed"
    assert team.show("MD-2")["status"] != "closed"


def test_an_agents_out_of_office_answer_to_a_notification_acts_on_nothing(team: Desk, tmp_path: Path) -> None:
    notice = open_ticket(team, tmp_path)
    before = len(customer_mail(team))
    raw = reply_to(notice, "alice@helpdesk.example", "I am away until Monday.\n#close", message_id="oo@h",
                   headers={"Auto-Submitted": "auto-replied"})  # fmt: skip
    ingest(team, tmp_path, "oo", raw)
    assert team.show("MD-1")["status"] != "closed"
    assert len(customer_mail(team)) == before


def test_a_generated_secret_is_kept_in_the_database_and_survives_restarts(
    team: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from maildesk import signing

    monkeypatch.delenv("MAILDESK_SECRET", raising=False)
    team.config.write_text(team.config.read_text().replace('secret = "test-secret"\n', ""))
    signing.forget()
    notice = open_ticket(team, tmp_path)
    ((secret,),) = team.sql("SELECT value FROM setting WHERE name = 'desk.secret'")
    assert len(secret) >= 40
    assert verify(secret, notice["Reply-To"].addresses[0].addr_spec) is not None
    signing.forget()  # as a new process would start
    answer(team, tmp_path, notice, "Fixed.\n#status resolved", "g1@h")
    assert team.show("MD-1")["status"] == "resolved"


def test_hostile_customer_headers_cannot_add_headers_to_the_agents_notification(
    team: Desk, tmp_path: Path
) -> None:
    raw = make_mail(
        subject="Printer =?utf-8?q?jam=0D=0ABcc:_x@evil.example?=", message_id="h1@customer.example"
    )
    hostile_name = b"From: =?utf-8?q?Anna=E2=80=A8Bcc:_x@evil.example_=22?= <anna@customer.example>"
    raw = raw.replace(b"From: anna@customer.example", hostile_name)
    ingest(team, tmp_path, "h1", raw)
    everything = team.outgoing()
    assert everything, "the acknowledgement and the notification were sent"
    for message in everything:
        assert message["Bcc"] is None
        assert all("\n" not in str(v) and "\r" not in str(v) for v in message.values())
    notice = to_agent(everything, "alice@")
    assert (
        notice["To"].addresses[0].addr_spec == "alice@helpdesk.example" and len(notice["To"].addresses) == 1
    )


def test_mail_from_an_unreadable_sender_still_reaches_the_agents(team: Desk, tmp_path: Path) -> None:
    raw = make_mail(subject="Printer on fire", message_id="u1@customer.example")
    raw = raw.replace(
        b"From: anna@customer.example", b"From: =?utf-8?q?Anna=0D=0ABcc:_x@evil.example?= <anna@"
    )
    ingest(team, tmp_path, "u1", raw)
    notice = to_agent(team.outgoing(), "alice@")
    assert "Printer on fire" in str(notice["Subject"]) and notice["Bcc"] is None
