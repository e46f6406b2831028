"""Spam rule: the trained model, an upstream filter's verdict, sender authentication, and lists.

The order of evidence:
1. the deny list: always spam; the allow list, configured organisations and authenticated staff: never spam,
   unless the message fails authentication for that very domain (a forged From of a
   customer is exactly what a spammer would try);
2. an upstream filter's X-Spam-Flag / X-Spam-Status: Yes (when `screen.trust_upstream`);
3. the model's probability against its threshold; when the sender's domain failed DMARC
   (or both SPF and DKIM) in our own MTA's Authentication-Results, half the threshold is
   enough: a forged sender needs less evidence.
Spam is quarantined with its score and reasons, never deleted and never answered.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from maildesk.errors import UserError

if TYPE_CHECKING:
    from maildesk.classifier.handle import CheckedSpamModel
    from maildesk.config import Config
    from maildesk.parse.message import ParsedMail
    from maildesk.pipeline import MailContext, Verdict

log = logging.getLogger(__name__)

_RESULT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)
_DOMAIN_PROPERTY = re.compile(
    r"\b(?:header\.from|header\.d|header\.i|smtp\.mailfrom)\s*=\s*@?([^\s;()]+)", re.I
)


def load_configured_model(config: Config) -> CheckedSpamModel | None:
    """The model `screen.spam_model` names, or None when it is turned off or not installed.

    The folder is looked up as `find_model_folder` says. A model that exists but is tampered
    with or was trained by an incompatible version raises ModelError, which says to retrain.
    """
    name = config.screen.spam_model
    if not name:
        return None
    from maildesk.classifier.loading import find_model_folder

    folder = find_model_folder(config, name, Path.is_dir)
    if folder is not None:
        from maildesk.classifier.handle import CheckedSpamModel

        return CheckedSpamModel(folder)
    if name != "models/spam":
        raise UserError(f"config key screen.spam_model: no model at {name!r}")
    log.warning("no spam model installed (models/spam): screening with header signals and lists only")
    return None


def check(ctx: MailContext) -> Verdict | None:
    from maildesk.pipeline import Action, Verdict

    mail, config = ctx.parsed, ctx.config
    assert mail is not None
    if ctx.released:
        return None  # a person said it is not spam
    sender = mail.sender.email.lower() if mail.sender else ""
    domain = sender.rpartition("@")[2]
    forged = authentication_failures(mail, domain)
    if _listed(sender, config.screen.deny):
        return Verdict(Action.QUARANTINE, "spam", (f"{sender} is on the deny list",), spam_score=1.0)
    # colleagues (agents, desk.staff_domains) forward customers' mail, which reads like anything;
    # but spammers forge the desk's own domain more than any other, so a colleague is trusted
    # only when our MTA vouches for the domain (DMARC or DKIM pass), not on the From alone
    trusted = (
        _listed(sender, config.screen.allow)
        or config.organization_for(sender) is not None
        or (bool(sender) and config.is_staff(sender) and _vouched_for(mail, domain))
    )
    if trusted and not forged:
        return None
    reasons = list(forged)
    upstream = upstream_verdict(mail) if config.screen.trust_upstream else None
    score = None
    if ctx.spam_model is not None:
        scored = mail.spam if mail.spam is not None else ctx.spam_model.score(ctx.raw)
        score = ctx.spam_score = scored.probability
        threshold = config.screen.spam_threshold or ctx.spam_model.threshold
        if forged:
            threshold /= 2
        if score >= threshold:
            reasons.insert(0, f"spam model: {score:.3f} >= threshold {threshold:.3f}")
            reasons.extend(scored.reasons)
            if upstream:
                reasons.append(upstream)
            return Verdict(Action.QUARANTINE, "spam", tuple(reasons), spam_score=score)
    if upstream:
        return Verdict(Action.QUARANTINE, "spam", (upstream, *reasons), spam_score=score)
    return None


def upstream_verdict(mail: ParsedMail) -> str | None:
    """An upstream filter (SpamAssassin, rspamd, a provider) already said spam."""
    flag = mail.header("x-spam-flag").strip().lower()
    if flag in ("yes", "true"):
        return "upstream filter: X-Spam-Flag: YES"
    status = mail.header("x-spam-status").strip()
    if status.lower().startswith("yes"):
        return f"upstream filter: X-Spam-Status: {status[:80]}"
    return None


def authentication_results(mail: ParsedMail, domain: str) -> dict[str, str]:
    """What our MTA recorded for the sender's own domain (RFC 8601 Authentication-Results):
    method -> result, e.g. {"dmarc": "pass", "spf": "fail"}.

    Only the topmost header counts: it is the one our own border MTA added; anything below it
    came with the message and could be written by anyone.
    """
    values = mail.headers.get("authentication-results", ())
    if not values or not domain:
        return {}
    results: dict[str, str] = {}
    for clause in values[0].split(";"):
        found = _RESULT.search(clause)
        if not found:
            continue
        method, result = found.group(1).lower(), found.group(2).lower()
        named = [d.lower().rpartition("@")[2] for d in _DOMAIN_PROPERTY.findall(clause)]
        if named and not any(d == domain or domain.endswith("." + d) for d in named):
            continue  # a result about some other domain (a mailing list's, a forwarder's)
        results.setdefault(method, result)
    return results


def authentication_failures(mail: ParsedMail, domain: str) -> tuple[str, ...]:
    """Failures our MTA recorded for the sender's own domain."""
    results = authentication_results(mail, domain)
    if results.get("dmarc") == "fail":
        return (f"DMARC failed for {domain}",)
    if results.get("spf") == "fail" and results.get("dkim") in ("fail", "none"):
        return (f"SPF and DKIM failed for {domain}",)
    return ()


def _vouched_for(mail: ParsedMail, domain: str) -> bool:
    results = authentication_results(mail, domain)
    return results.get("dmarc") == "pass" or results.get("dkim") == "pass"


def _listed(address: str, entries: tuple[str, ...]) -> bool:
    if not address:
        return False
    domain = "@" + address.rpartition("@")[2]
    return any(
        entry in (address, domain) or (entry.startswith("@") and domain.endswith("." + entry[1:]))
        for entry in entries
    )
