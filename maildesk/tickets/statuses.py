"""The statuses of a ticket, from the procedures (seeds 001 and 002), named once.

new: nobody has acted yet; open: someone works on it; awaiting-support: the customer wrote
and the team owes the next move; awaiting-customer: we asked or answered and wait for them;
resolved: we believe it solved and wait for a confirmation; closed. Spam is a status too,
so a correction (#notspam) can take it back. The vendor's part (dispatched, returned) is the
ticket's `vendor` field, beside its status, since a dispatched ticket is still open.
"""

from __future__ import annotations

from typing import Final

NEW: Final = "new"
OPEN: Final = "open"
AWAITING_SUPPORT: Final = "awaiting-support"
AWAITING_CUSTOMER: Final = "awaiting-customer"
RESOLVED: Final = "resolved"
CLOSED: Final = "closed"
SPAM: Final = "spam"

STATUSES: Final = (NEW, OPEN, AWAITING_SUPPORT, AWAITING_CUSTOMER, RESOLVED, CLOSED)
OPEN_STATUSES: Final = (NEW, OPEN, AWAITING_SUPPORT, AWAITING_CUSTOMER)  # not resolved, closed or spam
OWED: Final = (NEW, OPEN, AWAITING_SUPPORT)  # the team owes the customer the next move
ALIASES: Final = {
    "pending": AWAITING_CUSTOMER,
    "waiting": AWAITING_CUSTOMER,
    "awaiting": AWAITING_CUSTOMER,
    "customer": AWAITING_CUSTOMER,
    "support": AWAITING_SUPPORT,
    "solved": RESOLVED,
    "reopen": OPEN,
}
