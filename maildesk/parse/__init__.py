"""Parse stage: raw bytes to `ParsedMail` (MIME, charsets, HTML to text, quotes stripped)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from maildesk.errors import ParseError

if TYPE_CHECKING:
    from maildesk.pipeline import MailContext, Verdict


def run(ctx: MailContext) -> Verdict:
    """Fill `ctx.parsed`; oversized or unreadable mail goes to quarantine with its reason."""
    from maildesk.parse.pool import parse_safely
    from maildesk.pipeline import CONTINUE

    result = ctx.preparsed or parse_safely(ctx.raw, ctx.config.limits, ctx.now)
    if isinstance(result, ParseError):
        raise result
    ctx.parsed = result
    return CONTINUE
