"""IMAP intake against a real Dovecot server on loopback; mail is put there by a separate client."""

from __future__ import annotations

import logging
import sqlite3
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from imapclient import IMAPClient

from maildesk.config import ImapAccount, Secret, load_config
from maildesk.desk import Desk as OpenDesk
from maildesk.desk import open_desk
from maildesk.intake.imap import Backoff, ImapError, ImapIntake, ImapLoginError, batches
from maildesk.tickets.store.models import ImapState, InboundMail
from tests.conftest import Desk, inbound
from tests.dovecot import PASSWORD, Dovecot
from tests.mail import make_mail
from tests.smtp_server import ServeProcess, free_port, stored

NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)


def account(dovecot: Dovecot, user: str, **changes: Any) -> ImapAccount:
    values: dict[str, Any] = {
        "host": dovecot.host,
        "port": dovecot.port,
        "tls": "none",
        "username": user,
        "password": Secret("imap[0].password", PASSWORD),
        "poll_interval": timedelta(seconds=60),
    }
    values.update(changes)
    return ImapAccount(**values)


@pytest.fixture
def user(dovecot: Dovecot) -> str:
    return dovecot.new_user()


@pytest.fixture
def mailbox(dovecot: Dovecot, user: str) -> Iterator[IMAPClient]:
    """The customer side: a separate client that delivers mail into the user's mailbox."""
    client = dovecot.client(user)
    yield client
    client.logout()


@pytest.fixture
def opened(desk: Desk) -> Iterator[OpenDesk]:
    """The desk's own database, as `serve` opens it, next to the CLI helper `desk`."""
    opened = open_desk(load_config(desk.config), desk.db_url)
    yield opened
    opened.database.close()


def intake_for(opened: OpenDesk, acct: ImapAccount, **kwargs: Any) -> ImapIntake:
    return ImapIntake(acct, f"{acct.username}@imap", opened.spool, opened.database, lambda: NOW, **kwargs)


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def spooled(opened: OpenDesk) -> int:
    with opened.database.connection_context():
        return int(InboundMail.select().count())


def test_appended_mail_becomes_threaded_tickets_and_is_flagged_seen(
    dovecot: Dovecot, user: str, mailbox: IMAPClient, opened: OpenDesk, desk: Desk
) -> None:
    first = make_mail(subject="VPN drops every hour", message_id="vpn1@customer.example")
    reply = make_mail(
        subject="Re: VPN drops every hour",
        body="It happened again at 10:00.\n",
        message_id="vpn2@customer.example",
        in_reply_to="vpn1@customer.example",
        references=["vpn1@customer.example"],
    )
    other = make_mail(sender="omar@other.example", subject="Invoice copy", message_id="inv@other.example")
    for raw in (first, reply, other):
        mailbox.append("INBOX", raw)
    intake = intake_for(opened, account(dovecot, user))

    passes = intake.sync_once()

    assert [(p.fetched, p.spooled, p.rescan) for p in passes] == [(3, 3, True)]
    assert opened.worker.process_pending(NOW) == 3
    tickets = desk.tickets()
    assert sorted(len(inbound(t)) for t in tickets) == [1, 2]
    assert {t["subject"] for t in tickets} == {"VPN drops every hour", "Invoice copy"}
    mailbox.select_folder("INBOX", readonly=True)
    flags = mailbox.get_flags(mailbox.search("ALL"))
    assert all(b"\\Seen" in f for f in flags.values())
    # the next pass finds nothing new, and neither does a new intake reading the recorded state
    assert [p.fetched for p in intake.sync_once()] == [0]
    assert [p.fetched for p in intake_for(opened, account(dovecot, user)).sync_once()] == [0]
    row = ImapState.get(account=f"{user}@imap", folder="INBOX")
    assert row.last_uid == max(flags)


def test_first_pass_takes_unseen_mail_and_later_passes_take_every_new_uid(
    dovecot: Dovecot, user: str, mailbox: IMAPClient, opened: OpenDesk
) -> None:
    mailbox.append("INBOX", make_mail(subject="old, read", message_id="r1@x.example"), flags=[b"\\Seen"])
    mailbox.append("INBOX", make_mail(subject="new", message_id="n1@x.example"))
    mailbox.append("INBOX", make_mail(subject="old, read too", message_id="r2@x.example"), flags=[b"\\Seen"])
    intake = intake_for(opened, account(dovecot, user))

    assert [(p.fetched, p.rescan) for p in intake.sync_once()] == [(1, True)]
    # after the first pass a person opening a message in webmail before we see it changes nothing
    mailbox.append("INBOX", make_mail(subject="read early", message_id="n2@x.example"), flags=[b"\\Seen"])
    assert [(p.fetched, p.rescan) for p in intake.sync_once()] == [(1, False)]
    with opened.database.connection_context():
        subjects = sorted(row.message_id for row in InboundMail.select())
    assert subjects == ["n1@x.example", "n2@x.example"]


def test_processed_mail_is_moved_to_the_configured_folder(
    dovecot: Dovecot, user: str, mailbox: IMAPClient, opened: OpenDesk
) -> None:
    for i in range(5):
        mailbox.append("INBOX", make_mail(message_id=f"m{i}@x.example", subject=f"question {i}"))
    intake = intake_for(opened, account(dovecot, user, processed_folder="maildesk/done"), batch_count=2)

    assert [p.fetched for p in intake.sync_once()] == [5]

    assert mailbox.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 0
    assert mailbox.folder_status("maildesk.done", ["MESSAGES"])[b"MESSAGES"] == 5
    assert spooled(opened) == 5


def test_move_without_the_move_extension_copies_and_expunges_only_those_messages(
    dovecot: Dovecot, user: str, mailbox: IMAPClient, opened: OpenDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = IMAPClient.has_capability
    monkeypatch.setattr(IMAPClient, "has_capability", lambda self, cap: cap != "MOVE" and real(self, cap))
    for i in range(3):
        mailbox.append("INBOX", make_mail(message_id=f"c{i}@x.example"))
    intake = intake_for(opened, account(dovecot, user, processed_folder="Done"))

    assert [p.fetched for p in intake.sync_once()] == [3]

    assert mailbox.folder_status("INBOX", ["MESSAGES"])[b"MESSAGES"] == 0
    assert mailbox.folder_status("Done", ["MESSAGES"])[b"MESSAGES"] == 3


def test_a_crash_after_spooling_before_flagging_fetches_again_without_duplicates(
    dovecot: Dovecot, user: str, mailbox: IMAPClient, opened: OpenDesk, monkeypatch: pytest.MonkeyPatch
) -> None:
    for i in range(4):
        mailbox.append("INBOX", make_mail(message_id=f"k{i}@x.example", subject=f"crash {i}"))

    def crash(self: ImapIntake, client: IMAPClient, uids: list[int], target: str) -> None:
        raise ConnectionResetError("power cut")

    with monkeypatch.context() as patched:
        patched.setattr(ImapIntake, "_acknowledge", crash)
        with pytest.raises(ConnectionResetError):
            intake_for(opened, account(dovecot, user)).sync_once()
    assert spooled(opened) == 4
    mailbox.select_folder("INBOX", readonly=True)
    assert mailbox.search("UNSEEN") != []  # the crash came before the flags

    passes = intake_for(opened, account(dovecot, user)).sync_once()

    assert [(p.fetched, p.spooled) for p in passes] == [(4, 0)]
    assert spooled(opened) == 4
    mailbox.select_folder("INBOX", readonly=True)  # a fresh view of the flags
    assert mailbox.search("UNSEEN") == []


def test_uidvalidity_change_rescans_without_duplicating(
    dovecot: Dovecot, user: str, mailbox: IMAPClient, opened: OpenDesk
) -> None:
    mails = [make_mail(message_id=f"u{i}@x.example", subject=f"uv {i}") for i in range(3)]
    mailbox.create_folder("Support")
    for raw in mails:
        mailbox.append("Support", raw)
    intake = intake_for(opened, account(dovecot, user, folders=("Support",)))
    before = intake.sync_once()[0]
    assert before.fetched == 3

    # the folder is rebuilt (a restore, a server migration): same mail, new UIDVALIDITY, flags lost
    mailbox.delete_folder("Support")
    time.sleep(1.1)  # Dovecot derives UIDVALIDITY from the clock
    mailbox.create_folder("Support")
    for raw in [*mails, make_mail(message_id="u3@x.example", subject="uv 3")]:
        mailbox.append("Support", raw)

    after = intake.sync_once()[0]

    assert after.uidvalidity != before.uidvalidity
    assert (after.rescan, after.fetched, after.spooled) == (True, 4, 1)
    assert spooled(opened) == 4


def test_idle_picks_up_an_appended_message_within_a_second(
    dovecot: Dovecot, user: str, mailbox: IMAPClient, opened: OpenDesk
) -> None:
    # polling every 60 s: only IDLE can bring the mail in quickly
    intake = intake_for(opened, account(dovecot, user))
    stop = threading.Event()
    thread = threading.Thread(target=intake.run, args=(stop,))
    thread.start()
    try:
        assert wait_for(lambda: ImapState.get_or_none(account=f"{user}@imap", folder="INBOX") is not None)
        time.sleep(0.3)  # IDLE is issued right after the first pass
        delays = []
        for i in range(3):
            appended = time.monotonic()
            mailbox.append("INBOX", make_mail(message_id=f"idle{i}@x.example"))
            assert wait_for(lambda n=i + 1: spooled(opened) == n, timeout=10)
            delays.append(time.monotonic() - appended)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive(), "the intake did not stop within 10 s of the stop event"
    assert statistics.median(delays) < 1.0, delays
    assert intake.connections == 1


def test_a_dropped_connection_is_survived(
    dovecot: Dovecot, user: str, opened: OpenDesk, caplog: pytest.LogCaptureFixture
) -> None:
    intake = intake_for(opened, account(dovecot, user))
    stop = threading.Event()
    thread = threading.Thread(target=intake.run, args=(stop,))
    caplog.set_level(logging.WARNING, logger="maildesk.intake.imap")
    thread.start()
    try:
        assert wait_for(lambda: intake.connections == 1)
        time.sleep(0.3)  # in IDLE by now
        dovecot.kick(user)
        client = dovecot.client(user)
        client.append("INBOX", make_mail(message_id="after-kick@x.example"))
        client.logout()
        assert wait_for(lambda: spooled(opened) == 1, timeout=20), dovecot.log()[-2000:]
    finally:
        stop.set()
        thread.join(timeout=10)
    assert intake.connections >= 2
    assert any("retrying" in r.getMessage() for r in caplog.records)


def test_polling_when_idle_is_off_and_several_folders_at_once(
    dovecot: Dovecot, user: str, mailbox: IMAPClient, opened: OpenDesk
) -> None:
    mailbox.create_folder("Vendor")
    acct = account(dovecot, user, folders=("INBOX", "Vendor"), idle=False, poll_interval=timedelta(seconds=1))
    intake = intake_for(opened, acct)
    stop = threading.Event()
    thread = threading.Thread(target=intake.run, args=(stop,))
    thread.start()
    try:
        assert wait_for(lambda: intake.connections == 2)
        mailbox.append("INBOX", make_mail(message_id="p1@x.example"))
        mailbox.append("Vendor", make_mail(sender="desk@vendor.example", message_id="p2@vendor.example"))
        assert wait_for(lambda: spooled(opened) == 2, timeout=15)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    with opened.database.connection_context():
        refs = sorted(row.source_ref.split(";")[0] for row in InboundMail.select())
    assert refs == [f"imap://{user}@imap/INBOX", f"imap://{user}@imap/Vendor"]


@pytest.mark.parametrize("mode", ["ssl", "starttls"])
def test_tls_and_starttls_with_a_private_certificate(
    dovecot: Dovecot, user: str, mailbox: IMAPClient, opened: OpenDesk, mode: str
) -> None:
    mailbox.append("INBOX", make_mail(message_id=f"{mode}@x.example"))
    port = dovecot.tls_port if mode == "ssl" else dovecot.port
    trusted = account(dovecot, user, tls=mode, port=port, host="127.0.0.1", ca_file=dovecot.ca_file)
    untrusted = account(dovecot, user, tls=mode, port=port, host="127.0.0.1")

    with pytest.raises(ImapError, match="certificate verify failed"):
        intake_for(opened, untrusted).sync_once()
    assert [p.fetched for p in intake_for(opened, trusted).sync_once()] == [1]


def test_a_refused_login_is_a_clear_error_and_is_not_retried_quickly(
    dovecot: Dovecot, user: str, opened: OpenDesk, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = account(dovecot, user, password=Secret("imap[0].password", "wrong"))
    with pytest.raises(ImapLoginError, match=rf"{user}@imap: login refused"):
        intake_for(opened, wrong).sync_once()

    intake = intake_for(opened, wrong)
    stop = threading.Event()
    caplog.set_level(logging.ERROR, logger="maildesk.intake.imap")
    thread = threading.Thread(target=intake.run, args=(stop,))
    thread.start()
    assert wait_for(lambda: any("login refused" in r.getMessage() for r in caplog.records), timeout=15)
    stop.set()
    thread.join(timeout=10)
    assert not thread.is_alive()
    message = next(r.getMessage() for r in caplog.records if "login refused" in r.getMessage())
    assert float(message.rsplit("retrying in ", 1)[1].split()[0]) >= 60


def test_a_missing_folder_is_named_in_the_error(dovecot: Dovecot, user: str, opened: OpenDesk) -> None:
    with pytest.raises(ImapError, match="cannot open folder 'Nowhere'"):
        intake_for(opened, account(dovecot, user, folders=("Nowhere",))).sync_once()


def test_an_unreachable_server_is_a_clear_error(opened: OpenDesk, tmp_path: Path) -> None:
    acct = ImapAccount(host="127.0.0.1", port=free_port(), tls="none", username="x")
    with pytest.raises(ImapError, match="cannot connect"):
        intake_for(opened, acct).sync_once()


@given(st.lists(st.integers(min_value=0, max_value=5000)), st.integers(1, 10), st.integers(1, 8000))
def test_batches_keep_order_and_bounds(sizes: list[int], count: int, limit: int) -> None:
    pairs = list(enumerate(sizes, start=1))
    groups = list(batches(pairs, count, limit))

    assert [uid for group in groups for uid in group] == [uid for uid, _ in pairs]
    length = dict(pairs)
    for group in groups:
        assert 1 <= len(group) <= count
        assert len(group) == 1 or sum(length[u] for u in group) <= limit


def test_backoff_doubles_up_to_its_ceiling_and_resets() -> None:
    backoff = Backoff(first=1.0, most=8.0)
    delays = [backoff.next() for _ in range(6)]
    assert all(0.5 * min(8.0, 2**i) <= d <= min(8.0, 2**i) for i, d in enumerate(delays)), delays
    assert backoff.next(at_least=60) == 60
    backoff.reset()
    assert backoff.next() <= 1.0


def test_serve_reads_imap_and_survives_sigkill_twice_mid_backfill(
    dovecot: Dovecot, user: str, mailbox: IMAPClient, tmp_path: Path
) -> None:
    ids = [f"b{i}@backfill.example" for i in range(400)]
    for mid in ids:
        mailbox.append(
            "INBOX", make_mail(message_id=mid, subject=f"backfill {mid[:4]}", sender=f"c{mid[1:4]}@x.example")
        )
    process = ServeProcess(
        tmp_path,
        "[[imap]]\n"
        f'host = "127.0.0.1"\nport = {dovecot.port}\ntls = "none"\n'
        f'username = "{user}"\npassword = "env:TEST_IMAP_PASSWORD"\n',
        env={"TEST_IMAP_PASSWORD": PASSWORD},
    )
    process.start()
    for threshold in (100, 250):
        assert wait_for(lambda t=threshold: spool_count(process.db) >= t, timeout=120)
        process.kill()
        process.start()
    rows = stored(process.db, timeout=120, expect=len(ids))
    assert process.terminate() == 0
    message_ids = [mid for mid, _ in rows]
    assert len(message_ids) == len(set(message_ids)), "no message is on a ticket twice"
    assert set(message_ids) == set(ids), "every message in the mailbox is on a ticket"
    mailbox.select_folder("INBOX", readonly=True)
    assert mailbox.search("UNSEEN") == [], "everything spooled is flagged \\Seen"
    log = (tmp_path / "serve.log").read_text()
    assert "MD-" in log  # the per-message log line names the ticket


def spool_count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return int(conn.execute("SELECT count(*) FROM inbound_mail").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def test_serve_with_many_accounts_still_processes_mail(dovecot: Dovecot, tmp_path: Path) -> None:
    # more accounts than the event loop's default thread pool has threads (6 on 2 cores)
    users = [dovecot.new_user() for _ in range(8)]
    config = ""
    for i, name in enumerate(users):
        client = dovecot.client(name)
        client.append("INBOX", make_mail(message_id=f"acct{i}@x.example", sender=f"c{i}@x.example"))
        client.logout()
        config += (
            f'[[imap]]\nhost = "127.0.0.1"\nport = {dovecot.port}\ntls = "none"\n'
            f'username = "{name}"\npassword = "{PASSWORD}"\n'
        )
    process = ServeProcess(tmp_path, config)
    process.start()
    rows = stored(process.db, timeout=60, expect=len(users))
    assert process.terminate() == 0
    assert sorted(mid for mid, _ in rows) == sorted(f"acct{i}@x.example" for i in range(8))
