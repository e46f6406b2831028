"""Issue-type and team models: held-out figures, training time and throughput, beside a baseline.

    python3 bench/classify.py [--skip-team]

- Issue type: trained on four fifths of fixtures/emails/issue-types (the labelled mail the
  project wrote), scored on the held-out fifth (md5 of the text, as `maildesk train` splits).
- Team: ../shared/corpora/it-tickets/train.csv split the same way (its README: a hash of the
  text); maildesk's model beside the README's baseline (TF-IDF word 1-2 grams + LinearSVC)
  trained and scored on the same split in the same run; training time on the full 38k.
- Throughput on one core (OMP/BLAS threads pinned to 1): messages per second in one batch and
  one at a time; training time on 10,000 tickets.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(variable, "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from maildesk.classifier.text import (  # noqa: E402
    TextModel,
    build_pipeline,
    evaluate,
    held_out,
    load_csv,
    load_mail_folder,
)

ISSUE_DATA = ROOT / "fixtures" / "emails" / "issue-types"
TICKETS = ROOT.parent / "shared" / "corpora" / "it-tickets" / "train.csv"


def split(texts: list[str], labels: list[str]) -> tuple[list[str], list[str], list[str], list[str]]:
    test = [held_out(t) for t in texts]
    return (
        [t for t, h in zip(texts, test, strict=True) if not h],
        [y for y, h in zip(labels, test, strict=True) if not h],
        [t for t, h in zip(texts, test, strict=True) if h],
        [y for y, h in zip(labels, test, strict=True) if h],
    )


def fit(kind: str, texts: list[str], labels: list[str]) -> tuple[TextModel, float]:
    started = time.perf_counter()
    model = TextModel(build_pipeline().fit(texts, labels), kind)
    return model, time.perf_counter() - started


def show(name: str, result: dict) -> None:
    print(f"  {name}: n={result['n']} accuracy {result['accuracy']:.3f} macro-F1 {result['macro_f1']:.3f}")
    for label, m in result["per_class"].items():
        print(
            f"    {label:<24} P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} (n={m['support']})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-team", action="store_true")
    args = parser.parse_args()

    texts, labels = load_mail_folder(ISSUE_DATA)
    fit_x, fit_y, test_x, test_y = split(texts, labels)
    print(f"issue type: {len(texts)} labelled mails, {len(fit_x)} to train, {len(test_x)} held out")
    model, seconds = fit("issue-type", fit_x, fit_y)
    show(f"maildesk (trained in {seconds:.1f} s)", evaluate(model, test_x, test_y))
    # mail from writers the model never saw: train on one writer of each class, test on the other
    by_writer: dict[str, tuple[list[str], list[str]]] = {}
    for folder in sorted(p for p in ISSUE_DATA.iterdir() if p.is_dir()):
        writer = folder.name.rsplit("-", 1)[-1]
        got = load_mail_folder(folder)
        texts_w, labels_w = by_writer.setdefault(writer, ([], []))
        texts_w.extend(got[0])
        labels_w.extend(got[1])
    for train_w, test_w in (("a", "b"), ("b", "a")):
        if train_w in by_writer and test_w in by_writer:
            cross, _ = fit("issue-type", *by_writer[train_w])
            show(f"cross-writer: trained on writers {train_w}, tested on writers {test_w}",
                 evaluate(cross, *by_writer[test_w]))  # fmt: skip

    # throughput on one core: one batch, and one message at a time
    sample = (test_x * 20)[:1000]
    started = time.perf_counter()
    model.predict(sample)
    batch = len(sample) / (time.perf_counter() - started)
    started = time.perf_counter()
    for text in sample[:300]:
        model.predict([text])
    single = 300 / (time.perf_counter() - started)
    print(f"  throughput on one core: {batch:,.0f} msg/s in a batch, {single:,.0f} msg/s one at a time")

    if args.skip_team:
        return
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    tickets, teams = load_csv(TICKETS)
    fit_x, fit_y, test_x, test_y = split(tickets, teams)
    print(f"team: {len(tickets)} tickets, {len(fit_x)} to train, {len(test_x)} held out (md5 of the text)")
    started = time.perf_counter()
    baseline = make_pipeline(TfidfVectorizer(ngram_range=(1, 2)), LinearSVC()).fit(fit_x, fit_y)
    baseline_seconds = time.perf_counter() - started
    from sklearn.metrics import accuracy_score, f1_score

    predicted = baseline.predict(test_x)
    print(
        f"  baseline TF-IDF word 1-2 + LinearSVC (trained in {baseline_seconds:.1f} s): "
        f"accuracy {accuracy_score(test_y, predicted):.3f} "
        f"macro-F1 {f1_score(test_y, predicted, average='macro'):.3f}"
    )
    model, seconds = fit("team", fit_x, fit_y)
    show(f"maildesk (trained in {seconds:.1f} s)", evaluate(model, test_x, test_y))
    _, ten_k = fit("team", fit_x[:10_000], fit_y[:10_000])
    _, everything = fit("team", tickets, teams)
    print(f"  training time: {ten_k:.1f} s on 10,000 tickets, {everything:.1f} s on all {len(tickets):,}")


if __name__ == "__main__":
    main()
