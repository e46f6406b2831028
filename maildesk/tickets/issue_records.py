"""The ticket's issue record (seed 003): what the customer's mails told us, gathered as they come.

Each customer message is read by `parse.issue_record.extract`; a field the ticket lacks is
filled from it, one it has is kept (the first answer stands; a later mail rarely corrects the
time of the occurrence, and when it does a person reads it). The request for missing
information (`#needinfo` with no items) then asks only for what is still missing.
"""

from __future__ import annotations

import json

from maildesk.parse.issue_record import IssueRecord, extract
from maildesk.tickets.store.models import Ticket


def stored(ticket: Ticket) -> IssueRecord:
    try:
        data = json.loads(ticket.issue_record or "{}")
    except ValueError:
        data = {}
    if not isinstance(data, dict):
        data = {}
    first_time = data.get("first_time")
    return IssueRecord(
        occurred=str(data.get("occurred") or ""),
        phone=str(data.get("phone") or ""),
        location=str(data.get("location") or ""),
        resource=str(data.get("resource") or ""),
        errors=tuple(str(e) for e in data.get("errors") or ())[:10],
        first_time=first_time if isinstance(first_time, bool) else None,
    )


def gather(ticket: Ticket, subject: str, text: str, found: IssueRecord | None = None) -> list[str]:
    """Fill the ticket's record from a customer message (or what the parser pool read of it);
    returns the fields newly learned."""
    have = stored(ticket)
    found = found if found is not None else extract(subject, text)
    learned = []
    merged = have.as_dict()
    for name, value in found.as_dict().items():
        if merged.get(name) in ("", None, []) and value not in ("", None, []):
            merged[name] = value
            learned.append(name)
    if learned:
        ticket.issue_record = json.dumps(merged, ensure_ascii=False)
    return learned
