"""Screening and the acknowledgement through the real CLI: spam, auto-replies, loops, the outbox."""

from __future__ import annotations

import email
import json
from datetime import UTC, datetime
from email.policy import default
from pathlib import Path

import pytest

from tests.conftest import CORPORA, FIXTURES, Desk
from tests.mail import make_mail, reply_to, sent_mail, to_agent

# the pipeline behaves the same on SQLite and on PostgreSQL
pytestmark = pytest.mark.both_databases

SPAM = sorted((CORPORA / "spamassassin-2002" / "spam").iterdir())
HAM = sorted((CORPORA / "spamassassin-2002" / "easy_ham").iterdir())


def write(folder: Path, name: str, raw: bytes) -> Path:
    path = folder / name
    path.write_bytes(raw)
    return path


def outbox(desk: Desk, team: bool = False) -> list[email.message.EmailMessage]:
    """What maildesk sent to customers (and to the team too with `team`), after `outbox flush`."""
    result = desk.run("outbox", "flush")
    assert result.code == 0, result.err
    folder = desk.root / "var" / "outbox" / "new"
    if not folder.is_dir():
        return []
    sent = [
        email.message_from_bytes(p.read_bytes(), policy=default)  # type: ignore[misc]
        for p in sorted(folder.iterdir())
    ]
    return [m for m in sent if team or "@helpdesk.example" not in str(m["To"])]


@pytest.fixture
def relay(desk: Desk) -> Desk:
    """The desk with its outbox going to a maildir inside the test's folder."""
    desk.config.write_text(
        desk.config.read_text() + f'\n[outbound]\nrelay = "maildir:{desk.root / "var" / "outbox"}"\n'
    )
    return desk


def test_a_new_ticket_is_acknowledged_once_with_rfc3834_headers(relay: Desk, tmp_path: Path) -> None:
    relay.ingest(
        write(tmp_path, "1.eml", make_mail(message_id="a1@customer.example", name="Anna Berg")),
        now="2026-11-02T09:01:00Z",
    )
    relay.ingest(
        write(
            tmp_path,
            "2.eml",
            make_mail(subject="Re: Printer on floor 2 is jammed", message_id="a2@customer.example",
                      in_reply_to="a1@customer.example", date=datetime(2026, 11, 2, 9, 30, tzinfo=UTC)),
        ),
        now="2026-11-02T09:31:00Z",
    )  # fmt: skip
    (sent,) = outbox(relay)
    assert sent["To"] == "Anna Berg <anna@customer.example>"
    assert sent["Subject"] == "[MD-1] Printer on floor 2 is jammed"
    assert sent["Auto-Submitted"] == "auto-replied"
    assert sent["In-Reply-To"] == "<a1@customer.example>"
    assert sent["Message-ID"].endswith(".md-1@helpdesk.example>")
    text = sent.get_body(("plain",)).get_content()
    # the correspondence rules: purpose, what the customer needs, an offer of help, thanks
    for phrase in ("Dear Anna Berg", "opened ticket MD-1", "within 2 business hours", "[MD-1]",
                   "anything else we can help you with", "Thank you"):  # fmt: skip
        assert phrase in text
    ticket = relay.show("MD-1")
    assert [m["direction"] for m in ticket["messages"]] == ["in", "out", "in"]
    assert any(e["kind"] == "acknowledged" for e in ticket["events"])
    # the customer's answer to the acknowledgement threads by its Message-ID
    assert len(relay.tickets()) == 1


def test_html_acknowledgement_escapes_the_customer_subject(relay: Desk, tmp_path: Path) -> None:
    relay.ingest(write(tmp_path, "x.eml", make_mail(subject='<script>alert("x")</script> & more')))
    (sent,) = outbox(relay)
    html = sent.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert '<script>alert("x")</script>' in sent.get_body(("plain",)).get_content()


def test_hostile_subject_cannot_inject_headers(relay: Desk, tmp_path: Path) -> None:
    raw = make_mail(subject="Help").replace(
        b"Subject: Help", b"Subject: =?utf-8?q?Help=0D=0ABcc=3A_evil=40x.example?="
    )
    relay.ingest(write(tmp_path, "h.eml", raw))
    (sent,) = outbox(relay)
    assert sent["Bcc"] is None and "evil@x.example" not in (sent["To"] or "")
    assert "\n" not in sent["Subject"]


def test_auto_reply_is_recorded_never_answered_and_never_reopens(relay: Desk, tmp_path: Path) -> None:
    relay.ingest(write(tmp_path, "1.eml", make_mail(message_id="q@customer.example")))
    relay.run("tickets", "list")
    (ack,) = outbox(relay)
    # the ticket is resolved; then the customer's out-of-office answers our acknowledgement
    relay.sql("UPDATE ticket SET status = 'resolved', closed_at = '2026-11-02 10:00:00'")
    ooo = make_mail(
        subject="Automatic reply: [MD-1] Printer on floor 2 is jammed",
        message_id="ooo@customer.example",
        in_reply_to=ack["Message-ID"].strip("<>"),
        body="I am out of the office until Monday.",
    )
    summary = relay.ingest(write(tmp_path, "2.eml", ooo), now="2026-11-02T11:00:00Z")
    assert summary["auto_replies"] == 1
    ticket = relay.show("MD-1")
    assert ticket["status"] == "resolved"
    assert [m["kind"] for m in ticket["messages"] if m["direction"] == "in"] == ["customer", "auto-reply"]
    assert any(e["kind"] == "auto-reply" and "marker" in e["detail"] for e in ticket["events"])
    assert outbox(relay) == [ack] or len(outbox(relay)) == 1  # nothing new was sent


def test_unthreaded_out_of_office_is_quarantined_but_a_monitoring_alert_opens_a_ticket(
    relay: Desk, tmp_path: Path
) -> None:
    relay.ingest(write(tmp_path, "ooo.eml", make_mail(subject="Out of Office", message_id="o@x.example")))
    alert = make_mail(
        sender="noreply@monitoring.example",
        subject="CRITICAL: disk full on db1",
        message_id="alert@monitoring.example",
    ).replace(b"Subject:", b"Auto-Submitted: auto-generated\r\nSubject:")
    relay.ingest(write(tmp_path, "alert.eml", alert))
    (quarantined,) = relay.run("quarantine", "list", "--json").json()
    assert "auto-reply" in quarantined["reason"] and "not about any ticket" in quarantined["reason"]
    (ticket,) = relay.tickets()
    assert ticket["subject"] == "CRITICAL: disk full on db1"
    assert any(e["kind"] == "auto-reply" and "auto-generated" in e["detail"] for e in ticket["events"])
    assert outbox(relay) == []
    # released by a person, the out-of-office opens a ticket after all
    assert relay.run("quarantine", "release", str(quarantined["id"])).code == 0
    assert len(relay.tickets()) == 2


def test_acknowledgements_to_one_address_are_rate_limited(relay: Desk, tmp_path: Path) -> None:
    for i in range(6):
        relay.ingest(
            write(tmp_path, f"{i}.eml", make_mail(subject=f"Distinct problem {i}", message_id=f"r{i}@c.ex")),
            now=f"2026-11-02T09:{10 + i}:00Z",
        )  # fmt: skip
    assert len(outbox(relay)) == 3
    skipped = [e for t in relay.tickets() for e in t["events"] if e["kind"] == "acknowledgement_skipped"]
    assert len(skipped) == 3 and "already had 3 automatic messages within 1 h" in skipped[0]["detail"]
    # an hour later the limit has passed
    relay.ingest(write(tmp_path, "later.eml", make_mail(subject="Another thing", message_id="r9@c.example")),
                 now="2026-11-02T10:30:00Z")  # fmt: skip
    assert len(outbox(relay)) == 4


@pytest.mark.parametrize(
    "sender", ["MAILER-DAEMON@mx.customer.example", "postmaster@customer.example", "no-reply@shop.example"]
)
def test_machine_addresses_are_never_acknowledged(relay: Desk, tmp_path: Path, sender: str) -> None:
    relay.ingest(
        write(tmp_path, "m.eml", make_mail(sender=sender, subject="Your order", message_id="m@x.example"))
    )
    assert outbox(relay) == []


def test_our_own_mail_coming_back_is_quarantined_as_a_loop(relay: Desk, tmp_path: Path) -> None:
    relay.ingest(write(tmp_path, "1.eml", make_mail(message_id="q@customer.example")))
    (ack,) = outbox(relay)
    summary = relay.ingest(write(tmp_path, "back.eml", ack.as_bytes()))
    assert summary["quarantined"] == 1
    (item,) = relay.run("quarantine", "list", "--json").json()
    assert item["reason"].startswith("loop:") and "is one we sent" in item["reason"]
    own = make_mail(sender="support@helpdesk.example", subject="hello", message_id="own@x.example")
    relay.ingest(write(tmp_path, "own.eml", own))
    assert any(
        "one of our own addresses" in q["reason"] for q in relay.run("quarantine", "list", "--json").json()
    )


def test_a_flood_from_one_sender_is_recorded_but_not_answered(relay: Desk, tmp_path: Path) -> None:
    relay.config.write_text(relay.config.read_text() + "\n[screen]\nsender_limit = 3\n")
    relay.config.write_text(relay.config.read_text().replace("auto_reply_limit", "x"))
    for i in range(5):
        relay.ingest(
            write(
                tmp_path,
                f"{i}.eml",
                make_mail(subject=f"Flood item {i} unique", message_id=f"f{i}@c.example"),
            )
        )
    tickets = relay.tickets()
    assert len(tickets) == 5, "nothing is lost"
    loops = [e for t in tickets for e in t["events"] if e["kind"] == "loop"]
    assert len(loops) == 2 and "more than 3 messages" in loops[0]["detail"]


def test_spam_is_quarantined_with_score_and_reasons_and_release_keeps_a_label(desk: Desk) -> None:
    summary = desk.ingest(*SPAM[:40], *HAM[:40])
    assert summary["spam"] >= 30, summary
    items = desk.run("quarantine", "list", "--json").json()
    spam = [q for q in items if q["reason"].startswith("spam:")]
    assert spam and all("spam model:" in q["reason"] and ">= threshold" in q["reason"] for q in spam)
    assert desk.run("quarantine", "release", str(spam[0]["id"])).code == 0
    labels = desk.sql("SELECT kind, value, source, inbound_id FROM label")
    (score,) = desk.sql("SELECT spam_score FROM inbound_mail WHERE id = ?", (spam[1]["id"],))
    assert labels == [("spam", "ham", "release", spam[0]["id"])]
    assert score is not None


def test_deny_and_allow_lists_and_upstream_flags(desk: Desk, tmp_path: Path) -> None:
    desk.config.write_text(
        desk.config.read_text()
        + '\n[screen]\ndeny = ["@spammy.example"]\nallow = ["friend@partner.example"]\n'
    )
    spam_text = SPAM[0].read_bytes()
    friend = spam_text.replace(b"From:", b"X-Old-From:", 1).replace(
        b"\n", b"\nFrom: friend@partner.example\n", 1
    )
    desk.ingest(
        write(tmp_path, "deny.eml", make_mail(sender="a@spammy.example", message_id="d@x.example")),
        write(tmp_path, "flag.eml", make_mail(sender="b@c.example", message_id="u@x.example").replace(
            b"Subject:", b"X-Spam-Flag: YES\r\nSubject:")),
        write(tmp_path, "friend.eml", friend),
    )  # fmt: skip
    reasons = sorted(q["reason"] for q in desk.run("quarantine", "list", "--json").json())
    assert len(reasons) == 2
    assert "a@spammy.example is on the deny list" in reasons[0]
    assert "X-Spam-Flag: YES" in reasons[1]


def test_forged_customer_domain_is_not_trusted(desk: Desk, tmp_path: Path) -> None:
    raw = SPAM[3].read_bytes().partition(b"\n")[2]  # the corpus files start with an mbox From_ line
    customer = raw.replace(b"\nFrom:", b"\nX-Was-From:", 1).replace(
        b"\nTo:", b"\nFrom: boss@acme-solar.example\nTo:", 1
    )
    verdict = b"Authentication-Results: mx.helpdesk.example; dmarc=fail header.from=acme-solar.example\n"
    desk.ingest(write(tmp_path, "genuine.eml", customer))
    # another message (the spool would take the same Message-ID and body for a second delivery)
    forged = verdict + customer.replace(b"Message-Id: <", b"Message-Id: <forged.", 1).replace(
        b"\n\n", b"\n\nAgain:\n", 1
    )
    desk.ingest(write(tmp_path, "forged.eml", forged))
    (item,) = desk.run("quarantine", "list", "--json").json()
    assert "DMARC failed for acme-solar.example" in item["reason"]
    assert len(desk.tickets()) == 1, "the configured organisation's genuine mail is never spam"


def test_classify_prints_the_verdict_and_reasons(desk: Desk, tmp_path: Path) -> None:
    ooo = FIXTURES / "autoreplies"
    files = [SPAM[0], HAM[0], next(p for p in sorted(ooo.glob("*.eml")) if "exchange" in p.name.lower())]
    result = desk.run("classify", "--json", *map(str, files))
    assert result.code == 0, result.err
    rows = [json.loads(line) for line in result.out.splitlines()]
    assert rows[0]["verdict"] == "spam"
    assert set(rows[0]) >= {"file", "verdict", "reasons", "spam_score", "issue_type", "type_confidence",
                            "priority", "team"}  # fmt: skip
    assert rows[0]["spam_score"] > rows[1]["spam_score"]
    assert rows[2]["verdict"] == "auto-reply" and rows[2]["reasons"]
    assert desk.tickets() == [], "classify stores nothing"


def test_train_spam_from_data_and_labels(desk: Desk, tmp_path: Path) -> None:
    data = tmp_path / "data"
    for kind, files in (("spam", SPAM[:60]), ("easy_ham", HAM[:120])):
        (data / kind).mkdir(parents=True)
        for f in files:
            (data / kind / f.name).write_bytes(f.read_bytes())
    result = desk.run("train", "spam", "--data", str(data), "--out", str(tmp_path / "models"))
    assert result.code == 0, result.err
    assert "trained on 180 messages (60 spam" in result.out
    assert (tmp_path / "models" / "spam" / "spam.skops").exists()
    assert (tmp_path / "models" / "spam" / "MODEL_CARD.md").exists()
    missing = desk.run("train", "spam", "--data", str(tmp_path / "nowhere"))
    assert missing.code == 1 and "no such file" in missing.err


def test_a_tampered_model_stops_with_a_clear_error(desk: Desk, tmp_path: Path) -> None:
    import shutil

    from tests.conftest import ROOT

    copy = tmp_path / "models" / "spam"
    shutil.copytree(ROOT / "models" / "spam", copy)
    data = bytearray((copy / "spam.skops").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy / "spam.skops").write_bytes(bytes(data))
    desk.config.write_text(desk.config.read_text() + f'\n[screen]\nspam_model = "{copy}"\n')
    result = desk.run("ingest", str(HAM[0]))
    assert result.code == 1 and "train spam" in result.err and "Traceback" not in result.err
    classify = desk.run("classify", str(HAM[0]))
    assert classify.code == 1 and "train spam" in classify.err


BOUNCES = FIXTURES / "bounces"


def test_a_bounce_of_our_acknowledgement_lands_on_its_ticket_and_stops_mail(
    relay: Desk, tmp_path: Path
) -> None:
    fixture = (BOUNCES / "postfix-dsn-5.1.1-user-unknown.eml").read_bytes()
    relay.ingest(write(tmp_path, "1.eml", make_mail(sender="m.keller@acme-solar.example", message_id="k@c")))
    (ack,) = outbox(relay)
    ours = ack["Message-ID"].strip("<>").encode()
    bounce = fixture.replace(b"20261103100257.5e21aa.md-1391@helpdesk.example", ours)
    summary = relay.ingest(write(tmp_path, "bounce.eml", bounce))
    assert summary["bounces"] == 1
    ticket = relay.show("MD-1")
    kinds = [(m["direction"], m["kind"]) for m in ticket["messages"]]
    assert ("in", "bounce") in kinds
    events = {e["kind"]: e["detail"] for e in ticket["events"]}
    assert "5.1.1" in events["undeliverable"] and "m.keller@acme-solar.example" in events["undeliverable"]
    assert "desk@helpdesk.example" in events["team_notified"]
    (notice,) = [m for m in outbox(relay, team=True) if "Undeliverable" in m["Subject"]]
    assert notice["To"] == "Service Desk <desk@helpdesk.example>"
    assert "could not be delivered" in notice.get_body(("plain",)).get_content()
    # the contact bounced for good: a new ticket from the same address gets no acknowledgement
    again = make_mail(sender="m.keller@acme-solar.example", subject="Other thing", message_id="k2@c")
    relay.ingest(write(tmp_path, "2.eml", again))
    assert len(outbox(relay)) == 1
    second = next(t for t in relay.tickets() if t["ref"] == "MD-2")
    assert any("bounced permanently" in e["detail"] for e in second["events"])


def test_a_bounce_of_mail_we_never_sent_is_quarantined(desk: Desk) -> None:
    summary = desk.ingest(BOUNCES / "qmail-5.1.1-no-mailbox.eml")
    assert summary["quarantined"] == 1 and desk.tickets() == []
    (item,) = desk.run("quarantine", "list", "--json").json()
    assert item["reason"].startswith("bounce:") and "not about any ticket" in item["reason"]


@pytest.mark.parametrize(
    "path",
    sorted([*BOUNCES.glob("*.eml"), *(FIXTURES / "autoreplies").glob("*.eml")]),
    ids=lambda p: f"{p.parent.name}/{p.stem}",
)
def test_classify_agrees_with_each_screening_fixture(desk: Desk, path: Path) -> None:
    import tomllib

    expect = tomllib.loads(path.with_suffix(".expect.toml").read_text(encoding="utf-8"))
    result = desk.run("classify", "--json", str(path))
    assert result.code == 0, result.err
    verdict = json.loads(result.out)["verdict"]
    if expect.get("bounce"):
        assert verdict == "bounce"
    elif expect.get("auto_reply"):
        assert verdict == "auto-reply"
    elif "bounce" in expect:
        assert verdict != "bounce"
    else:
        assert verdict not in ("auto-reply", "bounce")


def test_agent_spam_and_notspam_commands_label_mail_and_customers_cannot_use_them(
    desk: Desk, tmp_path: Path
) -> None:
    desk.ingest(write(tmp_path, "1.eml", make_mail(subject="Cheap watches for you", message_id="w@c")))
    desk.run("outbox", "flush")
    folder = desk.root / "var" / "outbox"
    notice = to_agent(sent_mail(folder), "alice@")

    def customer(body: str, mid: str) -> None:
        raw = make_mail(subject="Re: [MD-1] Cheap watches for you", body=body, message_id=mid)
        desk.ingest(write(tmp_path, f"{mid}.eml", raw))

    def agent(sender: str, body: str, mid: str, headers: dict[str, str] | None = None) -> None:
        note = notice if sender.startswith("alice") else to_agent(sent_mail(folder), sender)
        raw = reply_to(note, sender, body, message_id=mid, headers=headers)
        desk.ingest(write(tmp_path, f"{mid}.eml", raw))

    customer("#spam\nplease", "c1@c")  # the requester is no agent
    agent("alice@helpdesk.example", "Looks fine.\n\n> #spam\n> quoted", "a0@h")  # a quoted command
    forged = {"Authentication-Results": "mx.helpdesk.example; dmarc=fail header.from=helpdesk.example"}
    agent("alice@helpdesk.example", "#spam", "a1@h", forged)
    assert desk.show("MD-1")["status"] != "spam"
    agent("alice@helpdesk.example", "This is junk.\n#spam\n", "a2@h")
    ticket = desk.show("MD-1")
    assert ticket["status"] == "spam"
    refused = [e["detail"] for e in ticket["events"] if e["kind"] == "agent_unverified"]
    assert len(refused) == 1 and "DMARC failed" in refused[0]
    applied = [e["detail"] for e in ticket["events"] if e["kind"] == "command"]
    assert len(applied) == 1 and "labelled spam" in applied[0]
    desk.run("outbox", "flush")
    agent("bob@helpdesk.example", "#notspam", "b1@h")
    assert desk.show("MD-1")["status"] == "open"
    labels = desk.sql("SELECT value, source FROM label ORDER BY id")
    # the customer's two messages and the forged one (kept as customer mail), labelled spam by
    # alice and then ham by bob
    assert labels == [("spam", "alice@helpdesk.example")] * 3 + [("ham", "bob@helpdesk.example")] * 3
