"""Signed reply addresses: `support+<token>@domain`, so an agent's reply proves which ticket it is for.

The token names the ticket, the agent it was given to, and what a reply to it means (`r`: a
reply for the customer; `c`: an internal comment), and carries an HMAC-SHA256 over those with
the desk's secret. A reply is trusted as the agent's only when the token verifies and the mail
comes from that agent's own address: a customer who forges the agent's From has no token, and a
token copied from one ticket or agent does not verify for another. Tokens are lower-case
letters, digits, dots and a hyphen (`md-1042.a3.r.<mac>`), which every MTA passes through and
some lower-case anyway.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Final

PURPOSES: Final = {"r": "reply", "c": "comment"}
_MAC_LENGTH = 16  # base32 characters: 80 bits
_TOKEN = re.compile(r"^([a-z][a-z0-9]{0,15})-(\d{1,12})\.a(\d{1,9})\.([rc])\.([a-z2-7]{16})$")


@dataclass(frozen=True)
class ReplyToken:
    prefix: str  # the ticket prefix, lower-cased ("md")
    ticket_number: int
    agent_id: int
    purpose: str  # "reply" or "comment"


def _mac(secret: str, body: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), body.encode("ascii"), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii").lower()[:_MAC_LENGTH]


def sign(secret: str, prefix: str, ticket_number: int, agent_id: int, purpose: str = "reply") -> str:
    """The token for one ticket, agent and purpose."""
    if not secret:
        raise ValueError("an empty secret would make every token guessable")
    code = next(k for k, v in PURPOSES.items() if v == purpose)
    body = f"{prefix.lower()}-{ticket_number}.a{agent_id}.{code}"
    return f"{body}.{_mac(secret, body)}"


def reply_address(desk_address: str, token: str) -> str:
    """`support+<token>@domain` for the desk's address `support@domain`."""
    local, _, domain = desk_address.partition("@")
    return f"{local.split('+', 1)[0]}+{token}@{domain}"


def verify(secret: str, address: str) -> ReplyToken | None:
    """The token in a `+token` address if its signature holds, else None (never raises)."""
    if not secret:
        return None
    local = address.strip().strip("<>").rpartition("@")[0]
    if "+" not in local:
        return None
    token = local.split("+", 1)[1].lower()
    found = _TOKEN.match(token)
    if not found:
        return None
    prefix, number, agent, code, mac = found.groups()
    body = f"{prefix}-{number}.a{agent}.{code}"
    if not hmac.compare_digest(mac, _mac(secret, body)):
        return None
    return ReplyToken(prefix, int(number), int(agent), PURPOSES[code])
