"""Fixture mail written the way real clients write it: one parametrized test per folder.

A bug report becomes a test by adding `<case>.eml` and `<case>.expect.toml` under
fixtures/emails/clients/, or a conversation folder under fixtures/emails/threads/
(see fixtures/emails/README.md for the formats).
"""

from __future__ import annotations

import email
import email.policy
import re
import tomllib
from datetime import UTC
from pathlib import Path

import pytest

from maildesk.parse.message import parse
from tests.conftest import FIXTURES, Desk, inbound

CLIENTS = sorted((FIXTURES / "clients").glob("*.eml"))
THREADS = sorted(p for p in (FIXTURES / "threads").iterdir() if p.is_dir())


def normalise(text: str) -> str:
    lines = [line.strip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


@pytest.mark.parametrize("path", CLIENTS, ids=lambda p: p.stem)
def test_client_mail(path: Path) -> None:
    expect = tomllib.loads(path.with_suffix(".expect.toml").read_text(encoding="utf-8"))
    mail = parse(path.read_bytes())
    if "from" in expect:
        assert mail.sender is not None and mail.sender.email == expect["from"]
    if "from_name" in expect:
        assert mail.sender is not None and mail.sender.name == expect["from_name"]
    if "subject" in expect:
        assert mail.subject == expect["subject"]
    if "message_id" in expect:
        assert mail.message_id == expect["message_id"]
    if "in_reply_to" in expect:
        assert list(mail.in_reply_to) == expect["in_reply_to"]
    if "references" in expect:
        assert list(mail.references) == expect["references"]
    if "attachments" in expect:
        assert sorted(a.filename for a in mail.attachments) == sorted(expect["attachments"])
    new_text = normalise(mail.new_text)
    for phrase in expect.get("new_text_contains", []):
        assert phrase in new_text, phrase
    for phrase in expect.get("new_text_excludes", []):
        assert phrase not in new_text, phrase
    assert new_text == normalise(expect["new_text"])


def _arrival(path: Path) -> str:
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    return msg["Date"].datetime.astimezone(UTC).isoformat()


@pytest.mark.parametrize("folder", THREADS, ids=lambda p: p.name)
def test_conversation(folder: Path, desk: Desk) -> None:
    expect = tomllib.loads((folder / "expect.toml").read_text(encoding="utf-8"))
    files = sorted(folder.glob("*.eml"))
    ids: dict[str, str] = {}
    for path in files:  # one at a time, each arriving at its Date
        desk.ingest(path, now=_arrival(path))
        ids[path.name] = parse(path.read_bytes()).message_id
    tickets = {t["ref"]: t for t in desk.tickets()}
    assert len(tickets) == len(expect["tickets"]), sorted(tickets)
    for want in expect["tickets"]:
        got = tickets[want["ref"]]
        assert sorted(m["message_id"] for m in inbound(got)) == sorted(ids[n] for n in want["messages"])
        if "requester" in want:
            assert got["requester"] == want["requester"]
        if "participants" in want:
            assert sorted(got["participants"]) == sorted(want["participants"])
