"""Outbox throughput: queued replies rendered and delivered to an SMTP sink, against a bare smtplib floor.

    python3 bench/outbox.py [--messages 10000]

What it measures, in one process on loopback:
- render+queue: maildesk renders N acknowledgements from the shipped templates (`build`: text
  and HTML alternative) and queues them with `enqueue` in one transaction, passing the
  pre-rendered statements (`sql=`) that the pipeline's MailContext carries;
- deliver: one `send_due` pass sends all N over one SMTP connection to an aiosmtpd sink and
  marks the rows sent (one UPDATE and commit per MARK_EVERY rows);
- floor: smtplib sends the same prepared bytes over one connection to a second sink of the
  same kind: the cost of SMTP itself. It runs once before and once after `send_due`, and
  the faster run is the floor (the timings vary by some 20% from run to run).
The goal is render+queue+deliver within 2x the floor's time. Both sinks run in threads of
this process and count Message-IDs, so "every message delivered exactly once" is checked;
the timings include the sinks' own work (the GIL is shared), for maildesk and floor alike.
"""

from __future__ import annotations

import argparse
import collections
import smtplib
import sys
import tempfile
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from aiosmtpd.controller import Controller  # noqa: E402

from maildesk.config import parse_config  # noqa: E402
from maildesk.desk import open_desk  # noqa: E402
from maildesk.outbox import enqueue, send_due  # noqa: E402
from maildesk.respond.render import build, environment  # noqa: E402
from maildesk.tickets.store.fast import Statements  # noqa: E402
from tests.smtp_server import free_port  # noqa: E402

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Counting:
    def __init__(self) -> None:
        self.ids: collections.Counter[str] = collections.Counter()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        for line in envelope.original_content.split(b"\r\n"):  # type: ignore[attr-defined]
            if line.lower().startswith(b"message-id:"):
                self.ids[line.split(b":", 1)[1].strip().decode().strip("<>")] += 1
                break
        return "250 OK"


def smtplib_floor(port: int, prepared: list[tuple[str, bytes]]) -> float:
    """Seconds for bare smtplib to send these (recipient, bytes) over one connection."""
    started = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as client:
        for recipient, data in prepared:
            client.sendmail("support@helpdesk.example", [recipient], data)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    args = parser.parse_args()
    n = args.messages
    floor_sink, md_sink = Counting(), Counting()
    controllers = [Controller(s, hostname="127.0.0.1", port=free_port()) for s in (floor_sink, md_sink)]
    for controller in controllers:
        controller.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = parse_config(
                tomllib.loads(
                    f'[storage]\npath = "{folder}/var"\n'
                    f'[outbound]\nrelay = "smtp://127.0.0.1:{controllers[1].port}"\n'
                )
            )
            desk = open_desk(config, f"sqlite:///{folder}/maildesk.db")
            env = environment(config)
            sql = Statements(desk.database)
            started = time.perf_counter()
            prepared, queued = [], set()
            with desk.database.atomic():
                for i in range(n):
                    message = build(
                        config, env, "acknowledgement",
                        {"name": f"Customer {i}", "desk": "Example Support", "subject": f"Question {i}",
                         "ref": f"MD-{i}", "promise": "within 2 business hours"},
                        to=[(f"Customer {i}", f"c{i}@customer.example")], subject=f"[MD-{i}] Question {i}",
                        now=NOW, ref=f"MD-{i}", in_reply_to=f"q{i}@customer.example", automatic=True,
                    )  # fmt: skip
                    row = enqueue(message, recipients=[f"c{i}@customer.example"],
                                  sender="support@helpdesk.example", kind="acknowledgement",
                                  automatic=True, now=NOW, sql=sql)  # fmt: skip
                    prepared.append((row.recipient, bytes(row.data)))
                    queued.add(row.message_id)
            rendered = time.perf_counter() - started
            floors = [smtplib_floor(controllers[0].port, prepared)]
            started = time.perf_counter()
            done = send_due(config, desk.database, NOW, limit=n)
            sent = time.perf_counter() - started
            desk.close()
        floors.append(smtplib_floor(controllers[0].port, prepared))
        floor = min(floors)  # the faster of a run before and one after maildesk's: the stricter goal
    finally:
        for controller in controllers:
            controller.stop()
    once = sum(1 for c in md_sink.ids.values() if c == 1)
    duplicates = sum(1 for c in md_sink.ids.values() if c > 1)
    exact = once == n == done.sent and set(md_sink.ids) == queued
    print(f"messages: {n:,}")
    print(f"render+queue: {rendered:.2f} s, {n / rendered:,.0f} msg/s")
    print(f"deliver (send_due): {sent:.2f} s, {n / sent:,.0f} msg/s ({done.sent} sent, {done.failed} failed)")
    print(
        f"floor (smtplib, same bytes, one connection): {floor:.2f} s, {n / floor:,.0f} msg/s "
        f"(best of {floors[0]:.2f} s before and {floors[1]:.2f} s after)"
    )
    print(
        f"total render+queue+deliver: {(rendered + sent) / floor:.2f}x the floor's time "
        f"(deliver alone {sent / floor:.2f}x; goal: within 2x)"
    )
    print(
        f"exactly once: {'yes' if exact else 'NO'} ({once:,} of {n:,} delivered once, "
        f"{duplicates} duplicated, {n - len(md_sink.ids)} missing)"
    )


if __name__ == "__main__":
    main()
