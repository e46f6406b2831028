"""Screen stage: decide whether a message is normal mail, spam, an auto-reply, a bounce or a loop.

The rules run in the order of SCREENS, decisive ones first (as Mailman's chain), and the
first that returns a result decides: our own mail coming back (loop), delivery reports
(bounce), automatic answers and notices (autoreply), then spam, which is the costliest and
which automatic mail need not pay for.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from maildesk.screen import autoreply, bounce, loop, spam

if TYPE_CHECKING:
    from maildesk.pipeline import MailContext, Verdict

SCREENS: Final[tuple[Callable[[MailContext], Verdict | None], ...]] = (
    loop.check,
    bounce.check,
    autoreply.check,
    spam.check,
)


def run(ctx: MailContext) -> Verdict:
    from maildesk.pipeline import CONTINUE

    for check in SCREENS:
        verdict = check(ctx)
        if verdict is not None:
            return verdict
    return CONTINUE
