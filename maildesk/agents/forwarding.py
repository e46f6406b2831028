"""Forwarded customer mail (seed 002): the customer, not the colleague who forwarded it, is the requester.

When someone of the desk's own organisation (an agent, or an address in desk.staff_domains)
forwards a customer's message to the support address, the ticket belongs to the original
sender: this stage puts the forwarded message's sender, subject and words in the parsed
mail's place, so every later stage (threading, the requester, triage, the acknowledgement,
the agents' notice) sees the customer's message. The forwarder joins as a participant and
the forward is an event with their note. A forward of automatic mail (a bounce, an
out-of-office answer) or of another colleague's mail stays as it came.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from maildesk.parse.forwarded import find_forwarded
from maildesk.respond.policy import is_machine_address

if TYPE_CHECKING:
    from maildesk.pipeline import MailContext, Verdict


def run(ctx: MailContext) -> Verdict:
    from maildesk.pipeline import CONTINUE

    mail = ctx.parsed
    if mail is None or mail.sender is None or ctx.verdict.kind != "normal" or ctx.bounce is not None:
        return CONTINUE
    if ctx.vendor_mail is not None or (ctx.agent_mail is not None and ctx.agent_mail.trusted):
        return CONTINUE  # an agent answering a ticket, or the vendor: not a forward to open one
    if not ctx.config.is_staff(mail.sender.email):
        return CONTINUE
    found = find_forwarded(mail, ctx.raw)
    if found is None:
        return CONTINUE
    original = found.sender.email
    if ctx.config.is_staff(original) or ctx.config.is_desk_address(original) or is_machine_address(original):
        return CONTINUE
    ctx.forwarded_by = mail.sender
    ctx.forward_note = found.note
    ctx.agent_mail = None  # a colleague's forward is the customer's mail, not an unverified agent reply
    ctx.parsed = replace(
        mail,
        sender=found.sender,
        subject=found.subject or mail.subject,
        new_text=found.text,
        cc=(*mail.cc, mail.sender),  # the forwarder stays on the ticket, as a participant
    )
    return CONTINUE
