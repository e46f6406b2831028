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


_NEW_TICKET = (
    "INSERT INTO ticket (number, subject, subject_key, status, issue_type, request_type, issue_record,"
    " priority, team, created_at, updated_at, tier)"
    " VALUES (%s, 's', 's', 'new', 'unclassified', '', '{}', 'normal', 'it', now(), now(), 1)"
)


def test_an_upgrade_on_a_live_postgresql_does_not_block_writers(postgres_url: str) -> None:
    """Migration 9's indexes are built CONCURRENTLY: while one is being built behind a long
    transaction, other sessions go on writing tickets; two upgrades at once apply it once."""
    import threading

    import psycopg2

    from maildesk.tickets.store.db import open_database

    open_database(postgres_url).close()
    admin = psycopg2.connect(postgres_url)
    admin.autocommit = True
    with admin.cursor() as cur:  # the database as the release before left it
        cur.execute(
            "DROP INDEX ticket_team_status; DROP INDEX ticket_assignee_id_status;"
            " DROP INDEX ticket_subject_key_updated_at; DROP INDEX message_from_addr_written"
        )
        cur.execute("DELETE FROM schema_version WHERE version = 9")
    busy = psycopg2.connect(postgres_url)  # a worker's write, uncommitted while the upgrade starts
    with busy.cursor() as cur:
        cur.execute(_NEW_TICKET, (1000,))
    results: list[object] = []

    def upgrade() -> None:
        try:
            from maildesk.tickets.store.db import make_database
            from maildesk.tickets.store.migrations import migrate

            database = make_database(postgres_url)
            results.append(migrate(database))
            database.close()
        except Exception as exc:  # reported below
            results.append(exc)

    upgrades = [threading.Thread(target=upgrade) for _ in range(2)]
    for thread in upgrades:
        thread.start()
    import time

    time.sleep(1.0)  # the index build now waits for the open transaction to end
    writer = psycopg2.connect(postgres_url)
    writer.autocommit = True
    started = time.monotonic()
    with writer.cursor() as cur:
        cur.execute("SET statement_timeout = 5000")  # a blocked writer fails instead of hanging the test
        for n in range(1, 21):
            cur.execute(_NEW_TICKET, (n,))
    writes_took = time.monotonic() - started
    assert all(thread.is_alive() for thread in upgrades) or len(results) < 2  # still building
    busy.commit()
    for thread in upgrades:
        thread.join(timeout=60)
    assert writes_took < 5.0, writes_took  # a plain CREATE INDEX would hold them until `busy` ended
    assert sorted(map(str, results)) == ["[9]", "[]"], results  # applied once, by one of the two
    with admin.cursor() as cur:
        cur.execute(
            "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE c.relname IN ('ticket_team_status', 'ticket_assignee_id_status') ORDER BY 1"
        )
        assert cur.fetchall() == [("ticket_assignee_id_status", True), ("ticket_team_status", True)]
        cur.execute("SELECT count(*) FROM schema_version WHERE version = 9")
        assert cur.fetchone() == (1,)
        cur.execute("SELECT count(*) FROM ticket")
        assert cur.fetchone() == (21,)
    for conn in (admin, busy, writer):
        conn.close()
