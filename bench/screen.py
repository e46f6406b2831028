"""Screening throughput: the screen stage with and without the spam model, in one run.

    python3 bench/screen.py [--rounds 3]

The 3,250 SpamAssassin 2002 messages are parsed once (parsing is measured by bench/ingest.py),
then the screen stage (loop, bounce, auto-reply, spam rules) runs over every parsed message
inside one rolled-back transaction on a fresh SQLite database: once with the shipped model
(models/spam) and once with the model turned off (header signals and lists only). Also
printed: the spam model's own scoring rate, and the verdicts, so a change in speed can be
told apart from a change in what the rules decide.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import tomllib
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from maildesk import screen  # noqa: E402
from maildesk.config import parse_config  # noqa: E402
from maildesk.desk import open_desk  # noqa: E402
from maildesk.parse.message import parse  # noqa: E402
from maildesk.pipeline import MailContext  # noqa: E402
from maildesk.screen.spam import load_configured_model  # noqa: E402
from maildesk.tickets.store.fast import Statements  # noqa: E402

CORPUS = ROOT.parent / "shared" / "corpora" / "spamassassin-2002"
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def run(desk, config, model, mails) -> tuple[float, Counter[str]]:  # type: ignore[no-untyped-def]
    verdicts: Counter[str] = Counter()
    sql = Statements(desk.database)
    started = time.perf_counter()
    with desk.database.atomic() as transaction:
        for raw, parsed in mails:
            ctx = MailContext(0, raw, "bench", NOW, config, config.storage.path, sql, parsed=parsed,
                              spam_model=model)  # fmt: skip
            verdicts[screen.run(ctx).kind] += 1
        transaction.rollback()
    return time.perf_counter() - started, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    files = sorted(CORPUS.glob("*/*"))
    raws = [p.read_bytes() for p in files]
    mails = [(raw, parse(raw, now=NOW)) for raw in raws]
    with tempfile.TemporaryDirectory() as folder:
        config = parse_config(tomllib.loads(f'[storage]\npath = "{folder}/var"\n'))
        desk = open_desk(config, f"sqlite:///{folder}/maildesk.db")
        model = load_configured_model(config)
        assert model is not None, "models/spam is missing"
        off = replace(config, screen=replace(config.screen, spam_model=""))
        best_with = best_without = best_model = float("inf")
        for round_ in range(1, args.rounds + 1):
            with_model, verdicts = run(desk, config, model, mails)
            without_model, verdicts_off = run(desk, off, None, mails)
            started = time.perf_counter()
            model.score_many(raws)
            scoring = time.perf_counter() - started
            best_with, best_without = min(best_with, with_model), min(best_without, without_model)
            best_model = min(best_model, scoring)
            n = len(mails)
            print(
                f"round {round_}: screen with model {n / with_model:,.0f} msg/s, "
                f"without {n / without_model:,.0f} msg/s; model alone (score_many) {n / scoring:,.0f} msg/s"
            )
        n = len(mails)
        print(f"verdicts with the model:    {dict(verdicts)}")
        print(f"verdicts without the model: {dict(verdicts_off)}")
        print(
            f"best of {args.rounds}: {n / best_with:,.0f} msg/s with the model, "
            f"{n / best_without:,.0f} without "
            f"(the model costs {best_with / best_without:.1f}x); scoring alone {n / best_model:,.0f} msg/s"
        )
        desk.close()


if __name__ == "__main__":
    main()
