"""Escalation tiers (seed 003): first-line support, the senior engineers, the head of IT."""

from __future__ import annotations

from typing import Final

from maildesk.config import AgentConfig, Config

TIERS: Final = {1: "our support team", 2: "our senior engineers", 3: "the head of IT"}
LAST_TIER: Final = max(TIERS)


def agents_of_tier(config: Config, tier: int, team: str) -> list[AgentConfig]:
    """Who takes a ticket escalated to `tier`: that tier's agents of its team, else of any team."""
    agents = [a for a in config.agents if a.tier == tier]
    return [a for a in agents if a.team == team] or agents
