"""Threading rules: headers, tags, subjects, strangers, reopening, and order independence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maildesk.subjects import strip_prefixes, subject_key, tag_subject, ticket_numbers
from tests.conftest import Desk, inbound
from tests.mail import make_mail

# the pipeline behaves the same on SQLite and on PostgreSQL
pytestmark = pytest.mark.both_databases

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def write(folder: Path, name: str, raw: bytes) -> Path:
    path = folder / name
    path.write_bytes(raw)
    return path


def groups(desk: Desk) -> list[set[str]]:
    return sorted(({m["message_id"] for m in inbound(t)} for t in desk.tickets()), key=sorted)


def test_reply_by_in_reply_to_joins(desk: Desk, tmp_path: Path) -> None:
    desk.ingest(write(tmp_path, "1.eml", make_mail(message_id="q1@c.example")))
    desk.ingest(
        write(
            tmp_path,
            "2.eml",
            make_mail(subject="Re: totally different", message_id="r1@c.example", in_reply_to="q1@c.example"),
        )
    )
    assert groups(desk) == [{"q1@c.example", "r1@c.example"}]
    events = desk.show("MD-1")["events"]
    assert any(e["kind"] == "message" and "in-reply-to" in e["detail"] for e in events)


def test_reply_by_references_only_joins(desk: Desk, tmp_path: Path) -> None:
    desk.ingest(write(tmp_path, "1.eml", make_mail(message_id="q1@c.example")))
    desk.ingest(
        write(
            tmp_path,
            "2.eml",
            make_mail(subject="x", message_id="r1@c.example", references=["unknown@x", "q1@c.example"]),
        )
    )
    assert len(groups(desk)) == 1


def test_tag_from_requester_joins_but_from_a_stranger_opens_a_new_ticket(desk: Desk, tmp_path: Path) -> None:
    desk.ingest(write(tmp_path, "1.eml", make_mail(message_id="q1@c.example")))
    desk.ingest(write(tmp_path, "2.eml", make_mail(subject="[MD-1] more info", message_id="r1@c.example")))
    desk.ingest(
        write(
            tmp_path,
            "3.eml",
            make_mail(
                sender="mallory@evil.example", subject="Re: [MD-1] me too", message_id="s1@evil.example"
            ),
        )
    )
    tickets = desk.tickets()
    assert [len(inbound(t)) for t in tickets] == [2, 1]
    assert tickets[1]["requester"] == "mallory@evil.example"
    assert "mallory@evil.example" not in desk.show("MD-1")["participants"]
    assert any(e["kind"] == "tag_refused" for e in tickets[1]["events"])


def test_colleague_of_a_configured_organisation_may_use_the_tag(desk: Desk, tmp_path: Path) -> None:
    desk.ingest(
        write(tmp_path, "1.eml", make_mail(sender="anna@acme-solar.example", message_id="q1@a.example"))
    )
    desk.ingest(
        write(
            tmp_path,
            "2.eml",
            make_mail(sender="ben@acme-solar.example", subject="[MD-1] update", message_id="r1@a.example"),
        )
    )
    assert len(desk.tickets()) == 1
    assert desk.show("MD-1")["participants"] == ["ben@acme-solar.example"]


def test_two_customers_writing_help_never_share_a_ticket(desk: Desk, tmp_path: Path) -> None:
    desk.ingest(write(tmp_path, "1.eml", make_mail(sender="a@one.example", subject="Help", message_id="a@1")))
    desk.ingest(write(tmp_path, "2.eml", make_mail(sender="b@two.example", subject="Help", message_id="b@2")))
    desk.ingest(
        write(tmp_path, "3.eml", make_mail(sender="b@two.example", subject="RE: Help", message_id="b@3"))
    )
    assert groups(desk) == [{"a@1"}, {"b@2", "b@3"}]


def test_subject_reply_only_within_the_window(desk: Desk, tmp_path: Path) -> None:
    desk.ingest(write(tmp_path, "1.eml", make_mail(subject="Invoice 2026-11", message_id="a@1", date=T0)))
    desk.ingest(
        write(
            tmp_path,
            "2.eml",
            make_mail(subject="AW: Invoice 2026-11", message_id="a@2", date=T0 + timedelta(days=2)),
        )
    )
    desk.ingest(
        write(
            tmp_path,
            "3.eml",
            make_mail(subject="Invoice 2026-11", message_id="a@3", date=T0 + timedelta(days=90)),
        )
    )
    assert groups(desk) == [{"a@1", "a@2"}, {"a@3"}]


def test_cc_becomes_participant_and_reply_all_joins(desk: Desk, tmp_path: Path) -> None:
    desk.ingest(
        write(
            tmp_path,
            "1.eml",
            make_mail(cc="Carl <carl@other.example>, support@helpdesk.example", message_id="q1@c.example"),
        )
    )
    desk.ingest(
        write(
            tmp_path,
            "2.eml",
            make_mail(
                sender="carl@other.example",
                subject="RE: Printer on floor 2 is jammed",
                message_id="c2@o.example",
            ),
        )
    )
    ticket = desk.show("MD-1")
    assert ticket["participants"] == ["carl@other.example"]
    assert len(inbound(ticket)) == 2


def test_reply_to_closed_ticket_reopens_within_window_else_follow_up(desk: Desk, tmp_path: Path) -> None:
    from maildesk.tickets.store.db import open_database
    from maildesk.tickets.store.models import Ticket

    desk.ingest(write(tmp_path, "1.eml", make_mail(message_id="q1@c.example")), now="2026-11-02T09:00:00Z")
    open_database(desk.db_url)
    Ticket.update(status="closed", closed_at=datetime(2026, 11, 3, 9, 0)).execute()
    desk.ingest(
        write(
            tmp_path,
            "2.eml",
            make_mail(
                subject="Re: x",
                message_id="r1@c.example",
                in_reply_to="q1@c.example",
                date=T0 + timedelta(days=3),
            ),
        ),
        now="2026-11-05T09:00:00Z",
    )
    ticket = desk.show("MD-1")
    assert ticket["status"] == "open" and any(e["kind"] == "reopened" for e in ticket["events"])

    open_database(desk.db_url)
    Ticket.update(status="closed", closed_at=datetime(2026, 11, 6, 9, 0)).execute()
    desk.ingest(
        write(
            tmp_path,
            "3.eml",
            make_mail(
                subject="Re: x",
                message_id="r2@c.example",
                in_reply_to="r1@c.example",
                date=T0 + timedelta(days=60),
            ),
        ),
        now="2027-01-01T09:00:00Z",
    )
    tickets = desk.tickets()
    assert len(tickets) == 2
    assert tickets[0]["status"] == "closed"
    follow = desk.show("MD-2")
    assert follow["links"] == [{"ref": "MD-1", "kind": "follow-up", "direction": "out"}]


def test_reply_arriving_before_its_parent_lands_on_one_ticket(desk: Desk, tmp_path: Path) -> None:
    reply = make_mail(
        sender="carl@other.example",
        subject="Re: Printer",
        message_id="r1@c.example",
        in_reply_to="q1@c.example",
        references=["q1@c.example"],
        date=T0 + timedelta(hours=1),
    )
    original = make_mail(subject="Printer", message_id="q1@c.example", date=T0)
    desk.ingest(write(tmp_path, "1.eml", reply))
    desk.ingest(write(tmp_path, "2.eml", original))
    tickets = desk.tickets()
    assert len(tickets) == 1
    assert tickets[0]["requester"] == "anna@customer.example", "the earliest message's author is requester"
    assert tickets[0]["subject"] == "Printer"


def test_split_conversation_is_merged_when_the_middle_arrives(desk: Desk, tmp_path: Path) -> None:
    a = make_mail(message_id="a@x", date=T0, subject="Start")
    b = make_mail(message_id="b@x", in_reply_to="a@x", date=T0 + timedelta(hours=1), subject="Re: Start")
    c = make_mail(
        message_id="c@x",
        in_reply_to="b@x",
        date=T0 + timedelta(hours=2),
        subject="Re: Re: Start",
        sender="zed@else.example",
    )
    for name, raw in (("c", c), ("a", a), ("b", b)):
        desk.ingest(write(tmp_path, f"{name}.eml", raw))
    live = desk.tickets()
    assert len(live) == 1 and len(inbound(live[0])) == 3
    merged = desk.run("tickets", "list", "--status", "merged", "--json").json()
    assert len(merged) == 1 and merged[0]["merged_into"] == live[0]["ref"]


def test_ingesting_the_same_conversation_twice_changes_nothing(desk: Desk, tmp_path: Path) -> None:
    folder = tmp_path / "conv"
    folder.mkdir()
    write(folder, "1.eml", make_mail(message_id="a@x"))
    write(folder, "2.eml", make_mail(message_id="b@x", in_reply_to="a@x", subject="Re: y"))
    first = desk.ingest(folder)
    before = groups(desk)
    second = desk.ingest(folder)
    assert first["new_tickets"] == 1 and first["replies"] == 1
    assert second["duplicates"] == 2 and second["new_tickets"] == 0
    assert groups(desk) == before


# ------------------------------------------------------------------ subjects


def test_subject_normalisation_across_languages() -> None:
    base = "Drucker im 2. OG"
    for subject in (
        f"Re: AW: RE: Fwd: {base}",
        f"AW: WG: {base}",
        f"RE : {base}",
        f"Réf. : {base}",
        f"SV: {base}",
        f"Antw: {base}",
        f"Re[2]: {base}",
        f"[EXTERNAL] RE: {base}",
        f"TR: {base}",
        f"Fwd: [MD-7] {base}",
        f"回复：{base}",
        f"R: {base}",
        f"VS: {base}",
    ):
        assert subject_key(subject) == subject_key(base), subject
    assert subject_key("Help") == "help"
    assert subject_key("Re: ") == "" and subject_key("(no subject)") == ""
    assert strip_prefixes("Re: Rechnung: März") == "Rechnung: März"


def test_tags() -> None:
    assert ticket_numbers("Re: [MD-12] printer [md-13]", "MD") == [12, 13]
    assert ticket_numbers("[MD12] and [XY-3]", "MD") == [12]
    assert tag_subject("Re: printer", "MD", 7) == "[MD-7] printer"
    assert tag_subject("[MD-7] printer", "MD", 7) == "[MD-7] printer"


@given(st.text(max_size=300))
def test_subject_functions_are_total_and_idempotent(subject: str) -> None:
    key = subject_key(subject)
    assert subject_key(key) == key or key == ""
    assert isinstance(ticket_numbers(subject, "MD"), list)


# ------------------------------------------------------------------ order independence

CONVERSATION = [
    make_mail(message_id="c1@x", subject="VPN down", date=T0, sender="anna@acme-solar.example"),
    make_mail(
        message_id="c2@x",
        subject="Re: VPN down",
        in_reply_to="c1@x",
        references=["c1@x"],
        date=T0 + timedelta(minutes=30),
        sender="ben@acme-solar.example",
    ),
    make_mail(
        message_id="c3@x",
        subject="Re: VPN down",
        in_reply_to="c2@x",
        references=["c1@x", "c2@x"],
        date=T0 + timedelta(hours=1),
        sender="anna@acme-solar.example",
    ),
    make_mail(
        message_id="c4@x",
        subject="AW: VPN down",
        in_reply_to="c3@x",
        date=T0 + timedelta(hours=2),
        sender="carl@partner.example",
    ),
    make_mail(
        message_id="o1@x", subject="Invoice", date=T0 + timedelta(minutes=5), sender="dora@shop.example"
    ),
    make_mail(
        message_id="o2@x",
        subject="Re: Invoice",
        in_reply_to="o1@x",
        references=["o1@x"],
        date=T0 + timedelta(hours=3),
        sender="dora@shop.example",
    ),
]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(range(len(CONVERSATION))), batch=st.booleans())
def test_arrival_order_does_not_change_the_tickets(tmp_path_factory, capsys, order, batch) -> None:
    root = tmp_path_factory.mktemp("order")
    desk = Desk(root, f"sqlite:///{root / 'md.db'}", capsys)
    paths = [write(root, f"{i:02d}.eml", CONVERSATION[j]) for i, j in enumerate(order)]
    if batch:
        desk.ingest(*paths)
    else:
        for path in paths:
            desk.ingest(path)
    tickets = desk.tickets()
    assert sorted(({m["message_id"] for m in inbound(t)} for t in tickets), key=sorted) == [
        {"c1@x", "c2@x", "c3@x", "c4@x"},
        {"o1@x", "o2@x"},
    ]
    requesters = sorted(t["requester"] for t in tickets)
    assert requesters == ["anna@acme-solar.example", "dora@shop.example"]
