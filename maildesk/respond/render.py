"""Rendering outgoing mail: jinja2 templates into a complete, safely built message.

Templates live in `maildesk/templates/` and may be overridden by files of the same name in
a `templates/` folder next to the config. They render with StrictUndefined (a missing
variable fails a test, not a customer) and HTML templates autoescape, so a customer's
subject with markup in it comes back as text; text a person wrote (an agent's reply) goes
through the `paragraphs` filter, which escapes it before it adds <p> and <br>. Headers are
written by `wire.compose`, which takes printable ASCII only and leaves anything else to
the stdlib's `email.policy.default`, which refuses CR or LF in a header value: text from a
message can never add a header of its own.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PackageLoader,
    StrictUndefined,
    TemplateNotFound,
    select_autoescape,
)
from markupsafe import Markup, escape

from maildesk.config import Config
from maildesk.respond.wire import HeaderValue, compose

_SPACE = re.compile(r"\s+")
_BLANK_LINE = re.compile(r"\n[ \t]*\n\s*")


_ENVIRONMENTS: dict[Path | None, Environment] = {}


def environment_for(config: Config) -> Environment:
    """The environment for this config's templates folder, built once per process."""
    env = _ENVIRONMENTS.get(config.source)
    if env is None:
        env = _ENVIRONMENTS[config.source] = environment(config)
    return env


def environment(config: Config) -> Environment:
    loaders: list[Any] = []
    if config.source is not None and (config.source.parent / "templates").is_dir():
        loaders.append(FileSystemLoader(str(config.source.parent / "templates")))
    loaders.append(PackageLoader("maildesk", "templates"))
    env = Environment(
        loader=ChoiceLoader(loaders),
        autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["paragraphs"] = paragraphs
    return env


def paragraphs(text: str) -> Markup:
    """Plain text as HTML: escaped first, then blank lines become paragraphs and newlines <br>.

    For text a person wrote (an agent's reply, a note): whatever markup it holds shows as text.
    """
    escaped = str(escape(text)).replace("\r\n", "\n").replace("\r", "\n").strip()
    parts = [part for part in _BLANK_LINE.split(escaped) if part.strip()]
    return Markup("\n".join("<p>" + "<br>\n".join(part.rstrip().split("\n")) + "</p>" for part in parts))


def one_line(text: str, limit: int = 200) -> str:
    """Header-safe text: whitespace (CR and LF included) collapsed, cut at `limit` characters."""
    return _SPACE.sub(" ", text).strip()[:limit]


def new_message_id(config: Config, now: datetime, ref: str = "") -> str:
    """A Message-ID on the desk's domain that names the ticket, e.g. 20261103100255.1439d4.md-1388@..."""
    domain = config.desk.addresses[0].rpartition("@")[2]
    tail = f".{ref.lower()}" if ref else ""
    return f"{now:%Y%m%d%H%M%S}.{secrets.token_hex(3)}{tail}@{domain}"


def build(
    config: Config,
    env: Environment,
    template: str,
    context: Mapping[str, Any],
    *,
    to: Sequence[tuple[str, str]],
    subject: str,
    now: datetime,
    ref: str = "",
    in_reply_to: str = "",
    references: Sequence[str] = (),
    automatic: bool = False,
    auto_submitted: str = "auto-replied",
    from_name: str = "",
    reply_to: str = "",
    cc: Sequence[tuple[str, str]] = (),
) -> EmailMessage:
    """Render `template`.txt (and `template`.html when it exists) into a message from the desk.

    `from_name` replaces the desk's name as the sender's display name ("Alice via Support");
    the address is always the desk's, so replies come back to it. `reply_to` is where an
    answer should go (a signed agent address, for the team's notifications).
    """
    desk_name = one_line(from_name or config.desk.name)
    headers: list[tuple[str, HeaderValue]] = [
        ("From", (desk_name, config.desk.addresses[0])),
        ("To", [(one_line(name), address) for name, address in to]),
    ]
    if cc:
        headers.append(("Cc", [(one_line(name), address) for name, address in cc]))
    if reply_to:
        headers.append(("Reply-To", (desk_name, reply_to)))
    headers += [
        ("Subject", one_line(subject, 250)),
        # naive times in maildesk are UTC; an aware one says so ("+0000", not "-0000": unknown zone)
        ("Date", format_datetime(now if now.tzinfo else now.replace(tzinfo=UTC))),
        ("Message-ID", f"<{new_message_id(config, now, ref)}>"),
    ]
    if in_reply_to:
        headers.append(("In-Reply-To", f"<{in_reply_to}>"))
    refs = [r for r in dict.fromkeys([*references, in_reply_to]) if r][-20:]
    if refs:
        headers.append(("References", " ".join(f"<{r}>" for r in refs)))
    if automatic:
        # RFC 3834: automatic mail says so ("auto-replied" for answers, "auto-generated" for
        # notices), and asks other responders not to answer it
        headers += [
            ("Auto-Submitted", auto_submitted),
            ("X-Auto-Response-Suppress", "All"),
            ("Precedence", "auto_reply" if auto_submitted == "auto-replied" else "bulk"),
        ]
    headers.append(("X-Loop", config.desk.addresses[0]))
    text = env.get_template(f"{template}.txt").render(context)
    try:
        html = env.get_template(f"{template}.html")  # jinja2 caches it, and the miss, per environment
    except TemplateNotFound:
        html = None
    # plain ASCII headers are written directly, anything else by the stdlib's email package, which
    # refuses CR or LF in a header value; the message keeps its bytes for the outbox
    return compose(headers, text, html.render(context) if html is not None else None)


def templates_folder() -> Path:
    return Path(__file__).resolve().parent.parent / "templates"
