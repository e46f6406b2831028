"""Building test messages the way a mail client would, with full control of the threading headers."""

from __future__ import annotations

import email
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import default
from email.utils import format_datetime, formataddr
from pathlib import Path


def make_mail(
    sender: str = "anna@customer.example",
    subject: str = "Printer on floor 2 is jammed",
    body: str = "Hello,\n\nthe printer on floor 2 is jammed again.\n\nAnna",
    *,
    name: str = "",
    to: str = "support@helpdesk.example",
    cc: str = "",
    message_id: str | None = "q1@customer.example",
    in_reply_to: str | None = None,
    references: list[str] | None = None,
    date: datetime | None = None,
    html: str | None = None,
    attachments: list[tuple[str, bytes, str]] = (),
) -> bytes:
    msg = EmailMessage()
    msg["From"] = formataddr((name, sender)) if name else sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = format_datetime(date or datetime(2026, 11, 2, 9, 0, tzinfo=UTC))
    if message_id:
        msg["Message-ID"] = f"<{message_id}>"
    if in_reply_to:
        msg["In-Reply-To"] = f"<{in_reply_to}>"
    if references:
        msg["References"] = " ".join(f"<{r}>" for r in references)
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, data, ctype in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return bytes(msg)


def reply_to(
    notification: EmailMessage,
    sender: str,
    body: str,
    *,
    message_id: str,
    headers: dict[str, str] | None = None,
    to: str | None = None,
) -> bytes:
    """An agent's answer to a notification as a mail client writes it: to the Reply-To, threaded,
    with the notification quoted below the new text."""
    original = notification.get_body(("plain",))
    quoted = "\n".join(f"> {line}" for line in original.get_content().splitlines()) if original else ""
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to or str(notification["Reply-To"] or notification["From"])
    subject = str(notification["Subject"])
    msg["Subject"] = subject if subject.lower().startswith("re:") else f"Re: {subject}"
    msg["Date"] = format_datetime(datetime(2026, 11, 2, 10, 0, tzinfo=UTC))
    msg["Message-ID"] = f"<{message_id}>"
    msg["In-Reply-To"] = str(notification["Message-ID"])
    msg["References"] = " ".join(
        filter(None, [str(notification["References"] or ""), str(notification["Message-ID"])])
    )
    for key, value in (headers or {}).items():
        msg[key] = value
    msg.set_content(f"{body}\n\nOn Mon, 2 Nov 2026, Example Support wrote:\n{quoted}\n")
    return bytes(msg)


def sent_mail(folder: Path) -> list[EmailMessage]:
    """Every message a maildir relay holds, oldest first."""
    new = folder / "new"
    if not new.is_dir():
        return []
    return [
        email.message_from_bytes(p.read_bytes(), policy=default)  # type: ignore[misc]
        for p in sorted(new.iterdir(), key=lambda p: p.name)
    ]


def to_agent(messages: list[EmailMessage], agent: str, subject_part: str = "") -> EmailMessage:
    """The latest notification an agent was sent (about a subject)."""
    found = [
        m for m in messages if agent in str(m["To"]) and subject_part in str(m["Subject"]) and m["Reply-To"]
    ]
    assert found, (
        f"no notification to {agent} among {[str(m['To']) + ' ' + str(m['Subject']) for m in messages]}"
    )
    return found[-1]
