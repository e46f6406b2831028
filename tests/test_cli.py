"""The CLI contract: exit codes, one-line errors, and the JSON shapes DESIGN.md promises."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from maildesk.cli import main
from tests.conftest import ROOT, Desk
from tests.mail import make_mail

TICKET_KEYS = {
    "ref",
    "id",
    "subject",
    "status",
    "issue_type",
    "type_confidence",
    "priority",
    "team",
    "assignee",
    "requester",
    "organization",
    "created_at",
    "updated_at",
    "first_response_at",
    "message_count",
    "vendor",
}
MESSAGE_KEYS = {
    "message_id",
    "direction",
    "visibility",
    "kind",
    "from",
    "to",
    "date",
    "subject",
    "text",
    "attachments",
}
INGEST_KEYS = {
    "received",
    "new_tickets",
    "replies",
    "duplicates",
    "spam",
    "auto_replies",
    "bounces",
    "quarantined",
    "seconds",
}


def run(*args: str, cwd: Path, stdin: bytes | None = None, env: dict | None = None):
    return subprocess.run(
        [sys.executable, "-m", "maildesk.cli", *args],
        cwd=cwd,
        input=stdin,
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=120,
    )


def test_json_shapes(desk: Desk, tmp_path: Path) -> None:
    mail = make_mail(
        name="Jörg Müller",
        sender="joerg@kunde.example",
        attachments=[("../../etc/Rechnung März.pdf", b"%PDF-1.4 stub", "application/pdf")],
    )
    (tmp_path / "a.eml").write_bytes(mail)
    summary = desk.ingest(tmp_path / "a.eml", now="2026-11-23T09:00:00Z")
    assert set(summary) == INGEST_KEYS
    assert summary["received"] == 1 and summary["new_tickets"] == 1
    listing = desk.run("tickets", "list", "--json").json()
    assert len(listing) == 1 and set(listing[0]) >= TICKET_KEYS
    ticket = listing[0]
    assert ticket["ref"] == "MD-1" and ticket["requester"] == "joerg@kunde.example"
    assert ticket["created_at"] == "2026-11-23T09:00:00Z" and ticket["message_count"] == 2
    assert ticket["vendor"] is None
    shown = desk.show("MD-1")
    assert set(shown) >= TICKET_KEYS
    message, acknowledgement = shown["messages"]
    assert (acknowledgement["direction"], acknowledgement["kind"]) == ("out", "system")
    assert acknowledgement["to"] == ["joerg@kunde.example"] and "[MD-1]" in acknowledgement["subject"]
    assert set(message) >= MESSAGE_KEYS
    assert (
        message["direction"] == "in" and message["visibility"] == "public" and message["kind"] == "customer"
    )
    assert message["from"] == "joerg@kunde.example" and message["to"] == ["support@helpdesk.example"]
    (attachment,) = message["attachments"]
    assert attachment["name"] == "Rechnung März.pdf" and attachment["size"] == 13
    assert len(attachment["sha256"]) == 64
    assert {"at", "kind", "detail"} <= set(shown["events"][0])
    with_messages = desk.run("tickets", "list", "--json", "--with-messages").json()
    assert with_messages[0]["messages"] == shown["messages"]


def test_show_accepts_several_spellings_of_a_ref(desk: Desk, tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(make_mail())
    desk.ingest(tmp_path / "a.eml")
    for ref in ("MD-1", "md-1", "1", "MD1"):
        assert desk.run("tickets", "show", ref, "--json").code == 0


def test_user_errors_are_one_line_and_exit_1(desk: Desk, tmp_path: Path) -> None:
    for args in (
        ("tickets", "show", "MD-999"),
        ("tickets", "show", "banana"),
        ("ingest", str(tmp_path / "missing.eml")),
        ("quarantine", "release", "42"),
    ):
        result = desk.run(*args)
        assert result.code == 1, args
        assert result.err.count("\n") == 1 and result.err.startswith("maildesk: "), result.err
        assert "Traceback" not in result.err


def test_bad_config_names_the_key(tmp_path: Path) -> None:
    (tmp_path / "maildesk.toml").write_text('[smtp]\nmax_size = "huge"\n')
    result = run("tickets", "list", cwd=tmp_path)
    assert result.returncode == 1
    assert b"smtp.max_size" in result.stderr and b"Traceback" not in result.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert run("frobnicate", cwd=tmp_path).returncode == 2
    assert run("ingest", cwd=tmp_path).returncode == 2
    assert run("--now", "yesterday", "tickets", "list", cwd=tmp_path).returncode == 1


def test_db_url_from_environment_and_flag(tmp_path: Path) -> None:
    mail = make_mail()
    env_db = tmp_path / "env.db"
    result = run("ingest", "-", cwd=tmp_path, stdin=mail, env={"MAILDESK_DB": f"sqlite:///{env_db}"})
    assert result.returncode == 0, result.stderr
    assert env_db.exists() and not (tmp_path / "maildesk.db").exists()
    flag_db = tmp_path / "flag.db"
    result = run(
        "--db",
        f"sqlite:///{flag_db}",
        "ingest",
        "-",
        cwd=tmp_path,
        stdin=mail,
        env={"MAILDESK_DB": f"sqlite:///{env_db}"},
    )
    assert result.returncode == 0 and flag_db.exists()
    assert run("--db", "mysql://x", "tickets", "list", cwd=tmp_path).returncode == 1


def test_stdin_mbox_and_folder_sources(desk: Desk, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = make_mail(message_id="a@x", body="From the start\nwe had trouble.\nFrom here on it works.\n")
    b = make_mail(message_id="b@x", subject="Other", sender="b@other.example")
    mbox = (
        b"From a@x Mon Nov  2 09:00:00 2026\n"
        + a.replace(b"\nFrom ", b"\n>From ")  # an mboxrd writer escapes every From_ line
        + b"\n"
        + b"From b@x Mon Nov  2 09:00:00 2026\n"
        + b
        + b"\n"
    )
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(mbox)))
    summary = desk.run("ingest", "--json", "-").json()
    assert summary["received"] == 2 and summary["new_tickets"] == 2
    texts = [t["messages"][0]["text"] for t in desk.tickets()]
    body = next(t for t in texts if "From the start" in t)
    assert "From here on it works." in body and ">From" not in body, "mboxrd quoting is undone"
    folder = tmp_path / "maildir" / "cur"
    folder.mkdir(parents=True)
    (folder / "1700000000.M1P1.host:2,S").write_bytes(make_mail(message_id="c@x", subject="Third"))
    (tmp_path / "maildir" / "tmp").mkdir()
    (tmp_path / "maildir" / "tmp" / "partial").write_bytes(b"half a message")
    (tmp_path / "maildir" / "notes.toml").write_text("not = 'mail'")
    assert desk.ingest(tmp_path / "maildir")["received"] == 1


def test_quarantine_release_puts_mail_back_through(desk: Desk, tmp_path: Path) -> None:
    big = make_mail(body="x" * 5000)
    desk.config.write_text(desk.config.read_text() + '\n[limits]\nmessage = "2KB"\n')
    (tmp_path / "big.eml").write_bytes(big)
    summary = desk.ingest(tmp_path / "big.eml")
    assert summary["quarantined"] == 1
    (entry,) = desk.run("quarantine", "list", "--json").json()
    assert "limits.message" in entry["reason"]
    assert desk.run("quarantine", "release", str(entry["id"])).code == 1, "still too big: quarantined again"
    desk.config.write_text(desk.config.read_text().replace('message = "2KB"', 'message = "1MB"'))
    result = desk.run("quarantine", "release", str(entry["id"]))
    assert result.code == 0 and "MD-1" in result.out
    assert desk.run("quarantine", "list", "--json").json() == []


def test_init_and_main_job_on_embedded_default(tmp_path: Path) -> None:
    assert run("init", cwd=tmp_path).returncode == 0
    result = run(
        "ingest", "--json", str(ROOT.parent / "shared" / "corpora" / "malformed" / "crafted"), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "maildesk.db").exists() and (tmp_path / "var" / "attachments").is_dir()
    listing = run("tickets", "list", cwd=tmp_path)
    assert listing.returncode == 0 and b"MD-1" in listing.stdout


def test_main_in_process_returns_codes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
