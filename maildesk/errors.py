"""One hierarchy of errors: library code raises these, only the CLI turns them into exit codes."""

from __future__ import annotations


class MaildeskError(Exception):
    """Base of every error maildesk raises on purpose."""


class UserError(MaildeskError):
    """Something the user can fix: a bad path, an unknown ticket, a bad argument."""


class ConfigError(UserError):
    """The configuration is invalid; the message names the key at fault."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config key {key}: {problem}")
        self.key = key
        self.problem = problem


class NotFound(UserError):
    """A ticket, quarantine entry or other record the user named does not exist."""


class DatabaseError(UserError):
    """The database cannot be opened or is of an unknown kind."""


class SpoolError(MaildeskError):
    """The spool could not store a message durably (disk full, permissions)."""


class ParseError(MaildeskError):
    """A message could not be parsed at all; the raw bytes stay in quarantine."""
