"""Request type (seed 001), beside the issue type: what the customer wants done with it.

general inquiry (support handles it), technical issue (investigate; maybe a development
ticket), configuration change (documents collected, handed to the account manager), feedback
(recorded for the product people). Rules first, in that order of weight: a request to change
a setting or a plan is a configuration change whatever words of trouble it uses; wishes and
suggestions are feedback; trouble words, or an issue type of Problem or Incident, make a
technical issue; anything else is a general inquiry. Agents correct it with `#request`, which
is kept as a label like every correction, for a model to learn from once there are enough.
"""

from __future__ import annotations

import re
from typing import Final

GENERAL: Final = "general inquiry"
TECHNICAL: Final = "technical issue"
CONFIGURATION: Final = "configuration change"
FEEDBACK: Final = "feedback"
REQUEST_TYPES: Final = (GENERAL, TECHNICAL, CONFIGURATION, FEEDBACK)

_CONFIGURATION = re.compile(
    r"\b(?:configuration\s+change|config(?:uration)?\s+(?:update|request)|change\s+request"
    r"|(?:change|update|modify|adjust)\s+(?:the\s+|our\s+|my\s+)?(?:configuration|settings?|template|templates"
    r"|plan|subscription|tariff|private\s+data|company\s+data|billing\s+details|user\s+rights|permissions)"
    r"|upgrade\s+(?:to|our|my|the)\b|add\s+(?:a\s+)?(?:new\s+)?(?:equipment|users?|seats?|licen[cs]es?|sites?)"
    r"|(?:remove|delete)\s+(?:a\s+)?(?:users?|seats?|licen[cs]es?)"
    r"|konfigurations[äa]nderung|einstellungen\s+[äa]ndern|changement\s+de\s+configuration)\b",
    re.IGNORECASE,
)
_FEEDBACK = re.compile(
    r"\b(?:feature\s+request|enhancement|suggestion|suggest(?:ing)?|feedback|it\s+would\s+be\s+(?:nice|great|helpful"
    r"|useful)|would\s+love|wish\s+(?:list|there\s+was)|idea\s+for|could\s+you\s+(?:add|consider)"
    r"|verbesserungsvorschlag|anregung|suggestion\s+d'am[ée]lioration)\b",
    re.IGNORECASE,
)
_TROUBLE = re.compile(
    r"\b(?:error|errors|bug|broken|crash(?:es|ed)?|fail(?:s|ed|ing|ure)?|not\s+working|doesn'?t\s+work"
    r"|does\s+not\s+work|won'?t|cannot|can'?t|unable|down|outage|stopped|offline|jammed|wrong|missing"
    r"|fehler|funktioniert\s+nicht|geht\s+nicht|erreur|ne\s+fonctionne\s+pas|panne)\b",
    re.IGNORECASE,
)


def request_type(subject: str, text: str, issue_type: str = "") -> tuple[str, str]:
    """(request type, why) for a message's subject and new text."""
    body = f"{subject}\n{text[:5000]}"
    found = _CONFIGURATION.search(body)
    if found:
        return CONFIGURATION, f'asks for a change ("{found.group(0)}")'
    found = _FEEDBACK.search(body)
    if found:
        return FEEDBACK, f'a suggestion ("{found.group(0)}")'
    found = _TROUBLE.search(body)
    if found:
        return TECHNICAL, f'reports trouble ("{found.group(0)}")'
    if issue_type in ("Problem", "Incident"):
        return TECHNICAL, f"issue type {issue_type}"
    return GENERAL, "no change, suggestion or trouble named"


def named(text: str) -> str | None:
    """The request type an agent means by `#request config` and the like."""
    wanted = " ".join(text.lower().replace("-", " ").split())
    for kind in REQUEST_TYPES:
        if wanted and (kind == wanted or kind.startswith(wanted) or kind.split()[0] == wanted.split()[0]):
            return kind
    return {"config": CONFIGURATION, "change": CONFIGURATION, "bug": TECHNICAL, "inquiry": GENERAL,
            "question": GENERAL, "suggestion": FEEDBACK}.get(wanted)  # fmt: skip
