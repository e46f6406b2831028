"""The pre-rendered statements must write exactly what the ORM would write."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from maildesk.tickets.store.db import open_database
from maildesk.tickets.store.fast import Statements
from maildesk.tickets.store.models import Message, Ticket


def test_insert_matches_the_orm(tmp_path: Path) -> None:
    database = open_database(f"sqlite:///{tmp_path / 'f.db'}")
    sql = Statements(database)
    now = datetime(2026, 11, 23, 9, 30)
    values = {
        "number": 7,
        "subject": "Printer",
        "subject_key": "printer",
        "status": "new",
        "requester": None,
        "organization": None,
        "created_at": now,
        "updated_at": now,
    }
    first = sql.insert(Ticket, values)
    second = sql.insert(Ticket, {**values, "number": 8})  # the cached statement, new parameters
    orm = Ticket.create(**{**values, "number": 9})
    rows = {t.number: t for t in Ticket.select()}
    assert {first, second} == {rows[7].id, rows[8].id} and orm.id == rows[9].id
    for number in (7, 8):
        assert rows[number].created_at == rows[9].created_at == now
        assert rows[number].priority == rows[9].priority == "normal", (
            "defaults are filled as the ORM fills them"
        )
    message = sql.insert(Message, {"ticket": first, "message_id": "m@x", "arrived_at": now, "text": "hi"})
    stored = Message.get_by_id(message)
    assert stored.ticket_id == first and stored.visibility == "public" and stored.text == "hi"
    ((max_number,),) = sql.query(
        "max", lambda _: Ticket.select(Ticket.number).order_by(Ticket.number.desc()).limit(1), []
    )
    assert max_number == 9
