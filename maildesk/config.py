"""maildesk.toml, loaded once into a frozen, typed Config that is passed down explicitly.

Every key is validated on load and a bad one is reported by its dotted name
(`smtp.max_size`, `agents[2].address`), so a deployment script sees what to fix.
Secrets (`env:NAME`, `file:PATH`) are resolved only when used, so a command that
does not need the IMAP password does not fail because it is missing.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from maildesk.durations import parse_duration, parse_size
from maildesk.errors import ConfigError

DEFAULT_DB_URL = "sqlite:///maildesk.db"
_ADDRESS = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[^@\s<>\"]+$")
_HOURS = re.compile(r"^(\d{1,2}):(\d{2})-(\d{1,2}):(\d{2})$")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
T = TypeVar("T")


@dataclass(frozen=True)
class Secret:
    """A secret given as a literal, `env:NAME` or `file:PATH`; resolved on use."""

    key: str
    spec: str

    def reveal(self) -> str:
        if self.spec.startswith("env:"):
            name = self.spec[4:]
            value = os.environ.get(name)
            if value is None:
                raise ConfigError(self.key, f"environment variable {name} is not set")
            return value
        if self.spec.startswith("file:"):
            path = Path(self.spec[5:])
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ConfigError(self.key, f"cannot read {path}: {exc.strerror}") from None
        return self.spec

    def __bool__(self) -> bool:
        return bool(self.spec)

    def __repr__(self) -> str:  # never print a secret by accident
        return f"Secret({self.key!r}, {'<set>' if self.spec else '<empty>'})"


@dataclass(frozen=True)
class DeskConfig:
    name: str = "Example Support"
    addresses: tuple[str, ...] = ("support@helpdesk.example",)
    ticket_prefix: str = "MD"
    secret: Secret = Secret("desk.secret", "env:MAILDESK_SECRET")
    lead: str = ""
    # whose forwards of a customer's mail make the customer the requester (seed 002); empty:
    # the domains of the desk's own addresses. Agents always count.
    staff_domains: tuple[str, ...] = ()


@dataclass(frozen=True)
class StorageConfig:
    path: Path = Path("var")


@dataclass(frozen=True)
class SmtpConfig:
    listen: str = "127.0.0.1:2525"
    max_size: int = 25_000_000
    lmtp: bool = False
    tls_cert: str = ""  # PEM certificate (chain) for STARTTLS; empty: no STARTTLS
    tls_key: str = ""
    require_tls: bool = False  # refuse MAIL before STARTTLS


@dataclass(frozen=True)
class WorkersConfig:
    """Several workers on PostgreSQL: how long a claimed message is theirs before another may take it."""

    lease: timedelta = timedelta(minutes=5)


@dataclass(frozen=True)
class LinksConfig:
    """Pages the canned answers and the scheduling offer point customers to (seeds 002 and 004)."""

    billing: str = ""  # where customers update their billing details
    training: str = ""  # where they sign up for a training
    cancellation: str = ""  # how to cancel
    scheduling: str = ""  # where they book a time with us


@dataclass(frozen=True)
class OutboundConfig:
    relay: str = "maildir:var/outbox"
    username: str = ""
    password: Secret = Secret("outbound.password", "")
    ca_file: str = ""  # a private CA or self-signed certificate to trust; empty: the system's


@dataclass(frozen=True)
class ImapAccount:
    host: str
    port: int = 993
    tls: str = "ssl"
    username: str = ""
    password: Secret = Secret("imap.password", "")
    folders: tuple[str, ...] = ("INBOX",)
    processed_folder: str = ""
    idle: bool = True  # wait with IDLE where the server has it; false: always poll
    poll_interval: timedelta = timedelta(seconds=60)
    ca_file: str = ""  # a private CA or self-signed certificate to trust; empty: the system's


@dataclass(frozen=True)
class TeamConfig:
    name: str
    address: str = ""
    # seed 000's courtesy alerts: a team that rarely gets tickets hears of every new one
    every_ticket: bool = False


@dataclass(frozen=True)
class AgentConfig:
    address: str
    name: str = ""
    team: str = ""
    tier: int = 1


@dataclass(frozen=True)
class OrganizationConfig:
    name: str
    domains: tuple[str, ...] = ()
    priority: bool = False
    account_manager: str = ""


@dataclass(frozen=True)
class HoursConfig:
    timezone: str = "Europe/Zurich"
    # weekday -> (start minute, end minute) in local time; absent: closed
    week: Mapping[str, tuple[int, int]] = field(
        default_factory=lambda: {d: (600, 1060) for d in _WEEKDAYS[:5]} | {"sat": (570, 810)}
    )
    holidays: tuple[str, ...] = ()


@dataclass(frozen=True)
class SlaConfig:
    first_response: timedelta = timedelta(hours=2)  # business time
    unclaimed_alert: timedelta = timedelta(hours=1)  # business time
    no_update: timedelta = timedelta(days=2)  # wall-clock time, as the lead's "over 2 days" filter
    # business time between status updates the customer should get, per priority (seed 003:
    # "regular status updates for critical and high priority open issues")
    status_update: Mapping[str, timedelta] = field(
        default_factory=lambda: {"urgent": timedelta(hours=2), "high": timedelta(hours=4)}
    )
    confirm_within: int = 1  # business days a resolved ticket waits for the customer (seed 001)
    info_within: int = 1  # business days between requests for missing information (seed 001)
    escalate_on_breach: bool = True  # a missed first response moves the ticket up a tier
    digest: tuple[str, ...] = ("11:30", "17:00")  # local times of the lead's digest (seed 000)
    every: timedelta = timedelta(minutes=1)  # how often `serve` runs the clock
    # still unclaimed this long after the team alert, a ticket that can wait is offered links.scheduling
    scheduling_after: timedelta = timedelta(minutes=30)
    # a tighter (or looser) first response for some priorities, e.g. {"urgent": 30 minutes}
    first_response_by_priority: Mapping[str, timedelta] = field(default_factory=dict)

    def first_response_for(self, priority: str) -> timedelta:
        return self.first_response_by_priority.get(priority, self.first_response)


@dataclass(frozen=True)
class VendorConfig:
    name: str = ""
    address: str = ""
    domains: tuple[str, ...] = ()
    after_hours: bool = True
    unclaimed_after: timedelta = timedelta(hours=1)
    max_open: int = 50


@dataclass(frozen=True)
class ThreadingConfig:
    """How far maildesk goes to join a message to a ticket when headers do not say."""

    # a reply to a resolved/closed ticket reopens it within this time of closing
    reopen_window: timedelta = timedelta(days=14)
    # a header-less reply with a matching subject joins only within this time of the last update
    subject_window: timedelta = timedelta(days=7)
    # colleagues of the requester's configured organisation may use the tag and subject rules
    same_organization: bool = True


@dataclass(frozen=True)
class ScreenConfig:
    """Spam filtering and loop protection on the way in."""

    spam_model: str = "models/spam"  # a folder with spam.skops; "" turns the model off
    spam_threshold: float | None = None  # None: the threshold the model was trained with
    allow: tuple[str, ...] = ()  # addresses or domains ("@example.com") that are never spam
    deny: tuple[str, ...] = ()  # addresses or domains that always are
    trust_upstream: bool = True  # believe an upstream filter's X-Spam-Flag / X-Spam-Status
    # more messages than this from one sender within sender_window is a loop or a flood
    sender_limit: int = 30
    sender_window: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class RespondConfig:
    """What maildesk sends by itself, and the brakes on it."""

    acknowledge: bool = True  # an acknowledgement for every new ticket from a customer
    # at most auto_reply_limit automatic messages to one address per auto_reply_window (RFC 3834)
    auto_reply_limit: int = 3
    auto_reply_window: timedelta = timedelta(hours=1)


# the issue types of the support procedure (seed 000); the models and the rules use these names
PRIORITIES = ("low", "normal", "high", "urgent")


def _url(section: _Section, key: str) -> str:
    value = section.get(key, "")
    if value and not re.match(r"^https?://[^\s<>\"]+$", value):
        raise ConfigError(section.key(key), f"{value!r} is not an http(s) address")
    return value


def _by_priority(key: str, table: dict[str, Any]) -> dict[str, timedelta]:
    """A table of durations keyed by priority, each checked with its key."""
    found = {}
    for level, value in table.items():
        if level not in PRIORITIES:
            raise ConfigError(f"sla.{key}.{level}", f"is not a priority: use {', '.join(PRIORITIES)}")
        try:
            found[level] = parse_duration(value)
        except ValueError as exc:
            raise ConfigError(f"sla.{key}.{level}", str(exc)) from None
    return found


def _business_days(section: _Section, key: str) -> int:
    """A whole number of business days, written "1d" (or a bare integer)."""
    value = section.get(key, "1d", str)
    text = value.strip().lower().removesuffix("d")
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(section.key(key), f"{value!r} is not a number of business days like 1d")
    return int(text)


ISSUE_TYPES = ("Service Request", "Information Request", "Problem", "Incident")


@dataclass(frozen=True)
class ClassifyConfig:
    """The issue-type and team models, and how sure they must be to be believed."""

    issue_type_model: str = "models/issue-type"  # "" turns it off: tickets stay unclassified
    min_confidence: float = 0.5  # below this a ticket is left `unclassified` for a person
    team_model: str = "models/team"  # used only when no routing rule decides; "" turns it off
    team_min_confidence: float = 0.6
    # trained from agents' #request corrections (maildesk train request-type); absent: rules only
    request_type_model: str = "models/request-type"


@dataclass(frozen=True)
class LabelRule:
    """One [[labels]] rule (seed 002): label new tickets of an organisation, a domain or with a keyword."""

    name: str
    organization: str = ""
    domains: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoutingRule:
    """One [[routing]] rule: every condition given must hold; the first rule that matches wins."""

    team: str
    tier: int = 1
    organization: str = ""
    domains: tuple[str, ...] = ()
    issue_types: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    account_manager: bool = False  # assign to the organisation's account manager (config changes)


@dataclass(frozen=True)
class LimitsConfig:
    """Bounds that keep one hostile message from exhausting memory or time."""

    message: int = 50_000_000
    attachment: int = 25_000_000
    html: int = 2_000_000
    text: int = 1_000_000
    parts: int = 500


@dataclass(frozen=True)
class Config:
    desk: DeskConfig = DeskConfig()
    database_url: str = DEFAULT_DB_URL
    database_pool: int = 10  # PostgreSQL connections per process at most
    storage: StorageConfig = StorageConfig()
    smtp: SmtpConfig = SmtpConfig()
    outbound: OutboundConfig = OutboundConfig()
    imap: tuple[ImapAccount, ...] = ()
    teams: tuple[TeamConfig, ...] = ()
    agents: tuple[AgentConfig, ...] = ()
    organizations: tuple[OrganizationConfig, ...] = ()
    hours: HoursConfig = HoursConfig()
    sla: SlaConfig = SlaConfig()
    vendor: VendorConfig = VendorConfig()
    links: LinksConfig = LinksConfig()
    workers: WorkersConfig = WorkersConfig()
    label_rules: tuple[LabelRule, ...] = ()
    threading: ThreadingConfig = ThreadingConfig()
    limits: LimitsConfig = LimitsConfig()
    screen: ScreenConfig = ScreenConfig()
    respond: RespondConfig = RespondConfig()
    classify: ClassifyConfig = ClassifyConfig()
    routing: tuple[RoutingRule, ...] = ()
    assignment: str = "round-robin"  # round-robin, least-open or none
    source: Path | None = None

    def is_desk_address(self, address: str) -> bool:
        """True for a support address or its plus-addressed form (support+anything@)."""
        address = address.lower()
        local, _, domain = address.partition("@")
        base = local.split("+", 1)[0]
        return any(f"{base}@{domain}" == own for own in self.desk_addresses)

    @property
    def desk_addresses(self) -> frozenset[str]:
        return frozenset(a.lower() for a in self.desk.addresses)

    def is_staff(self, address: str) -> bool:
        """An agent, or anyone at the desk's own organisation (desk.staff_domains)."""
        address = address.lower()
        if self.agent(address) is not None:
            return True
        domain = address.rpartition("@")[2]
        domains = self.desk.staff_domains or tuple(a.rpartition("@")[2] for a in self.desk.addresses)
        return any(domain == d or domain.endswith("." + d) for d in domains)

    def agent(self, address: str) -> AgentConfig | None:
        address = address.lower()
        return next((a for a in self.agents if a.address.lower() == address), None)

    def organization_for(self, address: str) -> OrganizationConfig | None:
        domain = address.rpartition("@")[2].lower()
        for org in self.organizations:
            if any(domain == d or domain.endswith("." + d) for d in org.domains):
                return org
        return None


# --------------------------------------------------------------------------- loading


class _Section:
    """A TOML table being read, which knows its dotted name for error messages."""

    def __init__(self, name: str, data: Any) -> None:
        if not isinstance(data, dict):
            raise ConfigError(name, "must be a table")
        self.name = name
        self.data = dict(data)
        self.known: set[str] = set()

    def key(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def get(self, key: str, default: T, convert: Callable[[Any], T] | None = None) -> T:
        self.known.add(key)
        if key not in self.data:
            return default
        value = self.data[key]
        try:
            if convert is not None:
                return convert(value)
            if isinstance(default, bool) and not isinstance(value, bool):
                raise ValueError("must be true or false")
            wants_int = isinstance(default, int) and not isinstance(default, bool)
            if wants_int and (isinstance(value, bool) or not isinstance(value, int)):
                raise ValueError("must be an integer")
            if isinstance(default, str) and not isinstance(value, str):
                raise ValueError("must be a string")
            return value  # type: ignore[no-any-return]
        except ConfigError:
            raise
        except (ValueError, TypeError) as exc:
            raise ConfigError(self.key(key), str(exc)) from None

    def secret(self, key: str, default: str = "") -> Secret:
        return Secret(self.key(key), self.get(key, default))

    def address(self, key: str, default: str = "", required: bool = False) -> str:
        value = self.get(key, default)
        if required and not value:
            raise ConfigError(self.key(key), "is required")
        if value and not _ADDRESS.match(value):
            raise ConfigError(self.key(key), f"{value!r} is not an email address")
        return value.lower()

    def strings(self, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        def convert(value: Any) -> tuple[str, ...]:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ValueError("must be a list of strings")
            return tuple(value)

        return self.get(key, default, convert)

    def duration(self, key: str, default: timedelta) -> timedelta:
        return self.get(key, default, parse_duration)

    def size(self, key: str, default: int) -> int:
        return self.get(key, default, parse_size)

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.known)
        if unknown:
            raise ConfigError(self.key(unknown[0]), "is not a known setting")


def _listen(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^[^\s]+:\d{1,5}$", value):
        raise ValueError(f"{value!r} is not host:port")
    port = int(value.rsplit(":", 1)[1])
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range")
    return value


def _hours_range(value: Any) -> tuple[int, int] | None:
    if value in ("", None):
        return None
    match = _HOURS.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a range like '10:00-17:40'")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if not (0 <= start < end <= 24 * 60 and m1 < 60 and m2 < 60):
        raise ValueError(f"{value!r} is not a valid range of the day")
    return start, end


def _prefix(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]{0,15}", value):
        raise ValueError("must be 1-16 letters or digits, starting with a letter")
    return value.upper()


def _probability(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise ValueError("must be a number between 0 and 1")
    return float(value)


def _positive(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("must be a whole number of at least 1")
    return value


def _entries(value: Any) -> tuple[str, ...]:
    """Allow/deny entries: full addresses, or domains written "@example.com" or "example.com"."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError("must be a list of addresses or domains")
    entries = []
    for entry in value:
        entry = entry.strip().lower()
        if not entry or " " in entry or entry.count("@") > 1 or entry.endswith("@"):
            raise ValueError(f"{entry!r} is not an address or a domain")
        entries.append(entry if "@" in entry else "@" + entry)
    return tuple(entries)


def _array(data: dict[str, Any], name: str) -> list[_Section]:
    items = data.get(name, [])
    if not isinstance(items, list):
        raise ConfigError(name, f"must be an array of tables ([[{name}]])")
    return [_Section(f"{name}[{i}]", item) for i, item in enumerate(items)]


def parse_config(data: dict[str, Any], source: Path | None = None) -> Config:
    """Validate a TOML document already read into a dict."""
    top = _Section("", data)
    top.known.update({"imap", "teams", "agents", "organizations", "routing", "assignment", "labels"})

    d = _Section("desk", top.get("desk", {}, dict))
    desk = DeskConfig(
        name=d.get("name", DeskConfig.name),
        addresses=tuple(a.lower() for a in d.strings("addresses", DeskConfig.addresses)),
        ticket_prefix=d.get("ticket_prefix", "MD", _prefix),
        secret=d.secret("secret", "env:MAILDESK_SECRET"),
        lead=d.address("lead"),
        staff_domains=tuple(x.lower().lstrip("@") for x in d.strings("staff_domains", ())),
    )
    for i, address in enumerate(desk.addresses):
        if not _ADDRESS.match(address):
            raise ConfigError(f"desk.addresses[{i}]", f"{address!r} is not an email address")
    if not desk.addresses:
        raise ConfigError("desk.addresses", "needs at least one support address")
    d.finish()

    db = _Section("database", top.get("database", {}, dict))
    database_url = db.get("url", DEFAULT_DB_URL)
    database_pool = db.get("pool_size", 10)
    if not 1 <= database_pool <= 1000:
        raise ConfigError("database.pool_size", "must be between 1 and 1000")
    db.finish()

    s = _Section("storage", top.get("storage", {}, dict))
    storage = StorageConfig(path=Path(s.get("path", "var")))
    s.finish()

    sm = _Section("smtp", top.get("smtp", {}, dict))
    smtp = SmtpConfig(
        listen=sm.get("listen", SmtpConfig.listen, _listen),
        max_size=sm.size("max_size", SmtpConfig.max_size),
        lmtp=sm.get("lmtp", False),
        tls_cert=sm.get("tls_cert", ""),
        tls_key=sm.get("tls_key", ""),
        require_tls=sm.get("require_tls", False),
    )
    for key in ("tls_cert", "tls_key"):
        value = getattr(smtp, key)
        if value and not Path(value).is_file():
            raise ConfigError(f"smtp.{key}", f"{value} is not a readable file")
    if bool(smtp.tls_cert) != bool(smtp.tls_key):
        raise ConfigError(
            "smtp.tls_key" if smtp.tls_cert else "smtp.tls_cert", "STARTTLS needs both tls_cert and tls_key"
        )
    if smtp.require_tls and not smtp.tls_cert:
        raise ConfigError("smtp.require_tls", "needs tls_cert and tls_key")
    sm.finish()

    o = _Section("outbound", top.get("outbound", {}, dict))
    relay = o.get("relay", OutboundConfig.relay)
    if not re.match(r"^(maildir:.+|smtps?://[^/\s]+)$", relay):
        raise ConfigError(
            "outbound.relay", f"{relay!r}: use maildir:PATH, smtp://host:port or smtps://host:port"
        )
    ca_file = o.get("ca_file", "")
    if ca_file and not Path(ca_file).is_file():
        raise ConfigError("outbound.ca_file", f"{ca_file} is not a readable file")
    outbound = OutboundConfig(
        relay=relay, username=o.get("username", ""), password=o.secret("password"), ca_file=ca_file
    )
    o.finish()

    imap = []
    for sec in _array(data, "imap"):
        host = sec.get("host", "")
        if not host:
            raise ConfigError(sec.key("host"), "is required")
        tls = sec.get("tls", "ssl")
        if tls not in ("ssl", "starttls", "none"):
            raise ConfigError(sec.key("tls"), "must be ssl, starttls or none")
        if tls == "none" and host not in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError(sec.key("tls"), "none is allowed only for a loopback host")
        folders = sec.strings("folders", ("INBOX",))
        if not folders or not all(folders):
            raise ConfigError(sec.key("folders"), "must name at least one folder")
        processed = sec.get("processed_folder", "")
        if processed in folders:
            raise ConfigError(sec.key("processed_folder"), "must not be one of the folders read")
        if not sec.get("username", ""):
            raise ConfigError(sec.key("username"), "is required")
        poll_interval = sec.duration("poll_interval", timedelta(seconds=60))
        if poll_interval < timedelta(seconds=1):
            raise ConfigError(sec.key("poll_interval"), "must be at least 1s")
        imap.append(
            ImapAccount(
                host=host,
                port=sec.get("port", 993 if tls == "ssl" else 143),
                tls=tls,
                username=sec.get("username", ""),
                password=sec.secret("password"),
                folders=folders,
                processed_folder=processed,
                idle=sec.get("idle", True),
                poll_interval=poll_interval,
                ca_file=sec.get("ca_file", ""),
            )
        )
        sec.finish()

    teams = []
    for sec in _array(data, "teams"):
        name = sec.get("name", "")
        if not name:
            raise ConfigError(sec.key("name"), "is required")
        every = sec.get("every_ticket", False)
        if every and not sec.data.get("address"):
            raise ConfigError(sec.key("every_ticket"), "needs the team's address")
        teams.append(TeamConfig(name=name, address=sec.address("address"), every_ticket=every))
        sec.finish()
    team_names = {t.name for t in teams}

    agents = []
    for sec in _array(data, "agents"):
        team = sec.get("team", "")
        if team and team not in team_names:
            raise ConfigError(sec.key("team"), f"{team!r} is not one of the [[teams]]")
        tier = sec.get("tier", 1)
        if tier not in (1, 2, 3):
            raise ConfigError(sec.key("tier"), "must be 1, 2 or 3")
        agents.append(
            AgentConfig(
                address=sec.address("address", required=True),
                name=sec.get("name", ""),
                team=team,
                tier=tier,
            )
        )
        sec.finish()

    organizations = []
    for sec in _array(data, "organizations"):
        name = sec.get("name", "")
        if not name:
            raise ConfigError(sec.key("name"), "is required")
        organizations.append(
            OrganizationConfig(
                name=name,
                domains=tuple(x.lower().lstrip("@") for x in sec.strings("domains", ())),
                priority=sec.get("priority", False),
                account_manager=sec.address("account_manager"),
            )
        )
        sec.finish()

    org_names = {o.name for o in organizations}
    label_rules = []
    for sec in _array(data, "labels"):
        name = " ".join(str(sec.get("name", "")).split())[:40]
        if not name:
            raise ConfigError(sec.key("name"), "is required")
        organization = sec.get("organization", "")
        if organization and organization not in org_names:
            raise ConfigError(
                sec.key("organization"), f"{organization!r} is not one of the [[organizations]]"
            )
        rule = LabelRule(
            name=name,
            organization=organization,
            domains=tuple(d.lower().lstrip("@") for d in sec.strings("domains", ())),
            keywords=tuple(k.lower() for k in sec.strings("keywords", ())),
        )
        if not (rule.organization or rule.domains or rule.keywords):
            raise ConfigError(sec.key("name"), "a label rule needs an organization, domains or keywords")
        label_rules.append(rule)
        sec.finish()

    routing = []
    for sec in _array(data, "routing"):
        team = sec.get("team", "")
        if team not in team_names:
            raise ConfigError(sec.key("team"), f"{team!r} is not one of the [[teams]]")
        organization = sec.get("organization", "")
        if organization and organization not in org_names:
            raise ConfigError(
                sec.key("organization"), f"{organization!r} is not one of the [[organizations]]"
            )
        issue_types = sec.strings("issue_types", ())
        for issue_type in issue_types:
            if issue_type not in ISSUE_TYPES:
                raise ConfigError(sec.key("issue_types"), f"{issue_type!r} is not an issue type")
        tier = sec.get("tier", 1)
        if tier not in (1, 2, 3):
            raise ConfigError(sec.key("tier"), "must be 1, 2 or 3")
        routing.append(
            RoutingRule(
                team=team,
                tier=tier,
                organization=organization,
                domains=tuple(d.lower().lstrip("@") for d in sec.strings("domains", ())),
                issue_types=issue_types,
                keywords=tuple(k.lower() for k in sec.strings("keywords", ())),
                account_manager=sec.get("account_manager", False),
            )
        )
        sec.finish()

    h = _Section("hours", top.get("hours", {}, dict))
    tz = h.get("timezone", HoursConfig.timezone)
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError("hours.timezone", f"{tz!r} is not a known time zone") from None
    week: dict[str, tuple[int, int]] = {}
    if any(day in h.data for day in _WEEKDAYS):
        for day in _WEEKDAYS:
            span = h.get(day, None, _hours_range)
            if span:
                week[day] = span
    else:
        week = dict(HoursConfig().week)
    holidays = h.strings("holidays", ())
    for i, day in enumerate(holidays):
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            raise ConfigError(f"hours.holidays[{i}]", f"{day!r} is not a date like 2026-12-25")
    hours = HoursConfig(timezone=tz, week=week, holidays=holidays)
    h.finish()

    sl = _Section("sla", top.get("sla", {}, dict))
    updates = sl.get("status_update", None, dict)
    status_update = (
        dict(SlaConfig().status_update) if updates is None else _by_priority("status_update", updates)
    )
    first_by = _by_priority("first_response_by_priority", sl.get("first_response_by_priority", {}, dict))
    digest = sl.strings("digest", SlaConfig.digest)
    for i, at in enumerate(digest):
        if not re.fullmatch(r"([01]?\d|2[0-3]):[0-5]\d", at):
            raise ConfigError(f"sla.digest[{i}]", f"{at!r} is not a time like 11:30")
    sla = SlaConfig(
        first_response=sl.duration("first_response", SlaConfig.first_response),
        unclaimed_alert=sl.duration("unclaimed_alert", SlaConfig.unclaimed_alert),
        no_update=sl.duration("no_update", SlaConfig.no_update),
        status_update=status_update,
        confirm_within=_business_days(sl, "confirm_within"),
        info_within=_business_days(sl, "info_within"),
        escalate_on_breach=sl.get("escalate_on_breach", True),
        digest=digest,
        every=sl.duration("every", SlaConfig.every),
        scheduling_after=sl.duration("scheduling_after", SlaConfig.scheduling_after),
        first_response_by_priority=first_by,
    )
    sl.finish()

    wk = _Section("workers", top.get("workers", {}, dict))
    workers = WorkersConfig(lease=wk.duration("lease", WorkersConfig.lease))
    if workers.lease.total_seconds() < 1:
        raise ConfigError("workers.lease", "must be at least a second")
    wk.finish()

    lk = _Section("links", top.get("links", {}, dict))
    links = LinksConfig(
        **{name: _url(lk, name) for name in ("billing", "training", "cancellation", "scheduling")}
    )
    lk.finish()

    v = _Section("vendor", top.get("vendor", {}, dict))
    vendor = VendorConfig(
        name=v.get("name", ""),
        address=v.address("address"),
        domains=tuple(x.lower() for x in v.strings("domains", ())),
        after_hours=v.get("after_hours", True),
        unclaimed_after=v.duration("unclaimed_after", VendorConfig.unclaimed_after),
        max_open=v.get("max_open", 50),
    )
    v.finish()

    t = _Section("threading", top.get("threading", {}, dict))
    threading = ThreadingConfig(
        reopen_window=t.duration("reopen_window", ThreadingConfig.reopen_window),
        subject_window=t.duration("subject_window", ThreadingConfig.subject_window),
        same_organization=t.get("same_organization", True),
    )
    t.finish()

    cl = _Section("classify", top.get("classify", {}, dict))
    classify = ClassifyConfig(
        issue_type_model=cl.get("issue_type_model", ClassifyConfig.issue_type_model),
        min_confidence=cl.get("min_confidence", ClassifyConfig.min_confidence, _probability),
        team_model=cl.get("team_model", ClassifyConfig.team_model),
        team_min_confidence=cl.get("team_min_confidence", ClassifyConfig.team_min_confidence, _probability),
        request_type_model=cl.get("request_type_model", ClassifyConfig.request_type_model),
    )
    cl.finish()
    assignment = top.get("assignment", "round-robin")
    if assignment not in ("round-robin", "least-open", "none"):
        raise ConfigError("assignment", "must be round-robin, least-open or none")

    sc = _Section("screen", top.get("screen", {}, dict))
    screen = ScreenConfig(
        spam_model=sc.get("spam_model", ScreenConfig.spam_model),
        spam_threshold=sc.get("spam_threshold", None, _probability),
        allow=sc.get("allow", (), _entries),
        deny=sc.get("deny", (), _entries),
        trust_upstream=sc.get("trust_upstream", True),
        sender_limit=sc.get("sender_limit", ScreenConfig.sender_limit, _positive),
        sender_window=sc.duration("sender_window", ScreenConfig.sender_window),
    )
    sc.finish()

    rs = _Section("respond", top.get("respond", {}, dict))
    respond = RespondConfig(
        acknowledge=rs.get("acknowledge", True),
        auto_reply_limit=rs.get("auto_reply_limit", RespondConfig.auto_reply_limit, _positive),
        auto_reply_window=rs.duration("auto_reply_window", RespondConfig.auto_reply_window),
    )
    rs.finish()

    li = _Section("limits", top.get("limits", {}, dict))
    limits = LimitsConfig(
        message=li.size("message", LimitsConfig.message),
        attachment=li.size("attachment", LimitsConfig.attachment),
        html=li.size("html", LimitsConfig.html),
        text=li.size("text", LimitsConfig.text),
        parts=li.get("parts", LimitsConfig.parts),
    )
    li.finish()
    top.finish()

    return Config(
        desk=desk,
        database_url=database_url,
        database_pool=database_pool,
        storage=storage,
        smtp=smtp,
        outbound=outbound,
        imap=tuple(imap),
        teams=tuple(teams),
        agents=tuple(agents),
        organizations=tuple(organizations),
        hours=hours,
        sla=sla,
        vendor=vendor,
        links=links,
        workers=workers,
        label_rules=tuple(label_rules),
        threading=threading,
        limits=limits,
        screen=screen,
        respond=respond,
        classify=classify,
        routing=tuple(routing),
        assignment=assignment,
        source=source,
    )


def load_config(path: Path | None) -> Config:
    """Read `path`, or ./maildesk.toml when present, or return the built-in defaults."""
    if path is None:
        default = Path("maildesk.toml")
        if not default.exists():
            return Config()
        path = default
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read the file: {exc.strerror}") from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(str(path), "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), f"is not valid TOML: {exc}") from None
    config = parse_config(data, source=path)
    # relative storage paths are relative to the config file, so cron jobs behave like the shell
    if not config.storage.path.is_absolute():
        base = path.parent
        object.__setattr__(config, "storage", StorageConfig(path=base / config.storage.path))
    return config
