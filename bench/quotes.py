"""Score quote and signature stripping on the talon and email_reply_parser fixtures.

Run as ``python bench/quotes.py``: one line per case, then the overall score. How each
upstream project's expectations are turned into checks (talon: quote stripping only, HTML
compared without whitespace as talon's own test does; email_reply_parser: quotes and
signatures, snippets from its Ruby test) is described in ``bench/reply_corpus.py``.
Always exits 0: this is a measurement, the bar is asserted in ``tests/test_quotes.py``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[1])]

import reply_corpus  # noqa: E402  (needs the path set up above)


def main() -> int:
    outcomes = reply_corpus.run()
    for outcome in outcomes:
        status = "pass" if outcome.passed else "FAIL"
        print(f"{status}  {outcome.case.name}")
        for problem in outcome.problems:
            print(f"        {problem}")
        if not outcome.passed:
            print(f"        got {reply_corpus.normalise(outcome.got)[:300]!r}")
    passed, total = reply_corpus.score(outcomes)
    print(f"quote stripping: {passed}/{total} expectations met ({100 * passed / total:.1f}%)")
    # For information: the whitespace-blind cases compared line by line instead.
    strict = [
        reply_corpus.check(dataclasses.replace(o.case, ignore_all_whitespace=False))
        for o in outcomes
        if o.case.ignore_all_whitespace
    ]
    strict_passed, strict_total = reply_corpus.score(strict)
    print(f"  (talon HTML compared line by line instead: {strict_passed}/{strict_total})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
