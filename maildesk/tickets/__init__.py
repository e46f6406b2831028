"""Tickets: the record stage, the directory of people, and the views the CLI prints."""

from maildesk.tickets.record import record

__all__ = ["record"]
