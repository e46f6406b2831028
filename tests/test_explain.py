"""`maildesk explain` over the threading fixtures: the rule it names is where ingest then puts the
message, and explaining changes nothing (the database file is byte-identical)."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, Desk
from tests.mail import make_mail
from tests.test_fixture_mail import THREADS, _arrival

# the pipeline behaves the same on SQLite and on PostgreSQL
pytestmark = pytest.mark.both_databases


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def explain(desk: Desk, path: Path, now: str) -> dict:
    result = desk.run("explain", "--json", str(path), now=now)
    assert result.code == 0, result.err
    return dict(json.loads(result.out))


@pytest.mark.parametrize("folder", THREADS, ids=lambda p: p.name)
def test_explain_names_where_each_message_goes_and_changes_nothing(folder: Path, desk: Desk) -> None:
    expect = tomllib.loads((folder / "expect.toml").read_text(encoding="utf-8"))
    home = {name: want["ref"] for want in expect["tickets"] for name in want["messages"]}
    database = desk.root / "maildesk.db"
    for path in sorted(folder.glob("*.eml")):
        now = _arrival(path)
        before = digest(database) if database.exists() else None
        found = explain(desk, path, now)
        if before is not None:
            assert digest(database) == before, "explain changed the database"
        threading = found["threading"]
        assert threading["why"], "every decision says why"
        summary = desk.ingest(path, now=now)
        if path.name not in home:
            continue  # an automatic message the fixture does not place
        if summary["new_tickets"]:
            assert threading["rule"] == "new" and threading["new_ticket"]
            assert found["note"] == f"would open {home[path.name]}"
        else:
            assert threading["ticket"] == home[path.name], (path.name, threading)
            assert threading["rule"] != "new"


def test_explain_reports_screening_triage_and_the_mail_it_would_send(desk: Desk, tmp_path: Path) -> None:
    urgent = tmp_path / "u.eml"
    urgent.write_bytes(make_mail(subject="URGENT: VPN down for the whole office", message_id="u@c.example"))
    found = explain(desk, urgent, "2026-11-02T09:00:00Z")
    assert found["screening"]["verdict"] == "normal"
    assert found["triage"]["priority"] == "urgent"
    kinds = {d["kind"] for d in found["decisions"]}
    assert {"created", "classified", "priority"} <= kinds
    assert any(
        m["kind"] == "acknowledgement" and m["to"] == ["anna@customer.example"] for m in found["would_send"]
    )
    assert desk.tickets() == []  # nothing was stored
    spam = sorted(
        (FIXTURES.parent.parent.parent / "shared" / "corpora" / "spamassassin-2002" / "spam").iterdir()
    )
    if spam:
        text = desk.run("explain", str(spam[0]), now="2026-11-02T09:00:00Z")
        assert text.code == 0 and "screening:" in text.out
