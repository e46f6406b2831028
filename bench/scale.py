"""Workers on one PostgreSQL: throughput of 1, 2 and 4 worker processes on the same queue.

    python3 bench/scale.py [--messages 2000] [--workers 1 2 4]

A throwaway PostgreSQL cluster (Debian's postgresql, as the tests start it) gets a fresh
database per run; N messages (conversations of a first message and a reply, interleaved in
the spool) are spooled, then k `process_pending` worker processes start at once and share
the queue (FOR UPDATE SKIP LOCKED claims, a commit per message). Printed per k: seconds,
messages per second, and the ratio to one worker in the same run; and the check that every
message was stored once and every conversation is one ticket. On a 2-core machine the
workers compete with PostgreSQL for the cores, so read the ratios with that in mind.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg2  # noqa: E402

from tests.conftest import postgres_server  # noqa: E402
from tests.test_scale import CONFIG, WORKER, rows, spool  # noqa: E402


def run(server: dict, n: int, workers: int) -> float:
    name = f"bench_{workers}_{time.monotonic_ns()}"
    admin = psycopg2.connect(host="127.0.0.1", port=server["port"], user="postgres", dbname="postgres")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql://postgres@127.0.0.1:{server['port']}/{name}"
    try:
        with tempfile.TemporaryDirectory() as folder:
            config = Path(folder) / "maildesk.toml"
            config.write_text(CONFIG.format(root=folder))
            total = spool(url, config, conversations=n // 2, replies=1)
            env = dict(os.environ, PYTHONPATH=str(ROOT))
            started = time.perf_counter()
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", WORKER, str(config), url, "50"],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                for _ in range(workers)
            ]
            for proc in procs:
                _, err = proc.communicate(timeout=3600)
                if proc.returncode:
                    raise SystemExit(err.decode()[-2000:])
            seconds = time.perf_counter() - started
            stored = rows(
                url, "SELECT count(*), count(DISTINCT inbound_id) FROM message WHERE direction = 'in'"
            )
            split = rows(
                url,
                "SELECT split_part(message_id, '.', 1) FROM message WHERE direction = 'in' "
                "GROUP BY 1 HAVING count(DISTINCT ticket_id) > 1",
            )
            ok = stored == [(total, total)] and not split
            rate = total / seconds
            verdict = "yes" if ok else "NO"
            print(f"{workers} worker(s): {total:,} messages in {seconds:6.2f} s = {rate:6.0f} msg/s"
                  f"  (each once, threads whole: {verdict})")  # fmt: skip
            return total / seconds
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    args = parser.parse_args()
    servers = postgres_server.__wrapped__()  # type: ignore[attr-defined]
    server = next(servers)
    try:
        rates = {k: run(server, args.messages, k) for k in args.workers}
    finally:
        servers.close()
    base = rates[min(rates)]
    for k, rate in rates.items():
        print(f"  {k} worker(s): {rate / base:4.2f}x one worker's throughput")
    print(f"cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
