"""Is this mail an agent's, and may it act? The signed reply address decides, not the From.

A From header costs nothing to forge, so an agent's mail is trusted only when it was sent
to a signed reply address (respond/addresses.py) that verifies, the token was given to the
agent the mail is from, that agent is still configured, and our MTA recorded no failed
authentication for the agent's domain. Anything less is kept as customer mail: it runs no
command and is relayed to nobody, and the agent it claims to be from is told.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from maildesk.agents.commands import INTERNAL, commands_in, without_commands
from maildesk.config import AgentConfig, Config
from maildesk.respond.addresses import ReplyToken, verify
from maildesk.screen.spam import authentication_failures
from maildesk.tickets.store.models import Agent

if TYPE_CHECKING:
    from maildesk.parse.message import ParsedMail

# where a signed address can show: the headers a reply client writes, and the ones an MTA
# adds with the envelope recipient when the desk is only Bcc'd or mail is forwarded
_RECIPIENT_HEADERS = ("delivered-to", "x-original-to", "envelope-to")


@dataclass(frozen=True)
class AgentMail:
    """Who an agent-looking message is from and whether it may act."""

    agent: AgentConfig  # the agent the mail proves, or claims, to be from
    agent_id: int | None
    token: ReplyToken | None
    trusted: bool
    problem: str = ""  # why it is not trusted, for the event and the agent's notice
    # trusted mail only: to the comment address or with `#internal`, it stays on the ticket
    internal: bool = False
    text: str = ""  # trusted mail only: the new text without its command lines


def signed_tokens(mail: ParsedMail, config: Config, secret: str) -> tuple[list[ReplyToken], bool]:
    """The verifying tokens among the recipients, and whether any token-like address failed."""
    addresses = [a.email for a in mail.participants]
    for name in _RECIPIENT_HEADERS:
        addresses.extend(v.strip() for v in mail.headers.get(name, ()))
    found: list[ReplyToken] = []
    failed = False
    for address in addresses:
        local = address.rpartition("@")[0]
        if "+" not in local or not config.is_desk_address(address):
            continue
        token = verify(secret, address)
        if token is None:
            failed = True
        elif token not in found:
            found.append(token)
    return found, failed


def identify(mail: ParsedMail, config: Config, secret: str) -> AgentMail | None:
    """None for mail with nothing of an agent about it: no agent From and no signed address."""
    if mail.sender is None:
        return None
    sender = mail.sender.email.lower()
    tokens, failed = signed_tokens(mail, config, secret)
    prefix = config.desk.ticket_prefix.lower()
    tokens = [t for t in tokens if t.prefix == prefix]
    claimed = config.agent(sender)
    if not tokens:
        if claimed is None:
            return None
        why = "the signed reply address does not verify" if failed else "no signed reply address"
        return AgentMail(claimed, None, None, False, f"{why}: it was not sent by replying to a notification")
    token = tokens[0]
    row = Agent.get_or_none(Agent.id == token.agent_id)
    owner = config.agent(row.address) if row is not None else None
    if owner is None or row is None or not row.active:
        if claimed is None:
            return None
        return AgentMail(claimed, None, token, False, "the signed reply address names no current agent")
    if sender != owner.address.lower():
        return AgentMail(
            owner,
            row.id,
            token,
            False,
            f"the signed reply address given to {owner.address} was used by {sender}",
        )
    forged = authentication_failures(mail, sender.rpartition("@")[2])
    if forged:
        return AgentMail(owner, row.id, token, False, "; ".join(forged))
    found = commands_in(mail.new_text)
    internal = token.purpose == "comment" or any(name in INTERNAL for name, _ in found)
    return AgentMail(owner, row.id, token, True, internal=internal, text=without_commands(mail.new_text))


@dataclass(frozen=True)
class VendorMail:
    """Mail from the vendor's domains: the ticket its signed address names, if it carries one."""

    ticket_number: int | None


def is_vendor(address: str, config: Config) -> bool:
    domain = address.rpartition("@")[2].lower()
    return bool(config.vendor.address) and any(
        domain == d or domain.endswith("." + d) for d in config.vendor.domains
    )


def vendor_token(mail: ParsedMail, config: Config, secret: str) -> VendorMail | None:
    """The ticket named by a signed address given to the vendor (agent number 0)."""
    tokens, _ = signed_tokens(mail, config, secret)
    prefix = config.desk.ticket_prefix.lower()
    found = next((t for t in tokens if t.agent_id == 0 and t.prefix == prefix), None)
    return VendorMail(found.ticket_number) if found is not None else None
