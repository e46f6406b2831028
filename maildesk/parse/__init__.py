"""Parse stage: raw bytes to `ParsedMail` (MIME, charsets, HTML to text, quotes stripped)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maildesk.errors import ParseError

if TYPE_CHECKING:
    from maildesk.pipeline import MailContext, Verdict


def run(ctx: MailContext) -> Verdict:
    """Fill `ctx.parsed`; oversized or unreadable mail goes to quarantine with its reason."""
    from maildesk.parse.message import parse
    from maildesk.pipeline import CONTINUE

    limit = ctx.config.limits.message
    if len(ctx.raw) > limit:
        raise ParseError(f"message is {len(ctx.raw)} bytes, over limits.message ({limit})")
    ctx.parsed = parse(ctx.raw, ctx.config.limits, ctx.now)
    return CONTINUE
