"""The same pipeline on SQLite and on a real PostgreSQL: one set of models, two engines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.conftest import CORPORA, Desk, inbound
from tests.mail import make_mail

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_conversation_threads_the_same_on_both_engines(any_desk: Desk, tmp_path: Path) -> None:
    mails = [
        make_mail(message_id="a@x", subject="VPN down", date=T0),
        make_mail(
            message_id="b@x",
            subject="Re: VPN down",
            in_reply_to="a@x",
            date=T0 + timedelta(hours=1),
            cc="Carl <carl@partner.example>",
        ),
        make_mail(message_id="c@x", subject="[MD-1] still down", date=T0 + timedelta(hours=2)),
        make_mail(message_id="d@x", subject="Help", sender="other@else.example", date=T0),
        make_mail(
            message_id="e@x",
            subject="RE: VPN down",
            sender="carl@partner.example",
            date=T0 + timedelta(hours=3),
        ),
    ]
    for i, raw in enumerate(mails):
        (tmp_path / f"{i}.eml").write_bytes(raw)
    summary = any_desk.ingest(*sorted(tmp_path.glob("*.eml")), now="2026-11-02T12:00:00Z")
    assert summary["new_tickets"] == 2 and summary["replies"] == 3
    tickets = any_desk.tickets()
    assert [len(inbound(t)) for t in tickets] == [4, 1]
    # each new ticket was acknowledged once, and the acknowledgement is part of the conversation
    assert [t["message_count"] - len(inbound(t)) for t in tickets] == [1, 1]
    assert tickets[0]["participants"] == ["carl@partner.example"]
    assert tickets[0]["created_at"] == "2026-11-02T12:00:00Z"
    again = any_desk.ingest(*sorted(tmp_path.glob("*.eml")))
    assert again["duplicates"] == 5


def test_malformed_corpus_on_both_engines(any_desk: Desk) -> None:
    summary = any_desk.ingest(CORPORA / "malformed" / "crafted")
    assert summary["received"] == 34
    outcomes = ("new_tickets", "replies", "quarantined", "spam", "auto_replies", "bounces")
    assert sum(summary[k] for k in outcomes) == 34
    assert summary["quarantined"] - summary["spam"] <= 1
    texts = [m["text"] for t in any_desk.tickets() for m in t["messages"]]
    assert all("\x00" not in t for t in texts), "PostgreSQL refuses NUL in text: it is removed"


def test_a_database_from_before_migration_3_is_brought_up_to_date(desk: Desk, tmp_path: Path) -> None:
    import sqlite3

    (tmp_path / "1.eml").write_bytes(make_mail(message_id="old@x"))
    desk.ingest(tmp_path / "1.eml")
    db = desk.root / "maildesk.db"
    with sqlite3.connect(db) as conn:  # the schema as release 2 left it
        conn.execute("ALTER TABLE ticket DROP COLUMN tier")
        conn.execute("DROP TABLE setting")
        conn.execute("DELETE FROM schema_version WHERE version = 3")
    assert desk.show("MD-1")["subject"]  # opening the desk runs the missing migration
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT tier FROM ticket").fetchall() == [(1,)]
        versions = {v for (v,) in conn.execute("SELECT version FROM schema_version")}
        assert {1, 2, 3} <= versions
        assert conn.execute("SELECT count(*) FROM setting").fetchone() == (0,)  # the secret is configured


def test_db_upgrade_says_what_it_applied_and_then_that_nothing_is_left(any_desk: Desk) -> None:
    first = any_desk.run("db", "upgrade")
    assert first.code == 0 and "applied 1: initial schema" in first.out
    again = any_desk.run("db", "upgrade")
    assert again.code == 0 and "nothing to do" in again.out and "applied" not in again.out
