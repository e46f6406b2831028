"""Does a customer's reply to a resolved ticket confirm it is resolved? (seed 001's first closing rule)

Deliberately cautious: a short reply that says it works, or asks us to close, and says
nothing that sounds like "but", "still" or "not". A wrong "yes" closes a ticket that is
still broken, so when in doubt the reply reopens the ticket as any other reply would (and
the closing mail says that answering reopens it).
"""

from __future__ import annotations

import re

_LIMIT = 600  # characters: a longer reply says more than "thanks, it works"

_CONFIRMS = re.compile(
    r"\b(?:"
    r"(?:it|that|this|everything|all|printer|vpn|access|login)\s+(?:now\s+)?(?:works|is\s+working|worked|is\s+fine"
    r"|is\s+ok(?:ay)?|is\s+good|is\s+fixed|is\s+solved|is\s+resolved)"
    r"|works?\s+(?:now|again|fine|perfectly|great)|working\s+(?:now|again)"
    r"|(?:problem|issue|it)\s+(?:is\s+|has\s+been\s+)?(?:solved|resolved|fixed)"
    r"|(?:you\s+)?(?:can|may)\s+close|please\s+close|feel\s+free\s+to\s+close|ok(?:ay)?\s+to\s+close"
    r"|all\s+good|(?:that|this)\s+(?:did\s+(?:it|the\s+trick)|fixed\s+it|solved\s+it|helped)"
    r"|funktioniert\s+(?:wieder|jetzt|einwandfrei)|(?:problem|ticket)\s+(?:ist\s+)?(?:gel[öo]st|erledigt)"
    r"|kann\s+geschlossen\s+werden"
    r"|[çc]a\s+(?:marche|fonctionne)|probl[èe]me\s+r[ée]solu|vous\s+pouvez\s+fermer"
    r"|funziona|funciona"
    r")\b",
    re.IGNORECASE,
)
_DOUBTS = re.compile(
    r"\b(?:not|no\s+longer|still|again\s+(?:broken|failing|down)|but|however|except|although|only\s+partly"
    r"|doesn'?t|isn'?t|won'?t|can'?t|cannot|didn'?t|nicht|immer\s+noch|aber|jedoch|toujours|pas|mais)\b"
    r"|\?",
    re.IGNORECASE,
)


def is_confirmation(text: str) -> bool:
    """True for a short reply that confirms the problem is solved and raises nothing new."""
    text = " ".join(text.split())
    if not text or len(text) > _LIMIT:
        return False
    return bool(_CONFIRMS.search(text)) and not _DOUBTS.search(text)
