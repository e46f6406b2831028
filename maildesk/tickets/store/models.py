"""The peewee models: tickets and their conversation, the spool, the outbox, and the audit trail.

Models bind to `database_proxy` at start-up (see `db.open_database`); nothing here opens a
connection at import time. Times are naive UTC datetimes throughout.
"""

from __future__ import annotations

from peewee import (
    AutoField,
    BigIntegerField,
    BlobField,
    BooleanField,
    CharField,
    DatabaseProxy,
    DateTimeField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    TextField,
)

database_proxy = DatabaseProxy()


class BaseModel(Model):
    """Models declare what peewee adds at class creation, for the type checker only.

    A model without a primary key field gets an implicit `id = AutoField()`, and every
    `ForeignKeyField` named `x` gets an `x_id` accessor: the related row's id on an
    instance, the foreign key field itself on the class. The bare annotations in the models
    below (`id: AutoField[int]`, `x_id: ForeignKeyField[int | None]`) say so to mypy and do
    nothing at run time: peewee's metaclass only looks at values that are fields, and with
    `from __future__ import annotations` the annotations are never even evaluated.
    """

    # set by Model.__init__: the names of the fields set since the row was read (peewee's
    # bookkeeping behind dirty_fields and is_dirty)
    _dirty: set[str]

    class Meta:
        database = database_proxy
        legacy_table_names = False


class SchemaVersion(BaseModel):
    """One row per applied migration; see migrations.py."""

    version = IntegerField(primary_key=True)
    name = CharField()
    applied_at = DateTimeField()


class Organization(BaseModel):
    id: AutoField[int]
    name = CharField(unique=True)
    domains = TextField(default="")  # space separated
    priority = BooleanField(default=False)
    account_manager = CharField(default="")


class Team(BaseModel):
    id: AutoField[int]
    name = CharField(unique=True)
    address = CharField(default="")


class Agent(BaseModel):
    id: AutoField[int]
    address = CharField(unique=True)
    name = CharField(default="")
    team = ForeignKeyField(Team, null=True, on_delete="SET NULL")
    team_id: ForeignKeyField[int | None]
    tier = IntegerField(default=1)
    active = BooleanField(default=True)


class Contact(BaseModel):
    id: AutoField[int]
    email = CharField(unique=True)
    name = CharField(default="")
    organization = ForeignKeyField(Organization, null=True, on_delete="SET NULL")
    organization_id: ForeignKeyField[int | None]
    undeliverable = BooleanField(default=False)
    created_at = DateTimeField()


class RawMail(BaseModel):
    """The raw bytes of every spooled message, exactly as received, by sha256."""

    sha256 = CharField(max_length=64, primary_key=True)
    data = BlobField()


class InboundMail(BaseModel):
    """The spool: one row per distinct message received, whatever became of it."""

    id: AutoField[int]
    sha256 = CharField(max_length=64, unique=True)
    # sha256 of Message-ID + body: the same message delivered twice by different routes
    dedupe_key = CharField(max_length=64, unique=True)
    message_id = TextField(default="")
    size = BigIntegerField()
    source = CharField(max_length=32)  # smtp, imap, file, mbox, stdin
    source_ref = TextField(default="")  # file path, mbox offset, imap account/folder/uid
    received_at = DateTimeField(index=True)
    state = CharField(max_length=16, index=True, default="received")
    reason = TextField(default="")
    attempts = IntegerField(default=0)
    processed_at = DateTimeField(null=True)
    claimed_until = DateTimeField(null=True)
    spam_score = FloatField(null=True)  # the screen's spam probability, when the model ran


class Ticket(BaseModel):
    id: AutoField[int]
    number = IntegerField(unique=True)
    subject = TextField(default="")
    subject_key = CharField(max_length=255, index=True, default="")  # normalised for matching
    status = CharField(max_length=24, index=True, default="new")
    issue_type = CharField(max_length=32, default="unclassified")
    request_type = CharField(max_length=32, default="")  # seed 001: general inquiry, technical issue, ...
    issue_record = TextField(default="{}")  # seed 003: what the customer's mail told us (JSON)
    type_confidence = FloatField(null=True)
    priority = CharField(max_length=16, default="normal")
    team = CharField(default="")
    assignee = ForeignKeyField(Agent, null=True, on_delete="SET NULL")
    assignee_id: ForeignKeyField[int | None]
    requester = ForeignKeyField(Contact, null=True, on_delete="SET NULL")
    requester_id: ForeignKeyField[int | None]
    organization = ForeignKeyField(Organization, null=True, on_delete="SET NULL")
    organization_id: ForeignKeyField[int | None]
    created_at = DateTimeField(index=True)
    updated_at = DateTimeField(index=True)
    first_response_at = DateTimeField(null=True)
    closed_at = DateTimeField(null=True)
    vendor = CharField(max_length=24, null=True)
    merged_into = ForeignKeyField("self", null=True, on_delete="SET NULL")
    merged_into_id: ForeignKeyField[int | None]
    tier = IntegerField(default=1)  # 1 first-line, 2 senior engineers, 3 the head (seed 003)
    # the SLA clock: when it must look at this ticket next (null: nothing can fall due), the
    # first-response deadline it worked out, and since when the ticket waits for the customer
    sla_next_at = DateTimeField(null=True, index=True)
    first_response_due = DateTimeField(null=True)
    waiting_since = DateTimeField(null=True)

    class Meta:
        # open tickets by team and by assignee (the queues, least-open assignment), the newest
        # tickets of a subject (threading); migration 9, which also indexes senders' mail by time
        indexes = (
            (("team", "status"), False),
            (("assignee", "status"), False),
            (("subject_key", "updated_at"), False),
        )


class SlaMark(BaseModel):
    """Something the SLA clock did once and must never do again (a reminder for one stretch)."""

    ticket = ForeignKeyField(Ticket, on_delete="CASCADE")
    ticket_id: ForeignKeyField[int]
    kind = CharField(max_length=32)  # first_response, unclaimed, update, status_update, dispatch, ...
    key = CharField(max_length=64, default="")  # what makes it the same occasion (a timestamp)
    at = DateTimeField()

    class Meta:
        indexes = ((("ticket", "kind", "key"), True),)


class Setting(BaseModel):
    """Values the desk makes for itself and every process must share (the generated secret)."""

    name = CharField(max_length=64, primary_key=True)
    value = TextField()


class TicketParticipant(BaseModel):
    id: AutoField[int]
    ticket = ForeignKeyField(Ticket, backref="participants", on_delete="CASCADE")
    ticket_id: ForeignKeyField[int]
    contact = ForeignKeyField(Contact, on_delete="CASCADE")
    contact_id: ForeignKeyField[int]
    role = CharField(max_length=16, default="cc")

    class Meta:
        indexes = ((("ticket", "contact"), True),)


class TicketLink(BaseModel):
    """A link between tickets; `kind` reads from `source` to `target` ("follow-up of")."""

    id: AutoField[int]
    source = ForeignKeyField(Ticket, backref="links_out", on_delete="CASCADE")
    source_id: ForeignKeyField[int]
    target = ForeignKeyField(Ticket, backref="links_in", on_delete="CASCADE")
    target_id: ForeignKeyField[int]
    kind = CharField(max_length=24)
    created_at = DateTimeField()

    class Meta:
        indexes = ((("source", "target", "kind"), True),)


class ExternalLink(BaseModel):
    """A ticket's link to something outside the desk: a development ticket (`#bug URL`)."""

    id: AutoField[int]
    ticket = ForeignKeyField(Ticket, backref="external_links", on_delete="CASCADE")
    url = TextField()
    kind = CharField(max_length=24, default="bug")
    created_at = DateTimeField()


class Message(BaseModel):
    id: AutoField[int]
    ticket = ForeignKeyField(Ticket, backref="messages", on_delete="CASCADE")
    ticket_id: ForeignKeyField[int]
    inbound = ForeignKeyField(InboundMail, null=True, unique=True, on_delete="SET NULL")
    inbound_id: ForeignKeyField[int | None]
    message_id = CharField(max_length=998, index=True)
    direction = CharField(max_length=3, default="in")
    visibility = CharField(max_length=8, default="public")
    kind = CharField(max_length=16, default="customer")
    from_addr = CharField(default="", index=True)  # indexed: the loop screen counts mail per sender
    from_name = CharField(default="")
    to = TextField(default="[]")  # JSON list of addresses
    cc = TextField(default="[]")
    date = DateTimeField(null=True)  # the Date header, UTC
    arrived_at = DateTimeField(index=True)
    subject = TextField(default="")
    text = TextField(default="")  # newly written text
    body = TextField(default="")  # the whole text part (for search and re-stripping)
    defects = TextField(default="[]")


class MessageReference(BaseModel):
    """Message-IDs a message points at (In-Reply-To and References), for out-of-order threading."""

    id: AutoField[int]
    message = ForeignKeyField(Message, backref="refs", on_delete="CASCADE")
    message_id: ForeignKeyField[int]
    ref = CharField(max_length=998, index=True)


class Attachment(BaseModel):
    id: AutoField[int]
    message = ForeignKeyField(Message, backref="attachments", on_delete="CASCADE")
    message_id: ForeignKeyField[int]
    filename = CharField()
    content_type = CharField(default="application/octet-stream")
    size = BigIntegerField()
    sha256 = CharField(max_length=64, index=True)
    path = TextField(default="")  # empty when the attachment was over the size limit
    content_id = CharField(default="")
    inline = BooleanField(default=False)


class Event(BaseModel):
    id: AutoField[int]
    ticket = ForeignKeyField(Ticket, backref="events", on_delete="CASCADE")
    ticket_id: ForeignKeyField[int]
    at = DateTimeField(index=True)
    kind = CharField(max_length=32)
    detail = TextField(default="")
    actor = CharField(default="")


class OutboundMail(BaseModel):
    """The outbox: a row first, sent later with retries."""

    id: AutoField[int]
    ticket = ForeignKeyField(Ticket, null=True, on_delete="SET NULL")
    ticket_id: ForeignKeyField[int | None]
    message_id = CharField(max_length=998, unique=True)
    recipients = TextField(default="[]")  # JSON list: the envelope recipients
    # the first recipient, lower-cased: automatic mail to one address is counted by it
    recipient = CharField(default="", index=True)
    kind = CharField(max_length=24, default="reply")  # acknowledgement, notification, reply, ...
    automatic = BooleanField(default=False)  # sent by maildesk itself, not written by a person
    sender = CharField(default="")  # the envelope sender (MAIL FROM)
    data = BlobField(null=True)  # the message exactly as it is to be sent
    path = TextField(default="")  # where a maildir relay put it
    state = CharField(max_length=16, index=True, default="queued")
    tries = IntegerField(default=0)
    next_try_at = DateTimeField(null=True, index=True)
    last_error = TextField(default="")
    created_at = DateTimeField()
    sent_at = DateTimeField(null=True)


class Label(BaseModel):
    """An agent-confirmed label (issue type, team, spam) kept for retraining."""

    id: AutoField[int]
    ticket = ForeignKeyField(Ticket, null=True, on_delete="SET NULL")
    ticket_id: ForeignKeyField[int | None]
    inbound = ForeignKeyField(InboundMail, null=True, on_delete="SET NULL")
    inbound_id: ForeignKeyField[int | None]
    kind = CharField(max_length=16)
    value = CharField()
    source = CharField(default="agent")
    created_at = DateTimeField()


class ImapState(BaseModel):
    id: AutoField[int]
    account = CharField()
    folder = CharField()
    uidvalidity = BigIntegerField()
    last_uid = BigIntegerField(default=0)

    class Meta:
        indexes = ((("account", "folder"), True),)


ALL_MODELS: tuple[type[BaseModel], ...] = (
    SchemaVersion,
    ExternalLink,
    Setting,
    SlaMark,
    Organization,
    Team,
    Agent,
    Contact,
    RawMail,
    InboundMail,
    Ticket,
    TicketParticipant,
    TicketLink,
    Message,
    MessageReference,
    Attachment,
    Event,
    OutboundMail,
    Label,
    ImapState,
)
