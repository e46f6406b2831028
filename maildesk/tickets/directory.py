"""The people and organisations maildesk knows: configured ones mirrored into the store, and contacts."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from maildesk.config import Config
from maildesk.parse.message import Address

if TYPE_CHECKING:
    from maildesk.tickets.store.fast import Statements

from maildesk.tickets.store.models import Agent, Contact, Organization, Team


def sync_directory(config: Config) -> None:
    """Mirror [[teams]], [[agents]] and [[organizations]] from the config into the store."""
    for team in config.teams:
        row, created = Team.get_or_create(name=team.name, defaults={"address": team.address})
        if not created and row.address != team.address:
            row.address = team.address
            row.save()
    teams = {t.name: t for t in Team.select()}
    configured = set()
    for agent in config.agents:
        configured.add(agent.address)
        values = {
            "name": agent.name,
            "team": teams.get(agent.team),
            "tier": agent.tier,
            "active": True,
        }
        row, created = Agent.get_or_create(address=agent.address, defaults=values)
        if not created:
            Agent.update(**values).where(Agent.id == row.id).execute()
    if configured:
        Agent.update(active=False).where(Agent.address.not_in(configured)).execute()
    else:
        Agent.update(active=False).execute()
    for org in config.organizations:
        values = {
            "domains": " ".join(org.domains),
            "priority": org.priority,
            "account_manager": org.account_manager,
        }
        row, created = Organization.get_or_create(name=org.name, defaults=values)
        if not created:
            Organization.update(**values).where(Organization.id == row.id).execute()


def contact_for(
    address: Address,
    config: Config,
    now: datetime,
    org_ids: dict[str, int] | None = None,
    cache: dict[str, Contact] | None = None,
    sql: Statements | None = None,
) -> Contact:
    """The contact for an address, created on first sight and linked to its organisation.

    `cache` (email -> Contact) saves a query per address; whoever passes one must clear it
    when a transaction rolls back, since a contact created inside it is gone again.
    """
    if cache is not None and address.email in cache:
        return cache[address.email]
    if sql is not None:
        found = sql.get(Contact, "contact-by-email", _contact_by_email, [address.email])
        contact = found[0] if found else None
    else:
        contact = Contact.get_or_none(Contact.email == address.email)
    org_config = config.organization_for(address.email)
    org_id = None
    if org_config is not None:
        if org_ids is not None and org_config.name in org_ids:
            org_id = org_ids[org_config.name]
        else:
            row = Organization.get_or_none(Organization.name == org_config.name)
            org_id = row.id if row else None
    if contact is None:
        values = {"email": address.email, "name": address.name, "organization": org_id, "created_at": now}
        if sql is not None:
            contact = Contact(id=sql.insert(Contact, values), **values)
            contact._dirty.clear()
        else:
            contact = Contact.create(**values)
    elif (address.name and not contact.name) or (org_id is not None and contact.organization_id != org_id):
        contact.name = contact.name or address.name
        contact.organization_id = org_id if org_id is not None else contact.organization_id
        contact.save()
    if cache is not None:
        if len(cache) > 20_000:
            cache.clear()
        cache[address.email] = contact
    return contact


def _contact_by_email(_: int) -> Any:
    return Contact.select().where(Contact.email == "")


def organization_ids() -> dict[str, int]:
    """Organisation ids by name, read once per worker (they change only with the config)."""
    return {row.name: row.id for row in Organization.select(Organization.id, Organization.name)}
