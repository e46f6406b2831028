"""Outbox throughput: queued replies rendered and delivered to an SMTP sink, against a bare smtplib floor.

    python3 bench/outbox.py [--messages 10000]

maildesk renders N acknowledgements from the shipped templates into the outbox (one
transaction, as the pipeline would over many messages), then `send_due` delivers them over
SMTP to an aiosmtpd sink on loopback, with a row update per message. The floor, in the same
run, is smtplib sending the same prepared bytes over one connection to the same kind of sink.
Both sinks count what they receive, so "every message delivered exactly once" is checked.
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
from tests.smtp_server import free_port  # noqa: E402

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Counting:
    def __init__(self) -> None:
        self.ids: collections.Counter[str] = collections.Counter()

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        for line in envelope.original_content.split(b"\r\n"):  # type: ignore[attr-defined]
            if line.lower().startswith(b"message-id:"):
                self.ids[line.split(b":", 1)[1].strip().decode()] += 1
                break
        return "250 OK"


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
            started = time.perf_counter()
            prepared = []
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
                                  automatic=True, now=NOW)  # fmt: skip
                    prepared.append((row.recipient, bytes(row.data)))
            rendered = time.perf_counter() - started
            started = time.perf_counter()
            done = send_due(config, desk.database, NOW, limit=n)
            sent = time.perf_counter() - started
            desk.close()
        started = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", controllers[0].port) as client:
            for recipient, data in prepared:
                client.sendmail("support@helpdesk.example", [recipient], data)
        floor = time.perf_counter() - started
    finally:
        for controller in controllers:
            controller.stop()
    once = sum(1 for c in md_sink.ids.values() if c == 1)
    print(f"{n:,} replies: rendered and queued in {rendered:.1f} s ({n / rendered:,.0f} msg/s)")
    print(
        f"  maildesk send_due: {sent:.1f} s ({n / sent:,.0f} msg/s), {done.sent} sent, {done.failed} failed"
    )
    print(f"  floor (smtplib, same bytes, one connection): {floor:.1f} s ({n / floor:,.0f} msg/s)")
    print(f"  delivery alone: {sent / floor:.2f}x the floor's time; render+queue+deliver: "
          f"{(rendered + sent) / floor:.2f}x (goal: within 2x)")  # fmt: skip
    print(
        f"  delivered exactly once: {once:,} of {n:,}; duplicates: {sum(c > 1 for c in md_sink.ids.values())}"
    )


if __name__ == "__main__":
    main()
