"""File intake: .eml files, folders of them (Maildir included), mbox files and stdin, as raw bytes.

Everything is read as bytes and nothing is decoded here: a message in a charset we
cannot read must still reach the spool (django-helpdesk decodes first, and one bad file
then stops its whole queue). mbox files are streamed message by message, so a 50,000
message archive never sits in memory whole.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from maildesk.errors import UserError
from maildesk.spool import Incoming

log = logging.getLogger(__name__)

# files that sit beside mail in fixture and export folders and are not mail
_NOT_MAIL = frozenset(
    {
        ".toml",
        ".json",
        ".csv",
        ".md",
        ".py",
        ".txt~",
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".pdf",
        ".zip",
        ".gz",
        ".bz2",
        ".xz",
        ".tar",
        ".html",
        ".htm",
        ".yaml",
        ".yml",
        ".lock",
        ".db",
    }
)
_MBOX_ESCAPED_FROM = re.compile(rb"^>(>*From )")
# an envelope line carries a sender and a time: "From MAILER-DAEMON Fri Jul  8 12:08:34 2011";
# requiring the time keeps an unescaped "From the start..." body line from splitting a message
_ENVELOPE = re.compile(rb"^From \S+ .*\d{1,2}:\d{2}")


def check_paths(paths: list[str]) -> None:
    """Fail early, before anything is ingested, on a path that does not exist or cannot be read."""
    for path in paths:
        if path == "-":
            continue
        p = Path(path)
        if not p.exists():
            raise UserError(f"{path}: no such file or folder")
        if not os.access(p, os.R_OK):
            raise UserError(f"{path}: permission denied")


def read_sources(paths: list[str], stdin: BinaryIO | None = None) -> Iterator[Incoming]:
    """Every message found under the given paths, in a stable order."""
    for path in paths:
        if path == "-":
            stream = stdin or sys.stdin.buffer
            yield from read_stream(stream, "stdin", "stdin")
            continue
        p = Path(path)
        if p.is_dir():
            for file in _walk(p):
                yield from read_file(file)
        else:
            yield from read_file(p)


def _walk(folder: Path) -> Iterator[Path]:
    for root, dirs, files in os.walk(folder):
        # Maildir's tmp/ holds mail still being written; hidden folders are not mail
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "tmp")
        for name in sorted(files):
            if name.startswith(".") or Path(name).suffix.lower() in _NOT_MAIL:
                continue
            yield Path(root) / name


def read_file(path: Path) -> Iterator[Incoming]:
    """One file: an mbox (detected by content, not name) yields each message, anything else one."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - an unreadable file is skipped, not fatal
    except OSError as exc:
        log.warning("skipped %s: %s", path, exc.strerror)
        return
    with handle:
        yield from read_stream(handle, "file", str(path))


def read_stream(stream: BinaryIO, source: str, ref: str) -> Iterator[Incoming]:
    head = stream.read(5)
    if head == b"From ":
        yield from _mbox(stream, head, "mbox" if source == "file" else source, ref)
    else:
        yield Incoming(head + stream.read(), source, ref)


def _mbox(stream: BinaryIO, head: bytes, source: str, ref: str) -> Iterator[Incoming]:
    """Split an mbox: a line starting "From " after a blank line (or at the start) begins a message.

    The envelope line is dropped and mboxrd quoting (">From ", ">>From ") undone one level.
    """
    lines: list[bytes] = []
    offset = 0
    position = 0
    previous_blank = True
    first = True
    pending = head
    while True:
        line = stream.readline()
        if pending:
            line, pending = pending + line, b""
        if not line:
            break
        if previous_blank and line.startswith(b"From ") and (first or _ENVELOPE.match(line)):
            if not first:
                yield Incoming(_join(lines), source, f"{ref}@{offset}")
            first = False
            lines = []
            offset = position
        else:
            lines.append(_MBOX_ESCAPED_FROM.sub(rb"\1", line))
        position += len(line)
        previous_blank = line in (b"\n", b"\r\n")
    if not first:
        yield Incoming(_join(lines), source, f"{ref}@{offset}")


def _join(lines: list[bytes]) -> bytes:
    # the blank line before the next "From " separates messages; it is not part of either
    if lines and lines[-1] in (b"\n", b"\r\n"):
        lines = lines[:-1]
    return b"".join(lines)
