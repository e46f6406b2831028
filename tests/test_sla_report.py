"""The SLA report for people: matplotlib figures and tables from real tickets, one self-contained
HTML page checked in headless Chromium, and the same figures inline in a multipart/related mail."""

from __future__ import annotations

import base64
import email
import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest
from peewee import Database

from maildesk.config import Config, load_config
from maildesk.reports.figures import _BusinessClock, sla_figures, sla_tables
from maildesk.reports.sla_page import inline_figures, png_size, write_sla_page
from maildesk.sla.calendar import BusinessCalendar
from maildesk.sla.report import sla_report
from maildesk.tickets.store.db import open_database
from maildesk.tickets.store.models import Event, Ticket
from tests.conftest import Desk, missing
from tests.mail import make_mail

# Friday 20 November 2026, 16:00 in Zurich: the desk (default hours, Mon-Fri 10:00-17:40) is open
NOW = datetime(2026, 11, 20, 15, 0)
HOSTILE = "<script>alert(1)</script> printer"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt; printer"
FIGURES = ("open-by-age", "first-response", "breaches", "vendor-dispatches", "confidence")
TABLES = ("summary", "unanswered", "unattended", "oldest_per_team")
PNG = b"\x89PNG\r\n\x1a\n"


def at(days: float = 0, hours: float = 0) -> datetime:
    """Naive UTC, that long before NOW."""
    return NOW - timedelta(days=days, hours=hours)


def fill(desk: Desk, folder: Path) -> Database:
    """Three customer mails through the CLI, then a fortnight of tickets and events written to
    the store with the real models; returns the database, open, with the models bound to it."""
    mails = [
        ("m1@customer.example", "Printer on floor 2 is jammed", at(hours=5.5)),  # 10:30 local today
        ("m2@customer.example", HOSTILE, at(days=1, hours=2)),
        ("m3@customer.example", "VPN drops every hour", at(days=7, hours=5)),
    ]
    for n, (message_id, subject, when) in enumerate(mails):
        path = folder / f"{n}.eml"
        path.write_bytes(make_mail(subject=subject, message_id=message_id, date=when.replace(tzinfo=UTC)))
        assert desk.ingest(path, now=when.isoformat() + "Z")["new_tickets"] == 1
    database = open_database(desk.db_url)
    number = 100

    def ticket(created: datetime, **fields: object) -> Ticket:
        nonlocal number
        number += 1
        values = {"status": "open", "team": "Service Desk", "updated_at": created, **fields}
        return Ticket.create(number=number, subject=f"Stored ticket {number}", created_at=created, **values)

    with database.atomic():
        # MD-101..128: two a day for 14 days, answered, in two teams, confidences 0..1
        for day in range(14):
            for k in range(2):
                created = at(days=day, hours=3 + k)
                confidence = (day * 2 + k) % 11 / 10
                ticket(
                    created,
                    status="resolved" if k else "open",
                    team="Network" if day % 3 == 0 else "Service Desk",
                    first_response_at=created + timedelta(hours=0.5 + day % 4),
                    updated_at=created + timedelta(hours=1),
                    type_confidence=confidence,
                    issue_type="unclassified" if confidence < 0.5 else "Problem",
                )
        stale = ticket(at(days=9), team="", priority="high", updated_at=at(days=5))  # MD-129
        ticket(at(days=40), team="Network", first_response_at=at(days=39), updated_at=at(days=3))  # MD-130
        ticket(at(days=2), status="spam")  # MD-131: counted nowhere
        ticket(at(days=1), status="awaiting-customer")  # MD-132: open, but waits for the customer, not for us
        ticket(at(days=3), merged_into=stale)  # MD-133: merged, counted nowhere
        ticket(at(days=2), status="closed")  # MD-134: closed unanswered: waits for nobody
        breaches = {"first_response": (0, 1, 1, 5), "unclaimed": (2,), "update": (3, 3), "resolution": (13,)}
        for kind, days in breaches.items():
            for day in days:
                Event.create(
                    ticket=stale, at=at(days=day, hours=1), kind="sla_breached", detail=f"{kind}: due"
                )
        for day in (0, 4, 4, 10):
            Event.create(ticket=stale, at=at(days=day, hours=2), kind="vendor_dispatched", detail="dispatch")
        # outside the window, or after NOW: not counted
        Event.create(ticket=stale, at=at(days=20), kind="sla_breached", detail="update: due")
        Event.create(ticket=stale, at=at(hours=-2), kind="vendor_dispatched", detail="later")
    return database


@pytest.fixture
def busy(desk: Desk, tmp_path: Path) -> Iterator[Desk]:
    database = fill(desk, tmp_path)
    yield desk
    database.close()


@pytest.fixture
def busy_anywhere(any_desk: Desk, tmp_path: Path) -> Iterator[Desk]:
    """The same, on SQLite and on PostgreSQL."""
    database = fill(any_desk, tmp_path)
    yield any_desk
    database.close()


@pytest.fixture
def empty(desk: Desk) -> Iterator[Desk]:
    """A desk with no tickets, the models bound to its database as a report command has them."""
    assert desk.run("tickets", "list").code == 0  # the CLI creates the schema
    database = open_database(desk.db_url)
    yield desk
    database.close()


def chromium(page: Path, tmp_path: Path) -> tuple[str, list[tuple[str, bool, int, int]]]:
    """The DOM headless Chromium built from `page`, and for each <img> its figure's id, whether it
    is complete and its decoded width and height, written into the DOM by a probe script on load.

    The probe runs in a copy whose Content-Security-Policy also allows inline script; the page's
    own policy (images from data: only) stays, so an image from anywhere else would not load.
    """
    binary = shutil.which("chromium")
    if binary is None:
        missing("headless Chromium is not installed (apt-get install -y chromium)")
        raise AssertionError("unreachable")
    html = page.read_text(encoding="utf-8")
    policy = "default-src 'none';"
    assert html.count(policy) == 1
    probe = (
        "<script>window.addEventListener('load', () => { const out = document.createElement('pre');"
        " out.id = 'probe'; out.textContent = JSON.stringify(Array.from(document.images,"
        " i => [i.closest('figure').id, i.complete, i.naturalWidth, i.naturalHeight]));"
        " document.body.append(out); });</script>\n</body>"
    )
    copy = tmp_path / f"probe-{page.name}"
    copy.write_text(
        html.replace(policy, policy + " script-src 'unsafe-inline';").replace("</body>", probe),
        encoding="utf-8",
    )
    command = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run"]
    command += ["--disable-extensions", f"--user-data-dir={tmp_path / 'chromium-profile'}"]
    command += ["--virtual-time-budget=5000", "--dump-dom", copy.as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', done.stdout, flags=re.S)
    assert found, f"the probe did not run: {done.stdout[:500]!r} {done.stderr[-1000:]!r}"
    images = [tuple(image) for image in json.loads(found.group(1).replace("&quot;", '"'))]
    return done.stdout, images  # type: ignore[return-value]


def check_in_chromium(page: Path, tmp_path: Path) -> dict[str, str]:
    """Every figure and table is in the DOM Chromium built, and every image a data: PNG it
    decoded; returns each table's HTML by name."""
    dom, images = chromium(page, tmp_path)
    for name in FIGURES:
        assert f'<figure id="fig-{name}"' in dom
    assert [figure_id for figure_id, *_ in images] == [f"fig-{name}" for name in FIGURES]
    for figure_id, complete, width, height in images:
        assert complete and width == 700 and height >= 150, (figure_id, width, height)
    sources = re.findall(r'<img src="([^"]*)"', dom)
    assert len(sources) == len(FIGURES)
    for source in sources:
        assert source.startswith("data:image/png;base64,")
        png = base64.b64decode(source.partition(",")[2], validate=True)
        assert png.startswith(PNG) and len(png) > 5000 and png_size(png)[0] == 700
    tables = {}
    for name in TABLES:
        found = re.search(rf'<table id="table-{name}">.*?</table>', dom, flags=re.S)
        assert found, name
        assert re.search(r"<thead>\s*<tr><th", found.group(0)), name
        tables[name] = found.group(0)
    return tables


def test_the_page_shows_every_figure_and_table_in_chromium(busy: Desk, tmp_path: Path) -> None:
    page = tmp_path / "sla.html"
    started = time.perf_counter()
    write_sla_page(load_config(busy.config), NOW.replace(tzinfo=UTC), page)
    assert time.perf_counter() - started < 10
    assert [p.name for p in tmp_path.glob("*sla.html*")] == ["sla.html"]  # no temporary file left
    html = page.read_text(encoding="utf-8")
    assert "<title>maildesk SLA report</title>" in html
    assert "2026-11-20 16:00 CET" in html and 'datetime="2026-11-20T15:00:00Z"' in html
    # self-contained: nothing is fetched from anywhere
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", html)
    assert "<link" not in html and "@import" not in html and "<script" not in html
    # the customer's subject is text, not markup
    assert ESCAPED in html
    tables = check_in_chromium(page, tmp_path)
    assert f"<td>{ESCAPED}</td>" in tables["unanswered"]
    for ref in ("MD-1", "MD-2", "MD-3", "MD-129"):
        assert f"<td>{ref}</td>" in tables["unanswered"]
    assert "<td>Network</td>" in tables["oldest_per_team"]
    assert '<td class="num">20</td>' in tables["summary"]


def test_report_sla_html_writes_the_page(busy: Desk, tmp_path: Path) -> None:
    page = tmp_path / "report" / "sla.html"
    page.parent.mkdir()
    result = busy.run("report", "sla", "--html", str(page), now=NOW.isoformat() + "Z")
    assert result.code == 0, result.err
    html = page.read_text(encoding="utf-8")
    assert html.count("<figure id=") == len(FIGURES) and html.count("<table id=") == len(TABLES)
    assert ESCAPED in html and HOSTILE not in html


def test_an_empty_database_gives_no_data_figures_and_none_tables(empty: Desk, tmp_path: Path) -> None:
    config = load_config(empty.config)
    figures = sla_figures(config, NOW)
    assert [f.name for f in figures] == list(FIGURES)
    assert all(f.png.startswith(PNG) and "no data" in f.alt for f in figures)
    page = tmp_path / "empty.html"
    write_sla_page(config, NOW, page)
    tables = check_in_chromium(page, tmp_path)
    for name in TABLES[1:]:
        assert re.search(r'<tbody>\s*<tr><td colspan="\d+">none</td></tr>\s*</tbody>', tables[name]), name
    assert sla_tables(config, NOW)["summary"] == [
        {
            "open": 0,
            "unanswered": 0,
            "unattended": 0,
            "breaches_24h": 0,
            "dispatches_24h": 0,
            "median_first_response_hours_7d": None,
        }
    ]


def test_figures_are_matplotlib_pngs_of_the_data(busy_anywhere: Desk) -> None:
    figures = {f.name: f for f in sla_figures(load_config(busy_anywhere.config), NOW)}
    assert list(figures) == list(FIGURES)
    for figure in figures.values():
        assert figure.png.startswith(PNG) and png_size(figure.png) == (700, 350)
        assert 5_000 < len(figure.png) < 150_000
        assert figure.title and figure.alt.startswith(figure.title) and "no data" not in figure.alt
    # open: the 3 mails, 14 stored, the stale, the 40-day-old and the pending one
    assert "20 open" in figures["open-by-age"].alt
    assert "by team Service Desk 10, Network 6, (no team) 4" in figures["open-by-age"].alt
    # 8 breaches in the 14 days: the one 20 days ago is left out
    assert "8 in all; first response 4, unclaimed 1, update 2, resolution 1" in figures["breaches"].alt
    assert "4 in all" in figures["vendor-dispatches"].alt  # the one after NOW is left out
    # 28 answered; waiting: the 3 mails and the stale ticket (9 days old)
    alt = figures["first-response"].alt
    assert "28 answered" in alt and "4 still unanswered" in alt
    # the 28 stored, the 3 mails (scored by the shipped model), the stale, pending and closed
    # tickets (no score); the 40-day-old ticket, spam and the merged one are left out
    assert "34 tickets, 31 scored" in figures["confidence"].alt


def test_tables_name_what_needs_a_person(busy_anywhere: Desk) -> None:
    config = load_config(busy_anywhere.config)
    tables = sla_tables(config, NOW)
    unanswered = tables["unanswered"]
    assert [row["ref"] for row in unanswered] == ["MD-129", "MD-3", "MD-2", "MD-1"]  # oldest first
    refs = {row["ref"]: row for row in unanswered}
    assert refs["MD-1"]["age_business_hours"] == 5.5  # 10:30 to 16:00 local on a working day
    assert refs["MD-1"]["created_at"] == "2026-11-20 10:30"  # the desk's local time
    assert refs["MD-2"]["subject"] == HOSTILE  # as written: the template escapes it
    unattended = {row["ref"]: row for row in tables["unattended"]}
    assert unattended["MD-129"]["idle_days"] == 5.0
    assert unattended["MD-129"]["team"] == "(no team)" and unattended["MD-129"]["priority"] == "high"
    assert "MD-1" not in unattended and len(unattended) == 15
    oldest = {row["team"]: row["ref"] for row in tables["oldest_per_team"]}
    assert oldest == {"(no team)": "MD-129", "Network": "MD-130", "Service Desk": "MD-127"}
    # the same tickets as `maildesk report sla --json` lists
    report = sla_report(config, NOW)
    assert {row["ref"] for row in tables["unanswered"]} == {d.ref for d in report.unanswered}
    assert {row["ref"] for row in tables["unattended"]} == {d.ref for d in report.unattended}
    (summary,) = tables["summary"]
    assert summary == {
        "open": 20,
        "unanswered": 4,
        "unattended": 15,
        "breaches_24h": 1,
        "dispatches_24h": 1,
        "median_first_response_hours_7d": summary["median_first_response_hours_7d"],
    }
    assert isinstance(summary["median_first_response_hours_7d"], float)


def test_the_digest_mail_carries_every_figure_it_references(busy: Desk) -> None:
    html, images = inline_figures(load_config(busy.config), NOW)
    assert [cid for cid, _ in images] == [f"{name}@maildesk" for name in FIGURES]
    assert all(png.startswith(PNG) for _, png in images)
    assert "<script" not in html and "data:" not in html and "<html" not in html
    message = EmailMessage()
    message["From"] = "support@helpdesk.example"
    message["To"] = "lead@helpdesk.example"
    message["Subject"] = "SLA digest"
    message.set_content("The SLA report's figures are in the HTML part of this message.")
    message.add_alternative(html, subtype="html")
    html_part = message.get_payload()[1]  # type: ignore[index]
    for cid, png in images:
        html_part.add_related(png, "image", "png", cid=f"<{cid}>")
    parsed = email.message_from_bytes(bytes(message), policy=default)
    assert parsed.get_content_type() == "multipart/alternative"
    related = parsed.get_payload()[1]  # type: ignore[index]
    assert related.get_content_type() == "multipart/related"
    body = related.get_body(("html",)).get_content()
    referenced = re.findall(r'src="cid:([^"]+)"', body)
    attached = {
        part["Content-ID"].strip("<>"): part.get_content()
        for part in related.iter_attachments()
        if part.get_content_type() == "image/png"
    }
    assert referenced == [cid for cid, _ in images]
    assert set(referenced) == set(attached)
    assert all(attached[cid] == png for cid, png in images)


def test_business_hours_match_the_calendar() -> None:
    calendar = BusinessCalendar(Config().hours)
    origin = datetime(2026, 10, 20, 7, 13)  # across the end of summer time (25 October)
    instants = [origin + timedelta(minutes=397 * n) for n in range(150)]  # 41 days, at odd minutes
    clock = _BusinessClock(calendar, origin, instants[-1])
    for start in instants[::7]:
        for end in instants[::5]:
            expected = calendar.between(start, end) / timedelta(hours=1)
            assert clock.hours(start, end) == pytest.approx(expected), (start, end)
