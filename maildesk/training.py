"""`maildesk train spam`: a model from labelled mail on disk and the corrections agents made.

The labels people gave (`quarantine release`, an agent's `#spam` / `#notspam`) are kept in
the Label table with the spooled message they are about; they are added to `--data`, so the
model learns from the desk's own mail as well as from the corpus it started with.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from maildesk.errors import UserError
from maildesk.tickets.store.models import InboundMail, Label

if TYPE_CHECKING:
    from maildesk.desk import Desk


@contextmanager
def progress_bar(title: str) -> Iterator[Callable[[str, int, int], None]]:
    """A `progress(stage, done, total)` callback drawing a bar on a terminal, silent otherwise."""
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(desc=title, unit="step", file=sys.stderr)

    def progress(stage: str, done: int, total: int) -> None:
        if bar is not None:
            bar.set_description(f"{title}: {stage}")
            bar.total, bar.n = total, done
            bar.refresh()

    try:
        yield progress
    finally:
        if bar is not None:
            bar.close()


def spam_labels(desk: Desk) -> list[tuple[bytes, bool]]:
    """(raw message, is spam) for every spam/ham label people gave; the latest label wins."""
    latest: dict[int, bool] = {}
    query = Label.select().where((Label.kind == "spam") & Label.inbound.is_null(False)).order_by(Label.id)
    for label in query:
        if label.inbound_id is not None:
            latest[label.inbound_id] = label.value == "spam"
    rows = list(InboundMail.select().where(InboundMail.id.in_(list(latest)))) if latest else []
    raws = desk.spool.read_many(rows)
    return [(raws[row.sha256], latest[row.id]) for row in rows if row.sha256 in raws]


def train_spam_command(desk: Desk, data: Path | None, out: Path, now: datetime) -> str:
    from maildesk.classifier.spam import load_examples, save_spam, train_spam

    examples: list[tuple[bytes, bool]] = []
    if data is not None:
        if not data.exists():
            raise UserError(f"--data {data}: no such file or folder")
        examples += load_examples(data)
    corrections = spam_labels(desk)
    examples += corrections
    spam = sum(1 for _, is_spam in examples if is_spam)
    if spam == 0 or spam == len(examples):
        raise UserError(
            f"need both spam and ham to train: {spam} spam, {len(examples) - spam} ham "
            "(give --data, or label mail with quarantine release / #spam / #notspam)"
        )
    source = (
        f"{len(examples) - len(corrections)} labelled messages from {data} (label from truth.json, "
        "labels.csv or the folder names)"
        if data is not None
        else "no --data"
    ) + f"; {len(corrections)} messages labelled by people at the desk (quarantine release, #spam, #notspam)"
    with progress_bar("train spam") as progress:
        trained = train_spam(examples, source=source, now=now, progress=progress)
    folder = out / "spam"
    save_spam(trained, folder)
    m = trained.metrics
    return (
        f"trained on {len(examples)} messages ({spam} spam, {len(corrections)} from people's labels); "
        f"cross-validated F1 {m['f1']:.3f}, precision {m['precision']:.3f}, recall {m['recall']:.3f}, "
        f"ham false positives {m['ham_fp_rate']:.2%}; written to {folder}"
    )


def text_labels(kind: str) -> tuple[list[str], list[str]]:
    """Texts and labels agents gave at the desk (`#type`, `maildesk tickets label`), latest first wins."""
    from maildesk.classifier.text import ticket_text
    from maildesk.tickets.store.models import Message

    latest: dict[int, str] = {}
    for label in Label.select().where((Label.kind == kind) & Label.ticket.is_null(False)).order_by(Label.id):
        if label.ticket_id is not None:
            latest[label.ticket_id] = label.value
    texts, labels = [], []
    for ticket_id, value in latest.items():
        first = (
            Message.select(Message.subject, Message.text)
            .where((Message.ticket == ticket_id) & (Message.direction == "in") & (Message.kind == "customer"))
            .order_by(Message.id)
            .first()
        )
        if first is not None:
            texts.append(ticket_text(first.subject, first.text))
            labels.append(value)
    return texts, labels


def train_text_command(desk: Desk, kind: str, data: Path | None, out: Path) -> str:
    from maildesk.classifier.text import check_labels, load_data, save_text, train_text

    texts: list[str] = []
    labels: list[str] = []
    if data is not None:
        if not data.exists():
            raise UserError(f"--data {data}: no such file or folder")
        texts, labels = load_data(data)
    agent_texts, agent_labels = text_labels(kind)
    texts += agent_texts
    labels += agent_labels
    check_labels(kind, labels)
    source = (f"{len(texts) - len(agent_texts)} labelled examples from {data}; " if data else "") + (
        f"{len(agent_texts)} tickets labelled by agents at the desk"
    )
    with progress_bar(f"train {kind}") as progress:
        trained = train_text(kind, texts, labels, source=source, progress=progress)
    save_text(trained, out)
    held = trained.metrics["held_out"]
    return (
        f"trained {kind} on {len(texts)} examples ({len(agent_texts)} from agents) "
        f"in {trained.seconds:.1f} s; "
        f"held-out fifth: macro-F1 {held.get('macro_f1', 0):.3f}, accuracy {held.get('accuracy', 0):.3f} "
        f"(n={held.get('n', 0)}); written to {out / kind}"
    )
