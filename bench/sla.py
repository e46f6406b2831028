"""One SLA clock pass over 10,000 and 100,000 open tickets on SQLite, and how it grows.

    python3 bench/sla.py [--sizes 10000 100000]

For each size, a fresh database gets that many open tickets in a steady state (see
`fill`), all due for a look, as after an upgrade or a restart. Printed per size:
- full pass: every ticket evaluated, its deadlines worked out and its next look written
  back, and whatever falls due at that instant sent;
- quiet pass: the same instant again, nothing due: it must write nothing (SQLite's
  total_changes is compared) and take next to no time;
- a minute later: only what fell due in that minute;
- the floor: reading every open ticket's row once (SELECT of the same columns), the least any
  pass over all of them must do.
Goal (issue 8): the full pass over 100,000 tickets under 5 s, growing linearly or better.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from maildesk.config import parse_config  # noqa: E402
from maildesk.desk import open_desk  # noqa: E402
from maildesk.sla.clock import run_pass  # noqa: E402
from maildesk.tickets.store.models import Agent, Contact, Ticket  # noqa: E402

NOW = datetime(2026, 11, 4, 13, 0, tzinfo=UTC)  # a Wednesday, 14:00 in Zurich
CONFIG = """
[desk]
name = "Bench Support"
addresses = ["support@bench.example"]
secret = "bench"
[storage]
path = "{folder}/var"
[outbound]
relay = "maildir:{folder}/out"
[[teams]]
name = "Service Desk"
[[teams]]
name = "Billing"
[[agents]]
address = "a1@bench.example"
team = "Service Desk"
[[agents]]
address = "a2@bench.example"
team = "Service Desk"
[[agents]]
address = "a3@bench.example"
team = "Billing"
[[agents]]
address = "s1@bench.example"
team = "Service Desk"
tier = 2
"""


def fill(n: int, seed: int = 7) -> None:
    """A desk in steady state: what was due before NOW was handled by earlier passes.

    Most tickets are answered, assigned and updated within the last two days; the unanswered
    and unclaimed ones arrived within the hour; pending and resolved ones wait for the
    customer since earlier today. So a pass at NOW looks at all of them and finds only what
    falls due at NOW, as a clock that restarts on a healthy desk does.
    """
    rng = random.Random(seed)
    agents = [a.id for a in Agent.select()]
    contact = Contact.create(email="customer@bench.example", created_at=NOW.replace(tzinfo=None))
    base = NOW.replace(tzinfo=None)
    rows = []
    for number in range(1, n + 1):
        fresh = rng.random() < 0.05  # arrived within the hour: unanswered, maybe unclaimed
        created = base - timedelta(
            minutes=rng.randrange(1, 55) if fresh else rng.randrange(120, 30 * 24 * 60)
        )
        status = "new" if fresh else rng.choices(["open", "pending", "resolved"], [70, 15, 15])[0]
        replied = None if fresh else max(created, base - timedelta(minutes=rng.randrange(5, 170)))
        updated = created if fresh else max(created, base - timedelta(minutes=rng.randrange(5, 47 * 60)))
        waiting = (
            base - timedelta(minutes=rng.randrange(5, 300)) if status in ("pending", "resolved") else None
        )
        rows.append(
            {
                "number": number,
                "subject": f"ticket {number}",
                "subject_key": f"ticket {number}",
                "status": status,
                "priority": rng.choices(["low", "normal", "high", "urgent"], [20, 60, 15, 5])[0],
                "team": rng.choice(["Service Desk", "Billing"]),
                "assignee": None if fresh and rng.random() < 0.5 else rng.choice(agents),
                "requester": contact.id,
                "created_at": created,
                "updated_at": updated,
                "first_response_at": replied,
                "waiting_since": waiting,
                "sla_next_at": base,
            }
        )
    for start in range(0, n, 5000):
        Ticket.insert_many(rows[start : start + 5000]).execute()


def changes(database) -> int:  # type: ignore[no-untyped-def]
    return int(database.connection().total_changes)


def measure(n: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as folder:
        config = parse_config(tomllib.loads(CONFIG.format(folder=folder)), Path(folder) / "maildesk.toml")
        desk = open_desk(config, f"sqlite:///{folder}/bench.db")
        with desk.database.atomic():
            fill(n)
        started = time.perf_counter()
        columns = (
            Ticket.id,
            Ticket.status,
            Ticket.priority,
            Ticket.created_at,
            Ticket.updated_at,
            Ticket.first_response_at,
            Ticket.assignee,
            Ticket.sla_next_at,
        )
        rows = list(Ticket.select(*columns).tuples())
        floor = time.perf_counter() - started
        assert len(rows) == n
        del rows  # the floor's rows are not the pass's to carry
        full = run_pass(config, desk.database, NOW)
        before = changes(desk.database)
        quiet = run_pass(config, desk.database, NOW)
        wrote = changes(desk.database) - before
        minute = run_pass(config, desk.database, NOW + timedelta(minutes=1))
        desk.close()
    print(f"{n:>7,} tickets: full pass {full.seconds:6.2f} s ({n / full.seconds:,.0f} tickets/s), "
          f"actions {dict(full.actions)}")  # fmt: skip
    pad = " " * 9
    print(
        f"{pad}quiet pass {quiet.seconds * 1000:6.1f} ms, looked at {quiet.looked_at}, rows written {wrote}"
    )
    print(f"{pad}a minute later {minute.seconds * 1000:6.1f} ms, looked at {minute.looked_at}")
    ratio = full.seconds / floor
    print(f"{pad}floor (read every open ticket once) {floor:5.2f} s; full pass / floor {ratio:4.1f}x")
    return {"full": full.seconds, "quiet": quiet.seconds, "wrote": wrote}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = parser.parse_args()
    results = {n: measure(n) for n in args.sizes}
    if len(args.sizes) >= 2:
        small, large = min(args.sizes), max(args.sizes)
        growth = results[large]["full"] / results[small]["full"]
        print(f"growth {small:,} -> {large:,} tickets ({large / small:.0f}x): full pass {growth:.1f}x "
              f"(linear: {large / small:.0f}x); goal: under 5 s for 100,000")  # fmt: skip
    assert all(r["wrote"] == 0 for r in results.values()), "a pass with nothing due wrote to the database"


if __name__ == "__main__":
    main()
