"""Loop rule: our own mail coming back, and floods from one sender.

Our own mail back (our X-Loop marker, a Message-ID we sent, or From one of the desk's
addresses) is quarantined: storing it would put our own words on a ticket a second time,
and answering it is how two help desks end up acknowledging each other forever. A sender
who has sent more than `screen.sender_limit` messages within `screen.sender_window` is
recorded as usual but never answered automatically: a runaway script or a mail loop with a
system that rewrites everything we recognise.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from maildesk.clock import naive_utc
from maildesk.tickets.store.models import Message, OutboundMail

if TYPE_CHECKING:
    from maildesk.pipeline import MailContext, Verdict


def check(ctx: MailContext) -> Verdict | None:
    from maildesk.pipeline import Action, Verdict

    mail, config = ctx.parsed, ctx.config
    assert mail is not None
    ours = config.desk_addresses
    loops = [value.strip().strip("<>").lower() for value in mail.headers.get("x-loop", ())]
    reasons = [f"X-Loop: {value} is our own marker" for value in loops if value in ours]
    if not mail.synthetic_id and OutboundMail.get_or_none(OutboundMail.message_id == mail.message_id):
        reasons.append(f"Message-ID <{mail.message_id}> is one we sent")
    sender = mail.sender.email.lower() if mail.sender else ""
    if sender and config.is_desk_address(sender):
        reasons.append(f"From {sender}, one of our own addresses")
    if reasons and not ctx.released:
        return Verdict(Action.QUARANTINE, "loop", tuple(reasons))
    if sender:
        window = config.screen.sender_window
        since = naive_utc(ctx.now) - window
        recent = (
            Message.select()
            .where(
                (Message.from_addr == sender) & (Message.arrived_at >= since) & (Message.direction == "in")
            )
            .limit(config.screen.sender_limit + 1)
            .count()
        )
        if recent >= config.screen.sender_limit:
            return Verdict(
                Action.RECORD_ONLY,
                "loop",
                (f"{sender} sent more than {config.screen.sender_limit} messages within {_human(window)}",),
            )
    return None


def _human(window: timedelta) -> str:
    hours = window.total_seconds() / 3600
    return f"{hours:g} h" if hours >= 1 else f"{window.total_seconds() / 60:g} min"
