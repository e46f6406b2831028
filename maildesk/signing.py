"""The desk's signing secret: the configured one, or one generated once and kept in the database.

Signed reply addresses are only as good as the secret behind them. A deployment that
sets `desk.secret` (literal, `env:` or `file:`) gets that; one that leaves the default
`env:MAILDESK_SECRET` unset gets 256 random bits made on first use and stored in the
`setting` table, so every worker and every host on the same database signs and verifies
alike, and a restart does not invalidate the addresses already in agents' mailboxes.
An explicitly configured secret that cannot be read is a configuration error, never a
silent fallback.
"""

from __future__ import annotations

import logging
import os
import secrets

from maildesk.config import Config
from maildesk.tickets.store.models import Setting

log = logging.getLogger(__name__)

DEFAULT_SPEC = "env:MAILDESK_SECRET"
_SETTING = "desk.secret"
_cache: dict[str, str] = {}


def desk_secret(config: Config) -> str:
    """The secret that signs and verifies reply addresses for this desk."""
    spec = config.desk.secret.spec
    if spec and not (spec == DEFAULT_SPEC and DEFAULT_SPEC[4:] not in os.environ):
        return config.desk.secret.reveal()
    database = Setting._meta.database
    key = str(getattr(database, "database", "")) + "|" + type(database).__name__
    cached = _cache.get(key)
    if cached is not None:
        return cached
    with database.atomic():
        # insert-if-absent, then read: two processes racing on first use agree on one value
        Setting.insert(name=_SETTING, value=secrets.token_urlsafe(32)).on_conflict_ignore().execute()
        value = Setting.get_by_id(_SETTING).value
    _cache[key] = value
    log.info("signing reply addresses with the desk's generated secret (desk.secret is not set)")
    return str(value)


def forget() -> None:
    """Drop the cached secret (tests that swap databases in one process)."""
    _cache.clear()
