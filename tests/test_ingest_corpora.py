"""Third-party mail through `maildesk ingest`: hostile and malformed input never crashes or vanishes."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import CORPORA, Desk, inbound

MALFORMED = sorted((CORPORA / "malformed").rglob("*.eml"))
# a folder import takes every file that may be mail (Maildir names have no extension): LICENSE too
ALL_FILES = sorted(p for p in (CORPORA / "malformed").rglob("*") if p.is_file())


def _spool_rows(desk: Desk) -> list[tuple]:
    path = desk.db_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return conn.execute(
            "SELECT i.id, i.state, i.reason, r.data, i.sha256 FROM inbound_mail i "
            "JOIN raw_mail r ON r.sha256 = i.sha256"
        ).fetchall()


def test_every_malformed_message_is_processed_or_quarantined(desk: Desk) -> None:
    assert len(MALFORMED) >= 50
    summary = desk.ingest(CORPORA / "malformed")
    assert summary["received"] == len(ALL_FILES)
    rows = _spool_rows(desk)
    # the two crafted files with one Message-ID and different bytes are both kept
    assert summary["duplicates"] == 0 and len(rows) == len(ALL_FILES)
    for _, state, reason, raw, sha in rows:
        assert state in ("processed", "quarantined")
        assert state == "processed" or reason, "a quarantined message says why"
        assert hashlib.sha256(raw).hexdigest() == sha, "raw bytes are kept exactly"
    tickets = desk.tickets()
    recorded = sum(len(inbound(t)) for t in tickets)
    quarantined = [r for r in rows if r[1] == "quarantined"]
    assert recorded + len(quarantined) == len(ALL_FILES)
    # only mail nested beyond any sane depth is refused; the rest of the quarantine is the
    # real malicious mail of the mail-parser corpus, which the spam rule recognises
    refused = [r[2] for r in quarantined if not r[2].startswith("spam:")]
    assert len(refused) <= 2, refused
    assert summary["spam"] == len(quarantined) - len(refused)
    listing = desk.run("quarantine", "list", "--json").json()
    assert {q["id"] for q in listing} == {r[0] for r in quarantined}


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.name)
def test_each_malformed_message_alone(desk: Desk, path: Path) -> None:
    summary = desk.ingest(path)
    assert summary["received"] == 1
    outcomes = ("new_tickets", "replies", "quarantined", "spam", "auto_replies", "bounces")
    assert sum(summary[k] for k in outcomes) == 1, summary


def test_hostile_details_are_neutralised(desk: Desk) -> None:
    crafted = CORPORA / "malformed" / "crafted"
    desk.ingest(
        crafted / "header-injection-subject.eml",
        crafted / "traversal-filename.eml",
        crafted / "raw-8bit-headers.eml",
        crafted / "html-script.eml",
    )
    tickets = {t["subject"]: t for t in desk.tickets()}
    injected = [t for s, t in tickets.items() if "Bcc" in s]
    assert injected and all("\r" not in s and "\n" not in s for s in tickets)
    assert "Drücker kaputt" in tickets or "Drücker kaputt".replace("ü", "u") in tickets
    names = [a["name"] for t in tickets.values() for m in t["messages"] for a in m["attachments"]]
    assert names, "attachments are recorded"
    assert all("/" not in n and "\\" not in n and "\x00" not in n for n in names)
    stored = list((desk.storage / "attachments").rglob("*"))
    assert all(desk.storage in p.parents for p in stored)
    texts = " ".join(m["text"] for t in tickets.values() for m in t["messages"])
    assert "<script" not in texts.lower()


def test_spamassassin_sample_threads_replies(desk: Desk) -> None:
    folder = CORPORA / "spamassassin-2002" / "easy_ham"
    files = sorted(folder.iterdir())[:300]
    summary = desk.ingest(*files)
    assert summary["received"] == 300 and summary["quarantined"] == 0
    # most of easy_ham is list mail: recorded (as automatic mail, never answered), not dropped
    assert summary["new_tickets"] + summary["replies"] + summary["auto_replies"] == 300
    assert summary["auto_replies"] > 100
    tickets = desk.tickets()
    by_id = {m["message_id"]: t["ref"] for t in tickets for m in t["messages"]}
    # every message whose In-Reply-To parent is in the sample sits on its parent's ticket
    import email

    checked = 0
    for f in files:
        msg = email.message_from_bytes(f.read_bytes())
        parent = (msg.get("In-Reply-To") or "").strip()
        mid = (msg.get("Message-ID") or "").strip().strip("<>")
        if parent.startswith("<") and parent.strip("<>") in by_id and mid in by_id:
            assert by_id[mid] == by_id[parent.strip("<>")], f.name
            checked += 1
    assert checked >= 10
