"""Logging set-up, done once by the CLI: every other module only calls logging.getLogger(__name__)."""

from __future__ import annotations

import logging
import sys


class _ContextFormatter(logging.Formatter):
    """Appends the message context (spool id, Message-ID, ticket) so lines can be grepped."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = [
            f"{key}={getattr(record, key)}"
            for key in ("spool_id", "message_id", "ticket", "stage")
            if getattr(record, key, "")
        ]
        return f"{line} [{' '.join(context)}]" if context else line


def setup_logging(verbosity: int = 0, default: int = logging.WARNING) -> None:
    level = default - 10 * verbosity
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(level, logging.DEBUG))
    # mail-parser warns about every odd MIME part; our defects list records them once
    logging.getLogger("mailparser").setLevel(logging.ERROR)
    logging.getLogger("peewee").setLevel(logging.WARNING)
    # aiosmtpd logs every connection at INFO; our own lines say what matters per message
    logging.getLogger("mail.log").setLevel(logging.WARNING)
