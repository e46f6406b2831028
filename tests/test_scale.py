"""Several workers on one PostgreSQL (issue 10): work is claimed with FOR UPDATE SKIP LOCKED and a
lease, and threading serialises on the conversation, so every message lands exactly once, on
the right ticket, however the workers interleave."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg2
import pytest

from maildesk.spool import header_message_id
from tests.conftest import ROOT
from tests.mail import make_mail
from tests.smtp_server import ServeProcess

WORKER = """
import sys
from datetime import datetime, UTC
from pathlib import Path
from maildesk.config import load_config
from maildesk.desk import open_desk
desk = open_desk(load_config(Path(sys.argv[1])), sys.argv[2])
done = desk.worker.process_pending(datetime(2026, 11, 2, 12, 0, tzinfo=UTC), batch_size=int(sys.argv[3]))
print(done)
"""

CONFIG = """
[desk]
addresses = ["support@helpdesk.example"]
secret = "scale"
[storage]
path = "{root}/var"
[outbound]
relay = "maildir:{root}/out"
"""


def spool(url: str, config: Path, conversations: int, replies: int, start: int = 0) -> int:
    from maildesk.config import load_config
    from maildesk.desk import open_desk
    from maildesk.spool import Incoming

    desk = open_desk(load_config(config), url)
    t0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    items = []
    # interleaved: each conversation's first message and its replies sit side by side in the
    # spool, so different workers take them at the same moment
    for c in range(start, start + conversations):
        root = f"c{c}.0@customer.example"
        items.append(make_mail(sender=f"u{c}@customer.example", subject=f"Case {c} printer trouble",
                               message_id=root, date=t0))  # fmt: skip
        for r in range(1, replies + 1):
            reply = make_mail(
                sender=f"u{c}@customer.example",
                subject=f"Re: Case {c} printer trouble",
                message_id=f"c{c}.{r}@customer.example",
                in_reply_to=root,
                references=[root],
                date=t0 + timedelta(minutes=r),
            )
            items.append(reply)
    desk.spool.accept_many([Incoming(raw, "file", f"m{i}") for i, raw in enumerate(items)], t0)
    desk.close()
    return len(items)


def start_workers(config: Path, url: str, count: int, batch: int) -> list[subprocess.Popen[bytes]]:
    """`count` worker processes on the queue at once, each running `process_pending` to the end."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    command = [sys.executable, "-c", WORKER, str(config), url, str(batch)]
    return [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(count)
    ]


def taken_by(procs: list[subprocess.Popen[bytes]], timeout: float) -> list[int]:
    """How many messages each worker took, once all have finished; a failed worker fails here."""
    taken = []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        assert proc.returncode == 0, err.decode()[-3000:]
        taken.append(int(out.decode().split()[-1]))
    return taken


def rows(url: str, sql: str) -> list[tuple]:
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())
    finally:
        conn.close()  # `with` alone only ends the transaction; counted connections must go


@pytest.mark.parametrize("workers", [3])
def test_workers_share_one_queue_and_each_conversation_stays_one_ticket(
    postgres_url: str, tmp_path: Path, workers: int
) -> None:
    config = tmp_path / "maildesk.toml"
    config.write_text(CONFIG.format(root=tmp_path))
    total = spool(postgres_url, config, conversations=40, replies=2)
    taken = taken_by(start_workers(config, postgres_url, workers, batch=4), timeout=300)
    assert sum(taken) == total  # each message claimed by exactly one worker
    assert all(n > 0 for n in taken), taken  # and the work was shared
    states = dict(rows(postgres_url, "SELECT state, count(*) FROM inbound_mail GROUP BY state"))
    reasons = rows(
        postgres_url, "SELECT message_id, left(reason, 120) FROM inbound_mail WHERE state = 'quarantined'"
    )
    assert states == {"processed": total}, (states, reasons)
    stored = rows(
        postgres_url, "SELECT count(*), count(DISTINCT inbound_id) FROM message WHERE direction = 'in'"
    )
    assert stored == [(total, total)]  # every message exactly once
    tickets = rows(
        postgres_url,
        "SELECT t.number, count(*) FROM ticket t JOIN message m ON m.ticket_id = t.id "
        "WHERE m.direction = 'in' GROUP BY t.number ORDER BY t.number",
    )
    assert len(tickets) == 40 and all(n == 3 for _, n in tickets), tickets
    numbers = [n for n, _ in tickets]
    assert numbers == list(range(1, 41))  # no number handed out twice, none skipped
    split = rows(
        postgres_url,
        "SELECT split_part(m.message_id, '.', 1), count(DISTINCT m.ticket_id) FROM message m "
        "WHERE m.direction = 'in' GROUP BY 1 HAVING count(DISTINCT m.ticket_id) > 1",
    )
    assert split == []  # no conversation split across tickets
    acks = rows(postgres_url, "SELECT count(*) FROM outbound_mail WHERE kind = 'acknowledgement'")
    assert acks == [(40,)]  # one acknowledgement per ticket
    assert json.dumps(taken)  # what each worker took, for the log on failure


def test_exactly_one_clock_is_active_and_a_standby_takes_over(postgres_url: str) -> None:
    from maildesk.serve import ClockLock

    first, second = ClockLock(postgres_url), ClockLock(postgres_url)
    try:
        assert first.active() is True
        assert second.active() is False  # another host's clock holds the lock
        import threading

        again: list[bool] = []  # serve asks from whichever thread asyncio.to_thread picks
        asker = threading.Thread(target=lambda: again.append(first.active()))
        asker.start()
        asker.join()
        assert again == [True]  # and keeps it, checked on the session that holds the lock
        assert maildesk_sessions(postgres_url) == 2  # one per clock, not one per thread
        first.close()  # that host goes away
        import time

        # the server frees the lock when the closed session's backend has ended, a moment later
        deadline = time.monotonic() + 10
        while not second.active() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert second.active() is True
    finally:
        first.close()
        second.close()


def processed(url: str) -> int:
    try:
        return int(rows(url, "SELECT count(*) FROM inbound_mail WHERE state = 'processed'")[0][0])
    except psycopg2.Error:
        return -1  # the database is restarting


def wait_for(url: str, count: int, timeout: float = 90.0) -> int:
    import time

    deadline = time.monotonic() + timeout
    done = processed(url)
    while done < count and time.monotonic() < deadline:
        time.sleep(0.3)
        done = processed(url)
    return done


def test_a_dead_workers_claims_are_taken_over_when_their_lease_runs_out(
    postgres_url: str, tmp_path: Path
) -> None:
    from maildesk.config import load_config
    from maildesk.desk import open_desk
    from maildesk.tickets.store.locks import claim

    config = tmp_path / "maildesk.toml"
    config.write_text(CONFIG.format(root=tmp_path) + '\n[workers]\nlease = "2s"\n')
    total = spool(postgres_url, config, conversations=10, replies=1)
    desk = open_desk(load_config(config), postgres_url)
    # a worker claims half the queue and dies before processing any of it
    taken = claim(desk.database, total // 2, datetime.now(UTC).replace(tzinfo=None), timedelta(seconds=2))
    desk.close()
    assert len(taken) == total // 2
    first = taken_by(start_workers(config, postgres_url, 1, batch=50), timeout=120)
    assert first == [total - len(taken)]  # the dead worker's share waits
    import time

    time.sleep(2.5)  # the lease runs out
    assert taken_by(start_workers(config, postgres_url, 1, batch=50), timeout=120) == [len(taken)]
    assert processed(postgres_url) == total
    assert rows(
        postgres_url, "SELECT count(DISTINCT inbound_id), count(*) FROM message WHERE direction = 'in'"
    ) == [(total, total)]


OUTAGE = 60.0  # seconds the database is away: the "a minute"


def test_four_workers_survive_a_sigkilled_peer_and_a_minute_without_the_database(
    postgres_url: str, postgres_server: dict, tmp_path: Path
) -> None:
    """4 workers and a clock on 5,000 spooled messages (2,500 conversations of two). One worker
    is SIGKILLed holding claims; the database then goes away for a minute and comes back;
    more mail is spooled after. Every message is stored once, on its conversation's one
    ticket, and every acknowledgement reaches the relay exactly once."""
    import time

    extra = '\n[workers]\nlease = "5s"\n'
    first = spool(postgres_url, _config(tmp_path, extra), conversations=2000, replies=1)
    roles = ["worker"] * 4 + ["clock"]
    procs = []
    for i, role in enumerate(roles):
        (tmp_path / f"p{i}").mkdir()
        procs.append(ServeProcess(tmp_path / f"p{i}", extra + RELAY.format(root=tmp_path), role=role,
                                  db_url=postgres_url))  # fmt: skip
    for proc in procs:
        proc.start()
    try:
        assert wait_for(postgres_url, 400, timeout=120) >= 400
        procs[0].kill()  # mid-batch, holding up to 50 claims
        postgres_server["stop"]()
        time.sleep(OUTAGE)  # the survivors keep trying; nothing they hold is lost
        postgres_server["start"]()
        assert all(p.proc is not None and p.proc.poll() is None for p in procs[1:])  # none gave up
        more = spool(postgres_url, _config(tmp_path, extra), conversations=500, replies=1, start=2000)
        total = first + more
        assert total == 5000
        assert wait_for(postgres_url, total, timeout=300) == total
        sent = wait_sent(postgres_url, 2500, timeout=120)
        assert sent == 2500, sent
    finally:
        for proc in procs:
            if proc.proc is not None and proc.proc.poll() is None:
                proc.terminate()
    stored = rows(
        postgres_url, "SELECT count(*), count(DISTINCT inbound_id) FROM message WHERE direction = 'in'"
    )
    assert stored == [(total, total)]  # every message once, none twice
    split = rows(
        postgres_url,
        "SELECT split_part(m.message_id, '.', 1), count(DISTINCT m.ticket_id) FROM message m "
        "WHERE m.direction = 'in' GROUP BY 1 HAVING count(DISTINCT m.ticket_id) > 1",
    )
    assert split == []  # threads whole
    tickets = rows(
        postgres_url, "SELECT count(*), count(DISTINCT number), min(number), max(number) FROM ticket"
    )
    assert tickets == [(2500, 2500, 1, 2500)]  # one ticket per conversation, numbers unique and gapless
    queued = rows(postgres_url, "SELECT count(*), count(DISTINCT message_id) FROM outbound_mail")
    assert queued == [(2500, 2500)]  # one acknowledgement per ticket, none queued twice
    delivered = [header_message_id(p.read_bytes()) for p in (tmp_path / "out" / "new").iterdir()]
    assert len(delivered) == 2500 and len(set(delivered)) == 2500  # and none sent twice


def test_a_worker_cut_off_by_a_restart_takes_up_its_own_claims_and_blames_no_message(
    postgres_url: str, postgres_server: dict, tmp_path: Path
) -> None:
    """With a 10-minute lease, only the worker itself can finish what it had claimed when the
    database restarted under it: it does so at once, and quarantines nothing for the outage."""
    extra = '\n[workers]\nlease = "10m"\n'
    total = spool(postgres_url, _config(tmp_path, extra), conversations=150, replies=1)
    (tmp_path / "w").mkdir()
    worker = ServeProcess(tmp_path / "w", extra, role="worker", db_url=postgres_url)
    worker.start()
    try:
        assert wait_for(postgres_url, 30, timeout=60) >= 30
        postgres_server["restart"]()  # mid-pass: the message in hand fails with the connection
        assert wait_for(postgres_url, total, timeout=90) == total
    finally:
        worker.terminate()
    states = rows(postgres_url, "SELECT state, count(*) FROM inbound_mail GROUP BY state")
    assert states == [("processed", total)]  # none quarantined for the database's fault
    log = (tmp_path / "w" / "serve.log").read_text()
    assert "database unavailable" in log and "Traceback" not in log


def test_smtp_intake_answers_451_while_the_database_is_away_and_accepts_again_after(
    postgres_url: str, postgres_server: dict, tmp_path: Path
) -> None:
    """An intake never acknowledges what it could not store: while PostgreSQL is down the
    sender hears 451 (try again later) and keeps the message; once it is back, the same
    process accepts again without a restart."""
    import smtplib

    (tmp_path / "i").mkdir()
    intake = ServeProcess(tmp_path / "i", role="intake", db_url=postgres_url)
    intake.start()

    def send(n: int) -> None:
        raw = make_mail(
            sender=f"u{n}@customer.example", subject=f"Outage {n}", message_id=f"o{n}@customer.example"
        )
        with smtplib.SMTP("127.0.0.1", intake.port, timeout=30) as client:
            client.sendmail(f"u{n}@customer.example", ["support@helpdesk.example"], raw)

    try:
        send(1)
        postgres_server["stop"]()
        try:
            with pytest.raises(smtplib.SMTPDataError) as refused:
                send(2)
            assert refused.value.smtp_code == 451
        finally:
            postgres_server["start"]()
        send(2)  # the sender's retry
        send(3)
    finally:
        intake.terminate()
    spooled = rows(postgres_url, "SELECT message_id FROM inbound_mail ORDER BY id")
    assert spooled == [("o1@customer.example",), ("o2@customer.example",), ("o3@customer.example",)]


def test_a_serve_process_keeps_to_its_connection_pool(postgres_url: str, tmp_path: Path) -> None:
    """Intake, worker and clock threads of one process share `pool_size` connections (plus the
    clock's lock connection): 60 messages from three SMTP clients at once, and the database
    never sees more than that from it."""
    import smtplib
    import threading
    import time

    (tmp_path / "a").mkdir()
    extra = "[database]\npool_size = 2\n" + RELAY.format(root=tmp_path)
    desk = ServeProcess(tmp_path / "a", extra, role="all", db_url=postgres_url)
    desk.start()
    peak, done = [0], threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], maildesk_sessions(postgres_url))
            time.sleep(0.05)

    def client(k: int) -> None:
        with smtplib.SMTP("127.0.0.1", desk.port, timeout=60) as smtp:
            for n in range(20):
                raw = make_mail(sender=f"k{k}n{n}@customer.example", subject=f"Pool {k} {n}",
                                message_id=f"p{k}.{n}@customer.example")  # fmt: skip
                smtp.sendmail(f"k{k}n{n}@customer.example", ["support@helpdesk.example"], raw)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        clients = [threading.Thread(target=client, args=(k,)) for k in range(3)]
        for t in clients:
            t.start()
        for t in clients:
            t.join()
        assert wait_for(postgres_url, 60, timeout=60) == 60
        assert wait_sent(postgres_url, 60, timeout=60) == 60
    finally:
        done.set()
        watcher.join()
        desk.terminate()
    assert 1 <= peak[0] <= 3, peak  # two pooled connections and the clock's lock


def maildesk_sessions(url: str) -> int:
    """maildesk's connections to this database (it names its sessions `maildesk`)."""
    name = url.rsplit("/", 1)[1]
    sql = f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{name}' AND application_name = 'maildesk'"
    return int(rows(url, sql)[0][0])


RELAY = '[outbound]\nrelay = "maildir:{root}/out"\n'


def wait_sent(url: str, count: int, timeout: float) -> int:
    import time

    deadline = time.monotonic() + timeout
    sent = -1
    while time.monotonic() < deadline:
        try:
            sent = int(rows(url, "SELECT count(*) FROM outbound_mail WHERE state = 'sent'")[0][0])
        except psycopg2.Error:
            sent = -1
        if sent >= count:
            break
        time.sleep(0.5)
    return sent


def _config(root: Path, extra: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    config = root / "maildesk.toml"
    config.write_text(CONFIG.format(root=root) + extra)
    return config
