"""`maildesk classify`: what the screen and the triage would make of a message.

Nothing is stored: the message is parsed and screened inside a transaction that is rolled
back, so the rules see the real database (our sent Message-IDs, the sender's recent mail)
without the check leaving a trace.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from maildesk import parse, screen
from maildesk.pipeline import MailContext
from maildesk.routing import decide
from maildesk.tickets.store.fast import Statements

if TYPE_CHECKING:
    from maildesk.desk import Desk

# the verdicts the JSON contract names; a loop is automatic mail
_VERDICTS = {
    "normal": "normal",
    "spam": "spam",
    "auto-reply": "auto-reply",
    "bounce": "bounce",
    "loop": "auto-reply",
}


def classify_file(desk: Desk, raw: bytes, now: datetime) -> dict[str, Any]:
    config = desk.config
    ctx = MailContext(
        spool_id=0,
        raw=raw,
        source="classify",
        now=now,
        config=config,
        storage=config.storage.path,
        sql=Statements(desk.database),
        spam_model=desk.worker.spam_model,
    )
    with desk.database.atomic() as transaction:
        parse.run(ctx)
        verdict = screen.run(ctx)
        score = verdict.spam_score
        if score is None and ctx.spam_model is not None:
            score = ctx.spam_model.score(raw).probability  # asked for every file, whatever decided
        # the triage a new ticket from this message would get (assignment is not simulated)
        mail = ctx.parsed
        assert mail is not None
        sender = mail.sender.email if mail.sender else ""
        triage = decide(
            replace(config, assignment="none"),
            f"{mail.subject}\n{mail.new_text}",
            sender,
            desk.worker.text_model("issue-type"),
            desk.worker.text_model("team"),
        )
        transaction.rollback()
    return {
        "verdict": _VERDICTS.get(verdict.kind, verdict.kind),
        "reasons": list(verdict.reasons),
        "spam_score": None if score is None else round(score, 4),
        "issue_type": triage.issue_type,
        "type_confidence": triage.confidence,
        "priority": triage.priority,
        "priority_reasons": list(triage.priority_reasons),
        "team": triage.team or None,
    }
