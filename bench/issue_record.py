"""Issue record extraction (seed 003): speed on the it-tickets corpus and on a typical mail, and hits.

    python3 bench/issue_record.py [--limit N]

- Corpus: ../shared/corpora/it-tickets/train.csv (columns `text`, `label`; 38,280 tickets). Its
  README says the text was preprocessed upstream: lower-cased, stop words and names removed,
  and (as one can see) no digits, quotes or colons are left. So this measures throughput on
  real ticket wording and how often each field is still found in such text, not accuracy:
  phones, times, room numbers and quoted errors cannot occur in it.
- A typical 2 KB customer mail (below, with signature and quoted history): microseconds per
  call, best of five runs, on one core. The brief's bar is under 1 ms.
- The labelled mails of tests/test_issue_record.py: per field, how many carry it, how many of
  those are found (exactly, or anything where the test allows either of two things named), how
  many are missed or read as something else, and how many mails get a value they should not.
  These are the mails the code was developed on, so the figures flatter it; the report of the
  change that added this script gives first-pass figures on mails written after the code.
"""

from __future__ import annotations

import argparse
import csv
import logging
import sys
import time
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from maildesk.parse.issue_record import FIELDS, extract  # noqa: E402

TICKETS = ROOT.parent / "shared" / "corpora" / "it-tickets" / "train.csv"

TYPICAL_SUBJECT = "Workday expense module not loading"
TYPICAL_MAIL = """Hello IT support team,

since yesterday afternoon (around 14:30) I cannot open the expense module in Workday anymore. Every
time I click on "Submit report" the page goes white and after about 30 seconds a popup says "Error
503: Service temporarily unavailable - please try again later". I already cleared the browser cache,
restarted my laptop and tried both Chrome and Edge, same result. My colleague sitting next to me has
no problem at all, so I guess it is something with my account or my profile. I also tried logging in
from my phone over the guest Wi-Fi, which did not help.

This is quite urgent because the quarter closes on Friday and I have 14 receipts to submit before
then. I also noticed that the travel booking page was very slow on Monday, but it did eventually
load, so maybe it is related. Our team assistant mentioned that two other people in Controlling had
a similar issue last month.

I'm usually at my desk in Building C, room 4.17 (4th floor), but on Thursday I will be working from
home. If it helps, my employee number is 100234 and the laptop asset tag is NB-22871.

I have attached two screenshots: the white page and the popup. The browser console also shows a few
red lines but I do not know what they mean, so I did not copy them. If it helps, I can also try from
another computer in the office tomorrow morning, or come by your desk.

Could you please have a look? Happy to share my screen if needed.

Thanks a lot and best regards,

Maria Gonzalez
Senior Accountant | Finance & Controlling
ACME Switzerland AG | Bahnhofstrasse 12 | 8001 Zurich
Phone: +41 44 555 12 34 | Mobile: +41 79 555 98 76
maria.gonzalez@acme.example | www.acme.example

On Mon, 2 Nov 2026 at 09:15, IT Service Desk <servicedesk@acme.example> wrote:
> Dear Maria,
> thank you for contacting the service desk. Your ticket MD-1042 has been opened.
> Call us on 3080 or 3131 if it is urgent.
"""


def load_tickets(path: Path, limit: int | None) -> list[str]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "text" not in reader.fieldnames:
            raise SystemExit(f"{path}: no `text` column (columns: {reader.fieldnames})")
        texts = [row["text"] for row in reader]
    return texts[:limit] if limit else texts


def corpus(limit: int | None) -> None:
    texts = load_tickets(TICKETS, limit)
    found = dict.fromkeys((name for name, _ in FIELDS), 0)
    started = time.perf_counter()
    records = [extract("", text) for text in texts]
    seconds = time.perf_counter() - started
    for record in records:
        values = record.as_dict()
        for name in found:
            found[name] += values[name] not in ("", [], None)
    size = sum(len(text) for text in texts) / len(texts)
    print(f"it-tickets: {len(texts):,} tickets (mean {size:.0f} characters) in {seconds:.2f} s:")
    print(f"  {len(texts) / seconds:,.0f} messages/s, {seconds / len(texts) * 1e6:.0f} us each")
    for name, count in found.items():
        print(f"  {name:<11} found in {count:6,} ({100 * count / len(texts):5.1f}%)")
    examples = [(text, record) for text, record in zip(texts, records, strict=True) if record.occurred]
    for text, record in examples[:3]:
        print(f"    e.g. occurred {record.occurred!r} in {text[:90]!r}")


def typical() -> None:
    runs = 2000
    best = min(timeit.repeat(lambda: extract(TYPICAL_SUBJECT, TYPICAL_MAIL), number=runs, repeat=5)) / runs
    print(f"typical mail ({len(TYPICAL_MAIL):,} characters): {best * 1e6:.0f} us per call (best of 5)")
    for name, value in extract(TYPICAL_SUBJECT, TYPICAL_MAIL).as_dict().items():
        print(f"  {name:<11} {value!r}")


def labelled() -> None:
    from tests.test_issue_record import CASES

    print(f"labelled mails (tests/test_issue_record.py, the cases the code was developed on): {len(CASES)}")
    for name, _ in FIELDS:
        carrying = right = wrong = spurious = 0
        for case in CASES.values():
            wanted = case.misses.get(name, getattr(case, name))  # what a person would record
            got = getattr(extract(case.subject, case.body), name)
            if wanted in ("", (), None):
                spurious += got not in ("", (), None)
                continue
            carrying += 1
            if got == wanted or (name in case.loose and got not in ("", (), None)):
                right += 1
            else:
                wrong += got not in ("", (), None)
        print(
            f"  {name:<11} {right:2}/{carrying:2} found ({carrying - right - wrong} missed,"
            f" {wrong} different), {spurious} found where the mail has none"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N tickets")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    typical()
    labelled()
    corpus(args.limit)


if __name__ == "__main__":
    main()
