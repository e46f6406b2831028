"""Peak memory while importing big mbox files: it must stay flat as the archive grows.

    python3 bench/mbox_memory.py [--sizes 5000 50000]

Builds mbox files of N messages from the SpamAssassin corpus (each copy gets its own
Message-ID, so nothing is deduplicated away), runs `maildesk ingest` on each in a fresh
folder, and samples the peak resident memory (VmHWM) of the maildesk process and of its
parser processes. As a baseline from the same run it reports what reading the whole mbox
into memory at once costs (the naive import this design avoids).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT.parent / "shared" / "corpora" / "spamassassin-2002"
_MID = re.compile(rb"^Message-I[Dd]:.*$", re.MULTILINE | re.IGNORECASE)


def build_mbox(path: Path, count: int) -> int:
    sources = [p.read_bytes() for p in sorted(CORPUS.rglob("*")) if p.is_file()]
    with open(path, "wb") as out:
        for i in range(count):
            raw = sources[i % len(sources)]
            if raw.startswith(b"From "):
                raw = raw.split(b"\n", 1)[1]
            head, _, body = raw.partition(b"\n\n")
            head = _MID.sub(b"", head).rstrip(b"\n") + f"\nMessage-ID: <bench-{i}@mbox.example>".encode()
            body = re.sub(rb"^(>*From )", rb">\1", body, flags=re.MULTILINE)
            out.write(b"From bench@mbox.example Mon Nov  2 09:00:00 2026\n" + head + b"\n\n" + body + b"\n\n")
    return path.stat().st_size


def _hwm_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                out.append(child)
                todo.append(child)
    return out


def ingest(mbox: Path, folder: Path) -> tuple[float, int, int, dict]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "maildesk.cli", "ingest", "--json", str(mbox)],
        cwd=folder,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    main_peak = child_peak = 0
    while proc.poll() is None:
        main_peak = max(main_peak, _hwm_kb(proc.pid))
        for child in _descendants(proc.pid):
            child_peak = max(child_peak, _hwm_kb(child))
        time.sleep(0.1)
    out, err = proc.communicate()
    if proc.returncode:
        raise SystemExit(err.decode())
    return time.perf_counter() - started, main_peak, child_peak, json.loads(out)


def whole_file_baseline(mbox: Path) -> int:
    """Peak RSS of a process that reads the mbox into memory and splits it (the naive import)."""
    code = (
        "import sys; data = open(sys.argv[1], 'rb').read(); parts = data.split(b'\\nFrom '); "
        "print(len(parts))"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(mbox)], stdout=subprocess.PIPE)
    peak = 0
    while proc.poll() is None:
        peak = max(peak, _hwm_kb(proc.pid))
        time.sleep(0.02)
    proc.communicate()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[5000, 50000])
    args = parser.parse_args()
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            mbox = folder / f"bench-{size}.mbox"
            nbytes = build_mbox(mbox, size)
            seconds, main_kb, child_kb, summary = ingest(mbox, folder)
            naive_kb = whole_file_baseline(mbox)
            print(
                f"{size:>6} messages ({nbytes / 1e6:.0f} MB mbox): {seconds:.1f}s "
                f"({size / seconds:.0f} msg/s), peak RSS maildesk {main_kb / 1024:.0f} MB, "
                f"parser process {child_kb / 1024:.0f} MB; reading the file whole: "
                f"{naive_kb / 1024:.0f} MB; stored {summary['new_tickets'] + summary['replies']}, "
                f"quarantined {summary['quarantined']}"
            )


if __name__ == "__main__":
    main()
