"""IMAP backfill: a Dovecot folder of real mail read into maildesk, against a bare fetch floor.

    python3 bench/imap_backfill.py [--messages 5000]

A throwaway Dovecot (the test fixture) holds N messages from the SpamAssassin 2002 corpus,
cycled when N exceeds it. Measured in the same run, on the same folder:

- floor: a bare imapclient session that FETCHes BODY.PEEK[] in batches of 100 and keeps
  nothing: the price of the protocol and the server, below which no IMAP reader can go;
- intake: maildesk's ImapIntake pass: fetch, spool durably (SQLite), flag \\Seen, record UIDs;
- end to end: that pass plus the worker making tickets of everything spooled.

Between runs the messages are marked unseen again and the UID state dropped, so each
maildesk pass does the full backfill on a fresh database.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import tomllib
from datetime import UTC, datetime
from itertools import cycle, islice
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from imapclient import IMAPClient  # noqa: E402

from maildesk.config import ImapAccount, Secret, parse_config  # noqa: E402
from maildesk.desk import open_desk  # noqa: E402
from maildesk.intake.imap import ImapIntake  # noqa: E402
from tests.dovecot import PASSWORD, start_dovecot  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpora" / "spamassassin-2002"
_MESSAGE_ID = re.compile(rb"^message-id:\s*<", re.IGNORECASE | re.MULTILINE)
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def fill(client: IMAPClient, count: int) -> int:
    files = sorted(p for p in CORPUS.glob("*/*.eml"))
    size = 0
    batch: list[bytes] = []
    for i, path in enumerate(islice(cycle(files), count)):
        raw = path.read_bytes()
        if i >= len(files):
            # a copy of a corpus message gets its own Message-ID, or the spool would skip it
            raw = _MESSAGE_ID.sub(b"\\g<0>copy%d." % i, raw, count=1)
        size += len(raw)
        batch.append(raw)
        if len(batch) == 200:
            client.multiappend("INBOX", batch)
            batch = []
    if batch:
        client.multiappend("INBOX", batch)
    return size


def floor(client: IMAPClient) -> float:
    started = time.perf_counter()
    client.select_folder("INBOX", readonly=True)
    uids = client.search("ALL")
    for i in range(0, len(uids), 100):
        client.fetch(uids[i : i + 100], ["BODY.PEEK[]"])
    return time.perf_counter() - started


def maildesk(host: str, port: int, user: str, folder: Path) -> tuple[float, float, int]:
    config = parse_config(
        tomllib.loads(f'[desk]\naddresses = ["support@helpdesk.example"]\n[storage]\npath = "{folder}/var"\n')
    )
    desk = open_desk(config, f"sqlite:///{folder}/maildesk.db")
    account = ImapAccount(host=host, port=port, tls="none", username=user, password=Secret("p", PASSWORD))
    # a fresh mailbox for maildesk: everything unseen, as on the first day
    intake = ImapIntake(account, "bench", desk.spool, desk.database, lambda: NOW)
    started = time.perf_counter()
    passes = intake.sync_once()
    spooled = time.perf_counter() - started
    desk.worker.process_pending(NOW)
    total = time.perf_counter() - started
    desk.close()
    return spooled, total, sum(p.spooled for p in passes)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()

    servers = start_dovecot(lambda why: sys.exit(why))
    dovecot = next(servers)
    try:
        client = dovecot.client("bench")
        size = fill(client, args.messages)
        print(f"{args.messages} messages, {size / 1e6:.1f} MB in a Dovecot folder")
        for round_ in range(1, args.rounds + 1):
            base = floor(client)
            client.select_folder("INBOX")
            client.remove_flags(client.search("ALL"), [b"\\Seen"], silent=True)
            with tempfile.TemporaryDirectory() as folder:
                spooled, total, new = maildesk(dovecot.host, dovecot.port, "bench", Path(folder))
            n = args.messages
            print(
                f"round {round_}: floor (bare FETCH) {n / base:,.0f} msg/s | "
                f"maildesk intake {n / spooled:,.0f} msg/s ({spooled / base:.1f}x the floor's time) | "
                f"end to end with tickets {n / total:,.0f} msg/s | {new} spooled as new"
            )
        client.logout()
    finally:
        next(servers, None)


if __name__ == "__main__":
    main()
