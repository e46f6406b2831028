"""The SLA report as one self-contained HTML page, and its figures inline for the lead's digest mail.

The page needs nothing from outside: CSS is inline and each figure is a `data:image/png`
URI, so it can be mailed, archived or opened offline; its Content-Security-Policy loads
nothing else and runs no script. The template (`templates/reports/sla_report.html`, which a
desk may override like the mail templates) autoescapes, so a customer's subject with markup
in it shows as text.
"""

from __future__ import annotations

import base64
import os
import struct
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from zoneinfo import ZoneInfo

from maildesk.clock import naive_utc
from maildesk.config import Config
from maildesk.reports.figures import (
    TABLE_COLUMNS,
    Figure,
    Row,
    load_sla_data,
    sla_figures,
    sla_tables,
)
from maildesk.respond.render import environment_for

TITLE: Final = "maildesk SLA report"
TEMPLATE: Final = "reports/sla_report.html"
CID_DOMAIN: Final = "maildesk"
CAPTIONS: Final = {
    "summary": "Summary",
    "unanswered": "Unanswered open tickets, oldest first",
    "unattended": "Open tickets without an update for too long, longest first",
    "oldest_per_team": "The oldest open ticket of each team",
}


def render_sla_page(config: Config, now: datetime) -> str:
    """The whole report as one HTML document (the models must be bound to the desk's database)."""
    data = load_sla_data(config, now)
    figures = sla_figures(config, now, data=data)
    tables = sla_tables(config, now, data=data)
    summary = tables["summary"][0]
    notes: dict[str, str] = {}
    for name in ("unanswered", "unattended"):  # cut to TABLE_ROWS: say how many there are
        total = summary[name]
        if isinstance(total, int) and total > len(tables[name]):
            notes[name] = f"The {len(tables[name])} most urgent of {total}."
    return _render(
        config,
        now,
        standalone=True,
        figures=[
            _shown(f, "data:image/png;base64," + base64.b64encode(f.png).decode("ascii")) for f in figures
        ],
        tables=[_table(name, rows, notes.get(name, "")) for name, rows in tables.items()],
    )


def write_sla_page(config: Config, now: datetime, path: Path) -> None:
    """Write the page to `path` whole or not at all (a temporary file beside it, then renamed)."""
    html = render_sla_page(config, now)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(html, encoding="utf-8")
    os.replace(temporary, path)


def inline_figures(config: Config, now: datetime) -> tuple[str, list[tuple[str, bytes]]]:
    """An HTML fragment with the summary and the figures for a multipart/related mail.

    The images are referenced as `cid:<name>@maildesk`; the list pairs each Content-ID
    (without angle brackets, as maildesk stores Message-IDs) with its PNG, in the order the
    fragment uses them. Attach each with `add_related(png, "image", "png", cid=f"<{cid}>")`.
    """
    data = load_sla_data(config, now)
    figures = sla_figures(config, now, data=data)
    summary = sla_tables(config, now, data=data, limit=0)["summary"]
    cids = [f"{f.name}@{CID_DOMAIN}" for f in figures]
    html = _render(
        config,
        now,
        standalone=False,
        figures=[_shown(f, f"cid:{cid}") for f, cid in zip(figures, cids, strict=True)],
        tables=[_table("summary", summary, "")],
    )
    return html, [(cid, f.png) for cid, f in zip(cids, figures, strict=True)]


def _render(
    config: Config,
    now: datetime,
    *,
    standalone: bool,
    figures: Sequence[dict[str, Any]],
    tables: Sequence[dict[str, Any]],
) -> str:
    at = naive_utc(now).replace(tzinfo=UTC)
    local = at.astimezone(ZoneInfo(config.hours.timezone))
    return (
        environment_for(config)
        .get_template(TEMPLATE)
        .render(
            title=TITLE,
            desk=config.desk.name,
            generated=f"{local:%Y-%m-%d %H:%M} {local.tzname()}",
            generated_utc=at.isoformat(timespec="seconds").replace("+00:00", "Z"),
            standalone=standalone,
            figures=figures,
            tables=tables,
        )
    )


def _shown(figure: Figure, src: str) -> dict[str, Any]:
    width, height = png_size(figure.png)
    return {
        "name": figure.name,
        "title": figure.title,
        "alt": figure.alt,
        "src": src,
        "width": width,
        "height": height,
    }


def _table(name: str, rows: list[Row], note: str) -> dict[str, Any]:
    return {
        "name": name,
        "caption": CAPTIONS[name],
        "columns": TABLE_COLUMNS[name],
        "rows": rows,
        "note": note,
    }


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height in pixels from a PNG's IHDR chunk (PNG spec, section 11.2.2)."""
    if png[:8] != b"\x89PNG\r\n\x1a\n" or png[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    width, height = struct.unpack(">II", png[16:24])
    return int(width), int(height)
