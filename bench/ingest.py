"""Ingest throughput: maildesk end to end against the stdlib+SQLite floor, measured in one run.

    python3 bench/ingest.py [--rounds 3] [--corpus PATH]

maildesk runs as a user would run it (`maildesk ingest --json FOLDER` in a fresh folder
with the default SQLite on disk: spool with fsync, parse, strip quotes, thread, store).
The floor parses the same files with Python's stdlib `email` and writes one SQLite row
each in one transaction. The rounds alternate so machine noise hits both alike; the best
round of each is compared. django-helpdesk's figure on this machine kind comes from
../shared/corpora/PEERS.md (measured there on easy_ham, not re-run here), so that
comparison is made on easy_ham alone; the floor ratio is on the whole ham+spam corpus.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpora" / "spamassassin-2002"
DJANGO_HELPDESK_MSG_PER_S = 68.0  # PEERS.md: stock get_email, 36.7 s for 2,500 easy_ham


def floor(files: list[Path], folder: Path) -> float:
    started = time.perf_counter()
    db = sqlite3.connect(folder / "floor.db")
    db.execute("CREATE TABLE m (id INTEGER PRIMARY KEY, message_id TEXT, subject TEXT, body TEXT)")
    with db:
        for path in files:
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            try:
                body = msg.get_body(preferencelist=("plain", "html"))
                text = body.get_content() if body is not None else ""
            except (LookupError, KeyError, ValueError, AttributeError):
                text = ""
            db.execute(
                "INSERT INTO m (message_id, subject, body) VALUES (?, ?, ?)",
                (str(msg.get("Message-ID", "")), str(msg.get("Subject", "")), text),
            )
    db.close()
    return time.perf_counter() - started


def maildesk(corpus: Path, folder: Path) -> tuple[float, dict]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "maildesk.cli", "ingest", "--json", str(corpus)],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - started, json.loads(result.stdout)


def measure(corpus: Path, rounds: int) -> tuple[int, float, float, dict]:
    files = sorted(p for p in corpus.rglob("*") if p.is_file())
    print(f"corpus: {corpus} ({len(files)} files), {os.cpu_count()} cores")
    best_floor = best_md = float("inf")
    summary: dict = {}
    for round_ in range(1, rounds + 1):
        with tempfile.TemporaryDirectory() as tmp:
            f = floor(files, Path(tmp))
        with tempfile.TemporaryDirectory() as tmp:
            m, summary = maildesk(corpus, Path(tmp))
        best_floor, best_md = min(best_floor, f), min(best_md, m)
        # every message is accounted for: on a ticket, or quarantined (spam) with its reason
        outcomes = ("new_tickets", "replies", "auto_replies", "bounces", "spam", "quarantined")
        processed = sum(summary[k] for k in outcomes)
        if processed != len(files):
            raise SystemExit(f"maildesk accounted for only {processed} of {len(files)} messages: {summary}")
        print(
            f"  round {round_}: floor {f:.2f}s ({len(files) / f:.0f} msg/s), "
            f"maildesk {m:.2f}s ({len(files) / m:.0f} msg/s)"
        )
    print(f"  maildesk summary: {json.dumps(summary)}")
    print(f"  best floor:    {best_floor:.2f}s  {len(files) / best_floor:7.0f} msg/s")
    print(f"  best maildesk: {best_md:.2f}s  {len(files) / best_md:7.0f} msg/s")
    return len(files), best_floor, best_md, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args()
    _, best_floor, best_md, _ = measure(args.corpus, args.rounds)
    print(f"maildesk / floor time on {args.corpus.name}: {best_md / best_floor:.2f}x (goal: at most 4x)")
    # django-helpdesk's figure was taken on easy_ham alone, so the comparison uses the same files
    ham = CORPUS / "easy_ham"
    count, _, ham_md, _ = measure(ham, args.rounds)
    rate = count / ham_md
    print(
        f"maildesk / django-helpdesk throughput on easy_ham: {rate / DJANGO_HELPDESK_MSG_PER_S:.1f}x "
        f"({rate:.0f} vs {DJANGO_HELPDESK_MSG_PER_S:.0f} msg/s; goal: at least 10x)"
    )


if __name__ == "__main__":
    main()
