"""The SLA report's figures (matplotlib PNGs) and tables, for people rather than scripts.

Everything comes from four queries, made once by `load_sla_data`: the columns of the open
tickets, the tickets created in the last 30 days, the breach and vendor-dispatch events of
the last 14 days (by the indexed `Event.at`), and the agents' names. The rest is counted in
Python, so the cost grows with the open tickets and a month's intake, never with a query
per ticket; business time comes from one pass over the calendar's opening spans
(`_BusinessClock`), not a calendar walk per ticket. A "day" is the desk's local day
(`[hours] timezone`); times are naive UTC as stored, and shown in the desk's zone.

Figures are drawn with matplotlib's object API (`matplotlib.figure.Figure`, rendered by the
Agg canvas when saved as PNG): no pyplot, so no backend to pick, no global figure registry
to leak into and nothing to close, and it is safe in a server's thread. An empty database
gives every figure with "no data" written on it, and every table empty.
"""

from __future__ import annotations

import io
import statistics
from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final, NamedTuple, cast
from zoneinfo import ZoneInfo

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure as MplFigure
from matplotlib.ticker import MaxNLocator

from maildesk.clock import naive_utc
from maildesk.config import Config
from maildesk.sla.calendar import BusinessCalendar
from maildesk.sla.clock import OPEN
from maildesk.tickets.statuses import OWED
from maildesk.tickets.store.models import Agent, Event, Ticket

WAITING: Final = OWED  # the statuses in which an unanswered ticket waits for its answer
DEADLINES: Final = ("first_response", "unclaimed", "update", "resolution")
BREACHED: Final = "sla_breached"
DISPATCHED: Final = "vendor_dispatched"
DAYS: Final = 14  # the per-day figures cover this many local days, today included
CONFIDENCE_DAYS: Final = 30
NO_TEAM: Final = "(no team)"
TABLE_ROWS: Final = 100  # a long table is cut to its most urgent rows; the summary has the counts
AGE_BUCKETS: Final = (
    ("<4h", timedelta(hours=4)),
    ("4-24h", timedelta(hours=24)),
    ("1-2d", timedelta(days=2)),
    ("2-7d", timedelta(days=7)),
    (">7d", timedelta.max),
)
SIZE: Final = (7.0, 3.5)  # inches, at DPI: 700 x 350 pixels
NO_DATA_SIZE: Final = (7.0, 1.5)
DPI: Final = 100

Cell = str | int | float | None
Row = dict[str, Cell]

# each table's columns, in order, as (key in the row, heading)
TABLE_COLUMNS: Final[Mapping[str, tuple[tuple[str, str], ...]]] = {
    "summary": (
        ("open", "open tickets"),
        ("unanswered", "unanswered"),
        ("unattended", "unattended"),
        ("breaches_24h", "breaches, last 24 h"),
        ("dispatches_24h", "vendor dispatches, last 24 h"),
        ("median_first_response_hours_7d", "median first response, business hours, last 7 days"),
    ),
    "unanswered": (
        ("ref", "ticket"),
        ("subject", "subject"),
        ("team", "team"),
        ("priority", "priority"),
        ("created_at", "created"),
        ("age_business_hours", "waiting, business hours"),
    ),
    "unattended": (
        ("ref", "ticket"),
        ("subject", "subject"),
        ("team", "team"),
        ("priority", "priority"),
        ("assignee", "assignee"),
        ("updated_at", "last update"),
        ("idle_days", "days without an update"),
    ),
    "oldest_per_team": (
        ("team", "team"),
        ("ref", "ticket"),
        ("subject", "subject"),
        ("priority", "priority"),
        ("created_at", "created"),
        ("age_days", "open for, days"),
    ),
}


@dataclass(frozen=True)
class Figure:
    """One plot: `name` is its id on the page and its Content-ID in mail, `alt` says what it shows."""

    name: str
    title: str
    png: bytes
    alt: str


class OpenTicket(NamedTuple):
    number: int
    status: str
    subject: str
    team: str
    priority: str
    assignee_id: int | None
    created_at: datetime
    updated_at: datetime
    first_response_at: datetime | None


class RecentTicket(NamedTuple):
    status: str
    created_at: datetime
    first_response_at: datetime | None
    type_confidence: float | None
    issue_type: str


class Happening(NamedTuple):
    at: datetime
    kind: str
    detail: str


@dataclass(frozen=True)
class SlaData:
    """What the report reads from the database, once (`load_sla_data`); times are naive UTC."""

    now: datetime
    open: tuple[OpenTicket, ...]
    recent: tuple[RecentTicket, ...]  # created since `since`, spam left out
    events: tuple[Happening, ...]  # breaches and vendor dispatches since the first day's start
    agents: Mapping[int, str]


def load_sla_data(config: Config, now: datetime) -> SlaData:
    """Read what the figures and tables need, in four queries (see the module's docstring).

    The models must be bound to the desk's database (`maildesk.desk.open_desk`). Rows created
    after `now` are left out, so a report for a replayed `--now` does not see the future.
    """
    now = naive_utc(now)
    zone = ZoneInfo(config.hours.timezone)
    first_day = _day_start(_days(now, zone)[0], zone)
    since = min(first_day, now - timedelta(days=CONFIDENCE_DAYS))
    open_tickets = tuple(
        OpenTicket(*row)
        for row in _rows(
            Ticket.select(
                Ticket.number,
                Ticket.status,
                Ticket.subject,
                Ticket.team,
                Ticket.priority,
                Ticket.assignee,
                Ticket.created_at,
                Ticket.updated_at,
                Ticket.first_response_at,
            ).where(Ticket.status.in_(OPEN), Ticket.merged_into.is_null(), Ticket.created_at <= now)
        )
    )
    recent = tuple(
        RecentTicket(*row)
        for row in _rows(
            Ticket.select(
                Ticket.status,
                Ticket.created_at,
                Ticket.first_response_at,
                Ticket.type_confidence,
                Ticket.issue_type,
            ).where(
                Ticket.created_at >= since,
                Ticket.created_at <= now,
                Ticket.status != "spam",
                Ticket.merged_into.is_null(),
            )
        )
    )
    events = tuple(
        Happening(*row)
        for row in _rows(
            Event.select(Event.at, Event.kind, Event.detail).where(
                Event.at >= first_day, Event.at <= now, Event.kind.in_((BREACHED, DISPATCHED))
            )
        )
    )
    agents: dict[int, str] = {}
    if any(t.assignee_id is not None for t in open_tickets):
        query = Agent.select(Agent.id, Agent.name, Agent.address)
        agents = {id_: name or address for id_, name, address in _rows(query)}
    return SlaData(now=now, open=open_tickets, recent=recent, events=events, agents=agents)


def _rows(query: Any) -> Iterable[tuple[Any, ...]]:
    return cast("Iterable[tuple[Any, ...]]", query.tuples())


def sla_figures(config: Config, now: datetime, *, data: SlaData | None = None) -> list[Figure]:
    """The report's five figures, in page order: open tickets by age and team, first-response
    times against the target, breaches, vendor dispatches, classifier confidence."""
    view = _View(config, data if data is not None else load_sla_data(config, now))
    return [
        _open_by_age(view),
        _first_response(view),
        _breaches(view),
        _dispatches(view),
        _confidence(view),
    ]


def sla_tables(
    config: Config, now: datetime, *, data: SlaData | None = None, limit: int | None = TABLE_ROWS
) -> dict[str, list[Row]]:
    """The report's tables by name (columns in TABLE_COLUMNS): summary (one row), unanswered
    (oldest first), unattended (longest idle first), oldest_per_team (by team).

    `limit` cuts the long tables to their most urgent rows; the summary counts them all.
    Times are the desk's local times as "YYYY-MM-DD HH:MM"; ages are rounded to 0.1.
    """
    view = _View(config, data if data is not None else load_sla_data(config, now))
    now = view.now
    prefix = config.desk.ticket_prefix
    unanswered = sorted(
        (t for t in view.data.open if _waiting(t.status, t.first_response_at, now)),
        key=lambda t: t.created_at,
    )
    idle_since = now - config.sla.no_update
    unattended = sorted((t for t in view.data.open if t.updated_at <= idle_since), key=lambda t: t.updated_at)
    oldest: dict[str, OpenTicket] = {}
    for ticket in view.data.open:
        team = ticket.team or NO_TEAM
        if team not in oldest or ticket.created_at < oldest[team].created_at:
            oldest[team] = ticket
    week = [
        view.clock.hours(t.created_at, responded)
        for t in view.data.recent
        if t.created_at >= now - timedelta(days=7) and (responded := _responded(t.first_response_at, now))
    ]
    day_ago = now - timedelta(hours=24)
    summary: Row = {
        "open": len(view.data.open),
        "unanswered": len(unanswered),
        "unattended": len(unattended),
        "breaches_24h": sum(1 for e in view.data.events if e.kind == BREACHED and e.at > day_ago),
        "dispatches_24h": sum(1 for e in view.data.events if e.kind == DISPATCHED and e.at > day_ago),
        "median_first_response_hours_7d": round(statistics.median(week), 1) if week else None,
    }
    return {
        "summary": [summary],
        "unanswered": [
            {
                "ref": f"{prefix}-{t.number}",
                "subject": t.subject,
                "team": t.team or NO_TEAM,
                "priority": t.priority,
                "created_at": view.local(t.created_at),
                "age_business_hours": round(view.clock.hours(t.created_at, now), 1),
            }
            for t in unanswered[:limit]
        ],
        "unattended": [
            {
                "ref": f"{prefix}-{t.number}",
                "subject": t.subject,
                "team": t.team or NO_TEAM,
                "priority": t.priority,
                "assignee": view.data.agents.get(t.assignee_id, "") if t.assignee_id is not None else "",
                "updated_at": view.local(t.updated_at),
                "idle_days": round((now - t.updated_at) / timedelta(days=1), 1),
            }
            for t in unattended[:limit]
        ],
        "oldest_per_team": [
            {
                "team": team,
                "ref": f"{prefix}-{t.number}",
                "subject": t.subject,
                "priority": t.priority,
                "created_at": view.local(t.created_at),
                "age_days": round((now - t.created_at) / timedelta(days=1), 1),
            }
            for team, t in sorted(oldest.items())
        ],
    }


# ---------------------------------------------------------------------------- what the two share


class _BusinessClock:
    """Business time between instants from `origin` to `until`: the calendar's opening spans are
    listed once with the business time before each, so each question is a bisection (outside
    that range it asks the calendar)."""

    def __init__(self, calendar: BusinessCalendar, origin: datetime, until: datetime) -> None:
        self._calendar = calendar
        self._origin = origin
        self._until = until
        self._opens: list[datetime] = []
        self._closes: list[datetime] = []
        self._before: list[timedelta] = []
        total = timedelta(0)
        for opens, closes in calendar.spans(origin.replace(tzinfo=UTC)):
            start, end = _naive(opens), _naive(closes)
            if start >= until:
                break
            start = max(start, origin)
            self._opens.append(start)
            self._closes.append(end)
            self._before.append(total)
            total += end - start

    def _elapsed(self, at: datetime) -> timedelta:
        i = bisect_right(self._opens, at) - 1
        if i < 0:
            return timedelta(0)
        return self._before[i] + min(at, self._closes[i]) - self._opens[i]

    def hours(self, start: datetime, end: datetime) -> float:
        """Business hours from `start` to `end` (zero when end is not after start)."""
        if start < self._origin or end > self._until:
            return self._calendar.between(start, end) / timedelta(hours=1)
        return max((self._elapsed(end) - self._elapsed(start)) / timedelta(hours=1), 0.0)


class _View:
    """The loaded data with the desk's zone, its last DAYS local days and its business clock."""

    def __init__(self, config: Config, data: SlaData) -> None:
        self.config = config
        self.data = data
        self.now = data.now
        self.zone = ZoneInfo(config.hours.timezone)
        self.days = _days(self.now, self.zone)
        created = [t.created_at for t in data.open] + [t.created_at for t in data.recent]
        origin = min([_day_start(self.days[0], self.zone), *created])
        self.clock = _BusinessClock(BusinessCalendar(config.hours), origin, self.now)

    def day(self, at: datetime) -> date:
        return at.replace(tzinfo=UTC).astimezone(self.zone).date()

    def local(self, at: datetime) -> str:
        return f"{at.replace(tzinfo=UTC).astimezone(self.zone):%Y-%m-%d %H:%M}"

    def per_day(self, times: Iterable[datetime]) -> list[int]:
        counts = Counter(self.day(at) for at in times)
        return [counts[d] for d in self.days]

    def day_labels(self) -> list[str]:
        """The weekday over the day of the month (a quiet weekend explains itself); the month
        is named on the first day and where it changes."""
        return [
            f"{d:%a}\n{d.day}" + (f" {d:%b}" if i == 0 or d.day == 1 else "") for i, d in enumerate(self.days)
        ]


def _waiting(status: str, first_response_at: datetime | None, now: datetime) -> bool:
    """Still waiting for a first response: new or open and not answered (as `sla.report` counts
    the unanswered; a pending ticket waits for the customer, a closed one for nobody)."""
    return status in WAITING and _responded(first_response_at, now) is None


def _responded(first_response_at: datetime | None, now: datetime) -> datetime | None:
    """The first response if it came by `now`: a report for a replayed --now sees no later one."""
    return first_response_at if first_response_at is not None and first_response_at <= now else None


def _days(now: datetime, zone: ZoneInfo) -> list[date]:
    today = now.replace(tzinfo=UTC).astimezone(zone).date()
    return [today - timedelta(days=n) for n in range(DAYS - 1, -1, -1)]


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return _naive(datetime.combine(day, time(0), tzinfo=zone))


def _naive(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(tzinfo=None)


# ---------------------------------------------------------------------------- drawing


def _canvas(title: str, size: tuple[float, float] = SIZE) -> tuple[MplFigure, Axes]:
    figure = MplFigure(figsize=size, dpi=DPI, layout="constrained")
    axes = figure.subplots()
    axes.set_title(title, fontsize=11)
    return figure, axes


def _png(figure: MplFigure) -> bytes:
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=DPI, metadata={"Software": None})
    return out.getvalue()


def _no_data(name: str, title: str, why: str) -> Figure:
    figure, axes = _canvas(title, NO_DATA_SIZE)
    axes.text(0.5, 0.6, "no data", ha="center", va="center", fontsize=16, color="0.45")
    axes.text(0.5, 0.25, why, ha="center", va="center", fontsize=9, color="0.45")
    axes.set_xticks([])
    axes.set_yticks([])
    return Figure(name, title, _png(figure), f"{title}: no data ({why}).")


def _colours(n: int) -> list[tuple[float, float, float, float]]:
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _stacked(axes: Axes, labels: Sequence[str], stacks: Mapping[str, Sequence[int]]) -> None:
    """Bars at `labels`, one layer per key of `stacks`, with a legend when there is more than one."""
    bottom = [0] * len(labels)
    for (name, values), colour in zip(stacks.items(), _colours(len(stacks)), strict=True):
        axes.bar(labels, values, bottom=bottom, label=name, color=colour)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.tick_params(axis="x", labelsize=8)
    axes.set_ylim(0, max(1, max(bottom, default=0)) * 1.08)
    if len(stacks) > 1:
        _legend(axes)


def _legend(axes: Axes) -> None:
    """The legend outside the plot, on the right, where it hides no data."""
    handles, labels = axes.get_legend_handles_labels()
    figure = axes.get_figure()
    assert isinstance(figure, MplFigure)
    figure.legend(handles, labels, fontsize=8, loc="outside right upper", frameon=False)


def _counted(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{name} {n}" for name, n in counts.items())


def _open_by_age(view: _View) -> Figure:
    name, title = "open-by-age", "Open tickets by age and team"
    if not view.data.open:
        return _no_data(name, title, "no open tickets")
    buckets = [label for label, _ in AGE_BUCKETS]
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(AGE_BUCKETS))
    for ticket in view.data.open:
        age = view.now - ticket.created_at
        index = next(i for i, (_, limit) in enumerate(AGE_BUCKETS) if age < limit)
        counts[ticket.team or NO_TEAM][index] += 1
    teams = dict(sorted(counts.items(), key=lambda item: (-sum(item[1]), item[0])))
    figure, axes = _canvas(title)
    _stacked(axes, buckets, teams)
    axes.set_xlabel("age (wall clock, since the ticket was opened)")
    axes.set_ylabel("open tickets")
    by_age = {label: sum(c[i] for c in teams.values()) for i, label in enumerate(buckets)}
    alt = (
        f"{title}: {len(view.data.open)} open; by age {_counted(by_age)}; "
        f"by team {_counted({team: sum(c) for team, c in teams.items()})}."
    )
    return Figure(name, title, _png(figure), alt)


def _first_response(view: _View) -> Figure:
    name = "first-response"
    target = view.config.sla.first_response / timedelta(hours=1)
    title = f"First response against the {target:g} h target, by day opened"
    answered: dict[date, list[float]] = defaultdict(list)
    waiting: list[tuple[int, float]] = []
    index = {d: i for i, d in enumerate(view.days)}
    for ticket in view.data.recent:
        i = index.get(view.day(ticket.created_at))
        if i is None:
            continue
        responded = _responded(ticket.first_response_at, view.now)
        if responded is not None:
            answered[view.days[i]].append(view.clock.hours(ticket.created_at, responded))
        elif _waiting(ticket.status, ticket.first_response_at, view.now):
            waiting.append((i, view.clock.hours(ticket.created_at, view.now)))
    if not answered and not waiting:
        return _no_data(name, title, f"no tickets opened in the last {DAYS} days")
    nan = float("nan")
    medians = [statistics.median(answered[d]) if answered[d] else nan for d in view.days]
    maxima = [max(answered[d]) if answered[d] else nan for d in view.days]
    figure, axes = _canvas(title)
    labels = view.day_labels()
    positions = list(range(len(labels)))
    axes.axhline(target, color="tab:red", linestyle="--", linewidth=1, label=f"target {target:g} h")
    axes.plot(positions, maxima, "v:", color="tab:orange", label="slowest answered")
    axes.plot(positions, medians, "o-", color="tab:blue", label="median answered")
    everything = [h for hours in answered.values() for h in hours]
    # the scale is the answered tickets' and the target's: an unanswered ticket off the top is
    # drawn at the top, as a triangle with its hours beside it
    top = max(3 * target, 1.15 * max(everything, default=0.0))
    if waiting:
        axes.scatter(
            [i for i, _ in waiting],
            [min(h, top) for _, h in waiting],
            marker="x",
            color="tab:red",
            label="unanswered: waiting so far",
            zorder=3,
            clip_on=False,
        )
        highest: dict[int, float] = {}  # per day, the longest wait off the top: one label a day
        for i, hours in waiting:
            if hours > top:
                highest[i] = max(hours, highest.get(i, hours))
        for i, hours in highest.items():
            axes.annotate(
                f"\N{UPWARDS ARROW}{hours:.0f}",
                (i, top),
                xytext=(4, -3),
                textcoords="offset points",
                fontsize=7,
                color="tab:red",
                va="top",
                annotation_clip=False,
            )
    axes.set_xticks(positions, labels)
    axes.tick_params(axis="x", labelsize=8)
    axes.set_xlim(-0.5, len(labels) - 0.5)
    axes.set_ylim(0, top)
    axes.set_ylabel("business hours")
    _legend(axes)
    over = sum(1 for h in everything if h > target) + sum(1 for _, h in waiting if h > target)
    alt = (
        f"{title}, last {DAYS} days: {len(everything)} answered, median "
        f"{statistics.median(everything) if everything else 0:.1f} h, slowest "
        f"{max(everything, default=0):.1f} h; {len(waiting)} still unanswered; {over} over the target."
    )
    return Figure(name, title, _png(figure), alt)


def _breaches(view: _View) -> Figure:
    name, title = "breaches", f"SLA breaches per day, last {DAYS} days"
    by_kind: dict[str, list[datetime]] = {kind: [] for kind in DEADLINES}
    for event in view.data.events:
        if event.kind == BREACHED:
            kind = event.detail.partition(":")[0].strip() or "other"
            by_kind.setdefault(kind, []).append(event.at)
    total = sum(len(times) for times in by_kind.values())
    if not total:
        return _no_data(name, title, f"no breaches in the last {DAYS} days")
    stacks = {kind.replace("_", " "): view.per_day(times) for kind, times in by_kind.items() if times}
    figure, axes = _canvas(title)
    _stacked(axes, view.day_labels(), stacks)
    axes.set_ylabel("breaches")
    alt = f"{title}: {total} in all; {_counted({k: sum(v) for k, v in stacks.items()})}."
    return Figure(name, title, _png(figure), alt)


def _dispatches(view: _View) -> Figure:
    name, title = "vendor-dispatches", f"Vendor dispatches per day, last {DAYS} days"
    counts = view.per_day(e.at for e in view.data.events if e.kind == DISPATCHED)
    if not sum(counts):
        return _no_data(name, title, f"no dispatches in the last {DAYS} days")
    figure, axes = _canvas(title)
    _stacked(axes, view.day_labels(), {"dispatched": counts})
    axes.set_ylabel("tickets dispatched")
    busiest = max(range(DAYS), key=lambda i: counts[i])
    alt = f"{title}: {sum(counts)} in all, most on {view.days[busiest]:%a %d %b} ({counts[busiest]})."
    return Figure(name, title, _png(figure), alt)


def _confidence(view: _View) -> Figure:
    name, title = "confidence", f"Classifier confidence, tickets opened in the last {CONFIDENCE_DAYS} days"
    since = view.now - timedelta(days=CONFIDENCE_DAYS)
    tickets = [t for t in view.data.recent if t.created_at >= since]
    scores = [min(max(t.type_confidence, 0.0), 1.0) for t in tickets if t.type_confidence is not None]
    unclassified = sum(1 for t in tickets if t.issue_type == "unclassified")
    if not tickets:
        return _no_data(name, title, f"no tickets opened in the last {CONFIDENCE_DAYS} days")
    threshold = view.config.classify.min_confidence
    figure, axes = _canvas(title)
    if scores:
        axes.hist(scores, bins=20, range=(0.0, 1.0), color="tab:blue", edgecolor="white")
    axes.axvline(threshold, color="tab:red", linestyle="--", linewidth=1, label=f"threshold {threshold:g}")
    axes.set_xlim(0, 1)
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel(f"confidence of the issue type (unclassified: {unclassified} of {len(tickets)})")
    axes.set_ylabel("tickets")
    _legend(axes)
    median = f", median {statistics.median(scores):.2f}" if scores else ""
    alt = f"{title}: {len(tickets)} tickets, {len(scores)} scored{median}; {unclassified} unclassified."
    return Figure(name, title, _png(figure), alt)
