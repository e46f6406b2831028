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

from tests.conftest import ROOT
from tests.mail import make_mail

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


def spool(url: str, config: Path, conversations: int, replies: int) -> int:
    from maildesk.config import load_config
    from maildesk.desk import open_desk
    from maildesk.spool import Incoming

    desk = open_desk(load_config(config), url)
    t0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    items = []
    # interleaved: each conversation's first message and its replies sit side by side in the
    # spool, so different workers take them at the same moment
    for c in range(conversations):
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


def rows(url: str, sql: str) -> list[tuple]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(sql)
        return list(cur.fetchall())


@pytest.mark.parametrize("workers", [3])
def test_workers_share_one_queue_and_each_conversation_stays_one_ticket(
    postgres_url: str, tmp_path: Path, workers: int
) -> None:
    config = tmp_path / "maildesk.toml"
    config.write_text(CONFIG.format(root=tmp_path))
    total = spool(postgres_url, config, conversations=40, replies=2)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(config), postgres_url, "4"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(workers)
    ]
    taken = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()[-3000:]
        taken.append(int(out.decode().strip().splitlines()[-1]))
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
        assert first.active() is True  # and keeps it
        first.close()  # that host goes away
        assert second.active() is True
    finally:
        first.close()
        second.close()
