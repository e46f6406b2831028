"""Building test messages the way a mail client would, with full control of the threading headers."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, formataddr


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
