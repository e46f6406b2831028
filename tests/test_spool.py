"""The spool: durable before acknowledged, deduplicated, and a crash loses or repeats nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from maildesk.spool import Incoming, Spool, dedupe_key, header_message_id
from maildesk.tickets.store.db import open_database
from maildesk.tickets.store.models import InboundMail, RawMail
from tests.conftest import CORPORA, ROOT
from tests.mail import make_mail

NOW = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)


@pytest.fixture
def spool(tmp_path: Path) -> Spool:
    database = open_database(f"sqlite:///{tmp_path / 'spool.db'}")
    return Spool(database)


def test_accept_writes_the_file_and_the_row(spool: Spool) -> None:
    raw = make_mail()
    result = spool.accept(Incoming(raw, "smtp", "127.0.0.1"), NOW)
    assert not result.duplicate
    row = InboundMail.get_by_id(result.id)
    assert row.state == "received"
    assert row.message_id == "q1@customer.example"
    assert row.source == "smtp"
    assert spool.read(row) == raw
    assert spool.read_many([row]) == {row.sha256: raw}


def test_same_bytes_twice_is_a_no_op(spool: Spool) -> None:
    raw = make_mail()
    first = spool.accept(Incoming(raw, "file"), NOW)
    second = spool.accept(Incoming(raw, "imap"), NOW)
    assert second.duplicate and second.id == first.id
    assert InboundMail.select().count() == 1


def test_redelivery_with_new_trace_headers_is_a_duplicate(spool: Spool) -> None:
    raw = make_mail()
    relayed = b"Received: from mx2.example by mx.helpdesk.example; Mon, 23 Nov 2026\r\n" + raw
    first = spool.accept(Incoming(raw, "smtp"), NOW)
    second = spool.accept(Incoming(relayed, "imap"), NOW)
    assert second.duplicate and second.id == first.id
    assert RawMail.select().count() == 1, "the duplicate's bytes are not kept twice"


def test_same_message_id_with_another_body_is_kept(spool: Spool) -> None:
    a = spool.accept(Incoming(make_mail(body="first text"), "file"), NOW)
    b = spool.accept(Incoming(make_mail(body="a different text"), "file"), NOW)
    assert not b.duplicate and a.id != b.id


def test_a_batch_with_repeats_inside_it(spool: Spool) -> None:
    raws = [make_mail(message_id=f"m{i % 3}@x.example", body=f"text {i % 3}") for i in range(9)]
    results = spool.accept_many([Incoming(r, "mbox") for r in raws], NOW)
    assert [r.duplicate for r in results] == [False] * 3 + [True] * 6
    assert InboundMail.select().count() == 3


def test_header_message_id_without_a_full_parse() -> None:
    raw = b"Subject: x\r\nMessage-ID:\r\n <abc@def.example>\r\n\r\nMessage-ID: <body@x>\r\n"
    assert header_message_id(raw) == "abc@def.example"
    assert header_message_id(b"Subject: none\r\n\r\nbody") == ""
    assert dedupe_key(b"Subject: none\r\n\r\nbody", "sha") == "sha"


def test_quarantine_and_release_keep_the_raw_bytes(spool: Spool) -> None:
    result = spool.accept(Incoming(b"\x00\x01 not mail", "stdin"), NOW)
    row = InboundMail.get_by_id(result.id)
    spool.quarantine(row, "unparseable: test", NOW)
    row = InboundMail.get_by_id(result.id)
    assert row.state == "quarantined" and row.reason == "unparseable: test" and row.attempts == 1
    assert spool.read(row) == b"\x00\x01 not mail"
    spool.release(row)
    assert InboundMail.get_by_id(result.id).state == "received"


def _tickets_by_message(db: Path) -> dict[str, int]:
    import sqlite3

    with sqlite3.connect(db) as conn:
        return dict(
            conn.execute(
                "SELECT i.sha256, COUNT(m.id) FROM inbound_mail i "
                "LEFT JOIN message m ON m.inbound_id = i.id GROUP BY i.sha256"
            )
        )


def test_a_killed_ingest_is_finished_by_the_next_run(tmp_path: Path) -> None:
    """SIGKILL in the middle of an ingest, then run it again: every message once, none lost."""
    source = CORPORA / "spamassassin-2002" / "easy_ham"
    files = sorted(source.iterdir())[:800]
    folder = tmp_path / "in"
    folder.mkdir()
    for f in files:
        (folder / f.name).write_bytes(f.read_bytes())
    db = tmp_path / "crash.db"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "maildesk.cli", "--db", f"sqlite:///{db}", "ingest", str(folder)]
    proc = subprocess.Popen(
        cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    # wait until processing has begun (some rows processed), then kill the whole process group
    deadline = time.monotonic() + 120
    import sqlite3

    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with sqlite3.connect(db, timeout=1) as conn:
                done = conn.execute("SELECT COUNT(*) FROM message").fetchone()[0]
            if done > 0:
                break
        except sqlite3.Error:
            pass
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    interrupted = sum(_tickets_by_message(db).values()) if db.exists() else 0
    assert interrupted < len(files), "the kill must land before the work is done"

    rerun = subprocess.run(
        [*cmd[:-2], "ingest", "--json", str(folder)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert rerun.returncode == 0, rerun.stderr
    counts = _tickets_by_message(db)
    assert len(counts) == len(files), "every file is in the spool exactly once"
    assert set(counts.values()) == {1}, "every spooled message is on exactly one ticket message"


def test_mark_processed_records_state_and_time(spool: Spool) -> None:
    row = InboundMail.get_by_id(spool.accept(Incoming(make_mail(), "file"), NOW).id)
    spool.quarantine(row, "first try failed", NOW)
    spool.mark_processed(row, NOW)
    stored = InboundMail.get_by_id(row.id)
    assert (stored.state, stored.reason, stored.processed_at) == ("processed", "", NOW.replace(tzinfo=None))
