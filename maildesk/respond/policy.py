"""Who may get automatic mail from maildesk: the brakes that keep a help desk out of mail loops.

An automatic message (an acknowledgement, a notice) is never sent to our own addresses,
to mailer daemons, postmasters or no-reply addresses, to a contact whose mail bounced for
good, in answer to anything automatic (auto-replies, bounces, list mail, loops), or to an
address that already had `respond.auto_reply_limit` automatic messages within
`respond.auto_reply_window` (RFC 3834 section 2: "a responder ... MUST NOT respond more
than once" in a period; Mailman's replybot keeps a grace period the same way).
"""

from __future__ import annotations

import re
from datetime import datetime

from maildesk.config import Config
from maildesk.durations import describe_duration
from maildesk.outbox import automatic_sent_to
from maildesk.tickets.store.models import Contact

# local parts that never read their mail, or answer it automatically
_MACHINE_LOCAL = re.compile(
    r"^(mailer-daemon|postmaster|mail-daemon|maildaemon|mailerdaemon|bounces?|bounce[-+.].*|"
    r"no[-_.]?reply.*|do[-_.]?not[-_.]?reply.*|noreply.*|listserv|majordomo|.*-request|.*-owner|"
    r"owner-.*|root|abuse|daemon|nobody|auto[-_.]?(reply|responder|confirm).*)$",
    re.IGNORECASE,
)


def is_machine_address(address: str) -> bool:
    """mailer-daemon@, no-reply@ and the like: never a person to answer."""
    return bool(_MACHINE_LOCAL.match(address.strip().lower().rpartition("@")[0]))


def refusal(address: str, config: Config, now: datetime) -> str | None:
    """Why no automatic message may go to `address` now, or None when it may.

    The caller answers only normal mail: automatic mail (verdicts auto-reply, bounce, loop)
    never reaches here.
    """
    address = address.strip().lower()
    if not address or "@" not in address:
        return "no address to answer"
    if config.is_desk_address(address) or any(t.address.lower() == address for t in config.teams):
        return f"{address} is one of our own addresses"
    if config.vendor.address and address == config.vendor.address.lower():
        return f"{address} is the vendor's desk"
    local = address.rpartition("@")[0]
    if _MACHINE_LOCAL.match(local):
        return f"{address} is a machine address"
    contact = Contact.get_or_none(Contact.email == address)
    if contact is not None and contact.undeliverable:
        return f"mail to {address} bounced permanently"
    window = config.respond.auto_reply_window
    sent = automatic_sent_to(address, now - window)
    if sent >= config.respond.auto_reply_limit:
        return f"{address} already had {sent} automatic messages within {describe_duration(window)}"
    return None
