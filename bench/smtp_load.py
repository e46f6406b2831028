"""SMTP intake under load: `maildesk serve` against a bare aiosmtpd sink, measured in one run.

    python3 bench/smtp_load.py [--clients 20] [--messages 5000]

Each of N concurrent smtplib clients holds one connection and sends its share of small
(~700 byte) messages. Reported: accepted messages per second and p50/p99 time from the
start of a message's transaction to its 250. The floor is a bare aiosmtpd handler in its own
process that writes each message to its own file with fsync (in asyncio.to_thread) before
answering 250, the figure in ../shared/corpora/BASELINES.md. maildesk runs with its default
SQLite database and its worker processing the mail into tickets at the same time.
"""

from __future__ import annotations

import argparse
import os
import smtplib
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.smtp_server import ServeProcess, free_port  # noqa: E402

SINK = textwrap.dedent("""
    import asyncio, os, sys, uuid
    from aiosmtpd.controller import Controller

    folder = sys.argv[2]

    def write(data):
        path = os.path.join(folder, uuid.uuid4().hex)
        with open(path, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            await asyncio.to_thread(write, envelope.original_content)
            return "250 OK"

    controller = Controller(Sink(), hostname="127.0.0.1", port=int(sys.argv[1]))
    controller.start()
    print("ready", flush=True)
    sys.stdin.read()
    controller.stop()
""")


def message(i: int) -> bytes:
    body = (
        "Hello, the VPN client on my laptop keeps dropping the connection every few minutes "
        f"since this morning. Could you have a look? Thanks, Customer {i}\r\n"
    )
    return (
        f"From: customer{i % 500}@shop.example\r\nTo: support@helpdesk.example\r\n"
        f"Subject: VPN drops {i}\r\nDate: Mon, 02 Nov 2026 09:00:00 +0000\r\n"
        f"Message-ID: <load-{i}-{time.monotonic_ns()}@shop.example>\r\nMIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n" + body * 3
    ).encode()


def load(port: int, clients: int, total: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = total // clients

    def run(offset: int) -> None:
        own: list[float] = []
        with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
            client.ehlo()
            for i in range(per_client):
                raw = message(offset * per_client + i)
                started = time.perf_counter()
                client.sendmail("customer@shop.example", ["support@helpdesk.example"], raw)
                own.append(time.perf_counter() - started)
        with lock:
            latencies.extend(own)

    threads = [threading.Thread(target=run, args=(c,)) for c in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started, latencies


def report(name: str, seconds: float, latencies: list[float]) -> float:
    rate = len(latencies) / seconds
    quantiles = statistics.quantiles(latencies, n=100)
    print(
        f"{name:>9}: {len(latencies)} accepted in {seconds:.2f}s = {rate:.0f} msg/s, "
        f"p50 {quantiles[49] * 1000:.1f} ms, p99 {quantiles[98] * 1000:.1f} ms to 250"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--messages", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        sink = subprocess.Popen(
            [sys.executable, "-c", SINK, str(port), tmp], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert sink.stdout is not None
        sink.stdout.readline()
        floor_seconds, floor_latencies = load(port, args.clients, args.messages)
        sink.communicate(b"")
    with tempfile.TemporaryDirectory() as tmp:
        server = ServeProcess(Path(tmp), role=os.environ.get("BENCH_ROLE", "all"))
        server.start()
        md_seconds, md_latencies = load(server.port, args.clients, args.messages)
        server.terminate()
    floor = report("floor", floor_seconds, floor_latencies)
    rate = report("maildesk", md_seconds, md_latencies)
    print(
        f"maildesk / floor throughput: {rate / floor:.2f} (goal: within 3x, i.e. at least 0.33); "
        f"{os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
