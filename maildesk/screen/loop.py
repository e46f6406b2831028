"""Loop rule: our own mail coming back, and floods from one sender.

Our own mail back (our X-Loop marker, a Message-ID we sent, or From one of the desk's
addresses) is quarantined: storing it would put our own words on a ticket a second time,
and answering it is how two help desks end up acknowledging each other forever. A sender
who has sent more than `screen.sender_limit` messages within `screen.sender_window` is
recorded as usual but never answered automatically: a runaway script or a mail loop with a
system that rewrites everything we recognise.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from peewee import fn

from maildesk.clock import naive_utc
from maildesk.durations import describe_duration
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
    if not mail.synthetic_id and ctx.sql.query("sent-by-id", _sent, [mail.message_id]):
        reasons.append(f"Message-ID <{mail.message_id}> is one we sent")
    sender = mail.sender.email.lower() if mail.sender else ""
    if sender and config.is_desk_address(sender):
        reasons.append(f"From {sender}, one of our own addresses")
    if reasons and not ctx.released:
        return Verdict(Action.QUARANTINE, "loop", tuple(reasons))
    if sender:
        # counted by when the messages were written, not when they reached us: importing a
        # year of someone's mail at once is no flood, a responder answering itself is
        window = config.screen.sender_window
        until = naive_utc(mail.date or ctx.now)
        ((recent,),) = ctx.sql.query("recent-from", _recent, [sender, until - window, until, "in"])
        if recent >= config.screen.sender_limit:
            limit, span = config.screen.sender_limit, describe_duration(window)
            return Verdict(
                Action.RECORD_ONLY,
                "loop",
                (f"{sender} sent more than {limit} messages within {span}",),
            )
    return None


# rendered once by the worker's Statements: these run for every message
def _sent(_: int) -> Any:
    return OutboundMail.select(OutboundMail.id).where(OutboundMail.message_id == "x").limit(1)


def _recent(_: int) -> Any:
    written = fn.COALESCE(Message.date, Message.arrived_at)
    return Message.select(fn.COUNT(Message.id)).where(
        (Message.from_addr == "x")
        & (written >= datetime(2000, 1, 1))
        & (written <= datetime(2000, 1, 1))
        & (Message.direction == "in")
    )
