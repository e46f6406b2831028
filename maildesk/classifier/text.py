"""Text classifiers for a ticket's issue type and team: word and character n-grams, calibrated SVM.

One shape serves both kinds: TF-IDF of word 1-2 grams and of character 2-5 grams (inside
word boundaries, which survive typos, inflection and non-native spelling) into a linear SVM,
with sigmoid calibration so that `confidence` means something and a threshold can leave a
ticket `unclassified` for a person instead of guessing. The figures that describe a model come
from a fifth of its data held out by a hash of the text (so the split is the same on every
run and no text is on both sides), then the model is refitted on everything.

Models are saved with skops (artifact.py): the manifest pins the checksum, the kind, the
feature format and the scikit-learn version; saving keeps the model it replaces in
`previous/`, so a worse one can be rolled back by moving the files.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from maildesk.classifier import artifact
from maildesk.classifier.artifact import ModelError
from maildesk.config import ISSUE_TYPES
from maildesk.errors import UserError

KINDS: Final = ("issue-type", "team", "request-type")
FEATURE_FORMAT: Final = 1
TEXT_LIMIT: Final = 1_500  # characters of subject + new text a model reads: the opening says what it is about
SVM_C: Final = 0.5

Progress = Callable[[str, int, int], None]


def ticket_text(subject: str, text: str) -> str:
    """What a model reads of a message: its subject and its newly written text."""
    return f"{subject}\n{text}"[:TEXT_LIMIT]


def held_out(text: str, share: int = 5) -> bool:
    """True for about 1/share of texts, chosen by a hash of the text (stable across runs).

    md5 of the text, not sha256: the it-tickets corpus was split from its hidden test set by
    sha256, so a sha256 split of its training part would hold nothing out.
    """
    return int(hashlib.md5(text.encode("utf-8", "replace")).hexdigest(), 16) % share == 0


@dataclass(frozen=True)
class Prediction:
    label: str
    confidence: float  # the calibrated probability of `label`


_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # TfidfVectorizer's default token_pattern
_WHITE_SPACES = re.compile(r"\s\s+")


def _word_terms(text: str, low: int, high: int) -> list[str]:
    """TfidfVectorizer(analyzer="word", lowercase=True)'s terms, as scikit-learn makes them."""
    tokens = _TOKEN.findall(text.lower())
    terms = list(tokens) if low == 1 else []
    for n in range(max(2, low), min(high + 1, len(tokens) + 1)):
        terms.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return terms


def _char_wb_terms(text: str, low: int, high: int) -> list[str]:
    """TfidfVectorizer(analyzer="char_wb")'s terms: n-grams inside space-padded words."""
    terms: list[str] = []
    for word in _WHITE_SPACES.sub(" ", text.lower()).split():
        word = f" {word} "
        for n in range(low, high + 1):
            offset = 0
            terms.append(word[offset : offset + n])
            while offset + n < len(word):
                offset += 1
                terms.append(word[offset : offset + n])
            if offset == 0:  # a word shorter than n is counted once
                break
    return terms


_ANALYZERS = {"word": _word_terms, "char_wb": _char_wb_terms}


class FastPredictor:
    """The fitted pipeline's predict_proba as plain numbers: fast, and without scikit-learn.

    scikit-learn validates and converts at every step of every call, which is most of the
    5-6 ms one message costs; here the fitted pieces (vocabularies, idf, SVM weights, Platt
    sigmoids) are applied directly, and they load from a plain .npz in a fraction of the time
    the pipeline takes to import and unpickle. A test holds the result equal to predict_proba.
    """

    def __init__(self, parts: list[tuple[str, int, int, bool, dict[str, int], Any]], classes: list[str],
                 members: list[tuple[Any, Any, list[int], Any, Any]]) -> None:  # fmt: skip
        self.parts, self.classes, self.members = parts, classes, members

    @classmethod
    def from_pipeline(cls, pipeline: Any) -> FastPredictor:
        import numpy as np

        union, calibrated = pipeline.steps[0][1], pipeline.steps[-1][1]
        if union.transformer_weights:
            raise ValueError("weighted feature unions are not supported")
        parts = []
        for _, v in union.transformer_list:
            plain = v.lowercase and v.preprocessor is None and v.tokenizer is None and not v.strip_accents
            if v.analyzer not in _ANALYZERS or v.norm != "l2" or v.stop_words or not plain:
                raise ValueError("only lower-cased word / char_wb TF-IDF parts with l2 norm are supported")
            if v.analyzer == "word" and v.token_pattern != r"(?u)\b\w\w+\b":
                raise ValueError("only the default token pattern is supported")
            low, high = v.ngram_range
            parts.append(
                (v.analyzer, low, high, bool(v.sublinear_tf), dict(v.vocabulary_), np.asarray(v.idf_))
            )
        classes = [str(c) for c in calibrated.classes_]
        members = []
        for member in calibrated.calibrated_classifiers_:
            estimator = member.estimator
            members.append(
                (np.asarray(estimator.coef_), np.asarray(estimator.intercept_),
                 [classes.index(str(c)) for c in estimator.classes_],
                 np.array([c.a_ for c in member.calibrators]), np.array([c.b_ for c in member.calibrators]))
            )  # fmt: skip
        return cls(parts, classes, members)

    def arrays(self) -> dict[str, Any]:
        import numpy as np

        data: dict[str, Any] = {"classes": np.array(self.classes)}
        for i, (analyzer, low, high, sublinear, vocabulary, idf) in enumerate(self.parts):
            terms = sorted(vocabulary, key=vocabulary.__getitem__)
            data[f"part{i}_terms"] = np.array(terms)
            data[f"part{i}_idf"] = idf
            data[f"part{i}_meta"] = np.array([list(_ANALYZERS).index(analyzer), low, high, int(sublinear)])
        for j, (coef, intercept, order, a, b) in enumerate(self.members):
            data[f"member{j}_coef"], data[f"member{j}_intercept"] = coef, intercept
            data[f"member{j}_order"], data[f"member{j}_a"], data[f"member{j}_b"] = np.array(order), a, b
        return data

    @classmethod
    def from_arrays(cls, data: dict[str, Any]) -> FastPredictor:
        parts = []
        i = 0
        while f"part{i}_terms" in data:
            code, low, high, sublinear = (int(v) for v in data[f"part{i}_meta"])
            terms = [str(t) for t in data[f"part{i}_terms"]]
            vocabulary = {term: column for column, term in enumerate(terms)}
            parts.append(
                (list(_ANALYZERS)[code], low, high, bool(sublinear), vocabulary, data[f"part{i}_idf"])
            )
            i += 1
        members = []
        j = 0
        while f"member{j}_coef" in data:
            order = [int(k) for k in data[f"member{j}_order"]]
            members.append(
                (data[f"member{j}_coef"], data[f"member{j}_intercept"], order, data[f"member{j}_a"],
                 data[f"member{j}_b"])
            )  # fmt: skip
            j += 1
        if not parts or not members:
            raise ValueError("no model in the arrays")
        return cls(parts, [str(c) for c in data["classes"]], members)

    def predict_proba(self, text: str) -> Any:
        import numpy as np

        indices: list[int] = []
        values: list[float] = []
        offset = 0
        for analyzer, low, high, sublinear, vocabulary, idf in self.parts:
            counts: dict[int, int] = {}
            for term in _ANALYZERS[analyzer](text, low, high):
                column = vocabulary.get(term)
                if column is not None:
                    counts[column] = counts.get(column, 0) + 1
            if counts:
                columns = np.fromiter(counts, dtype=np.int64, count=len(counts))
                tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
                weights = (1.0 + np.log(tf) if sublinear else tf) * idf[columns]
                norm = float(np.sqrt(np.dot(weights, weights)))
                indices.extend((columns + offset).tolist())
                values.extend((weights / norm if norm else weights).tolist())
            offset += len(vocabulary)
        x_index = np.asarray(indices, dtype=np.int64)
        x_value = np.asarray(values, dtype=np.float64)
        total = np.zeros(len(self.classes))
        for coef, intercept, order, a, b in self.members:
            decision = coef[:, x_index] @ x_value + intercept
            p = np.zeros(len(self.classes))
            p[order] = 1.0 / (1.0 + np.exp(a * decision + b))
            s = p.sum()
            total += p / s if s > 0 else np.full(len(self.classes), 1.0 / len(self.classes))
        return total / len(self.members)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        rows = [self.predict_proba(t[:TEXT_LIMIT]) for t in texts]
        return [Prediction(self.classes[int(r.argmax())], float(r.max())) for r in rows]


class PlainTextModel:
    """A text model loaded from its plain weights alone: what the pipeline stage uses."""

    def __init__(self, kind: str, predictor: FastPredictor, manifest: dict[str, Any]) -> None:
        self.kind, self.fast, self.manifest = kind, predictor, manifest
        self.labels = predictor.classes

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        return self.fast.predict(texts)


class TextModel:
    """A trained issue-type or team model."""

    def __init__(self, pipeline: Any, kind: str, manifest: dict[str, Any] | None = None) -> None:
        self.pipeline = pipeline
        self.kind = kind
        self.manifest = manifest or {}
        self.labels: list[str] = [str(c) for c in pipeline.classes_]
        try:
            self.fast: FastPredictor | None = FastPredictor.from_pipeline(pipeline)
        except (AttributeError, ValueError, IndexError):
            self.fast = None  # another pipeline shape: predict_proba does it, more slowly

    @classmethod
    def load(cls, folder: Path, kind: str) -> TextModel:
        """The `kind` model in folder (or in folder/kind); ModelError when it cannot be trusted."""
        if (folder / kind / f"{kind}.json").exists():
            folder = folder / kind
        pipeline, manifest = artifact.load(
            folder, name=kind, kind=kind, feature_format=FEATURE_FORMAT, retrain=f"maildesk train {kind}"
        )
        try:
            return cls(pipeline, kind, manifest)
        except AttributeError as exc:
            raise ModelError(
                f"the {kind} model in {folder} is not a maildesk text pipeline ({exc})"
            ) from None

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        if self.fast is not None and len(texts) < 16:
            return self.fast.predict(texts)
        probabilities = self.pipeline.predict_proba([t[:TEXT_LIMIT] for t in texts])
        best = probabilities.argmax(axis=1)
        return [
            Prediction(self.labels[int(i)], float(row[int(i)]))
            for i, row in zip(best, probabilities, strict=True)
        ]


def build_pipeline(random_state: int = 0) -> Any:
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    words = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, lowercase=True)
    chars = TfidfVectorizer(
        analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, min_df=2, lowercase=True
    )
    return make_pipeline(
        make_union(words, chars),
        CalibratedClassifierCV(LinearSVC(C=SVM_C, random_state=random_state), method="sigmoid", cv=3),
    )


@dataclass
class TrainedText:
    model: TextModel
    metrics: dict[str, Any]
    created: datetime
    source: str = ""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def train_text(
    kind: str,
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    random_state: int = 0,
    source: str = "",
    progress: Progress | None = None,
) -> TrainedText:
    """Fit on four fifths, measure on the held-out fifth, then refit on everything."""
    if kind not in KINDS:
        raise UserError(f"unknown model kind {kind!r}: use one of {', '.join(KINDS)}")
    if len(texts) != len(labels):
        raise ValueError("texts and labels differ in length")
    classes = sorted(set(labels))
    counts = {c: labels.count(c) if isinstance(labels, list) else list(labels).count(c) for c in classes}
    if len(classes) < 2 or min(counts.values()) < 5:
        raise UserError(f"training needs at least two labels with 5 examples each; got {counts}")
    started = time.perf_counter()
    step = progress or (lambda stage, done, total: None)
    test = [held_out(t) for t in texts]
    fit_x = [t for t, h in zip(texts, test, strict=True) if not h]
    fit_y = [y for y, h in zip(labels, test, strict=True) if not h]
    test_x = [t for t, h in zip(texts, test, strict=True) if h]
    test_y = [y for y, h in zip(labels, test, strict=True) if h]
    step("fit on four fifths", 0, 3)
    trial = TextModel(build_pipeline(random_state).fit(fit_x, fit_y), kind)
    step("measure on the held-out fifth", 1, 3)
    metrics = evaluate(trial, test_x, test_y) if test_x else {}
    step("refit on everything", 2, 3)
    model = TextModel(build_pipeline(random_state).fit(list(texts), list(labels)), kind)
    step("done", 3, 3)
    metrics = {"held_out": metrics, "n_train": len(texts), "label_counts": counts}
    return TrainedText(model, metrics, datetime.now(UTC), source, time.perf_counter() - started)


def evaluate(model: TextModel, texts: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Per-class precision/recall/F1, macro-F1, accuracy and the confusion matrix."""
    predicted = [p.label for p in model.predict(list(texts))]
    return scores(list(labels), predicted, model.labels)


def scores(labels: Sequence[str], predicted: Sequence[str], known: Sequence[str] = ()) -> dict[str, Any]:
    """The figures `maildesk evaluate` prints, for any classifier's predictions."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    names = sorted(set(labels) | set(predicted) | set(known))
    precision, recall, f1, support = precision_recall_fscore_support(
        list(labels), predicted, labels=names, zero_division=0
    )
    present = [i for i, name in enumerate(names) if support[i] > 0]
    matrix = confusion_matrix(list(labels), predicted, labels=names)
    return {
        "n": len(labels),
        "accuracy": round(
            sum(p == y for p, y in zip(predicted, labels, strict=True)) / max(1, len(labels)), 4
        ),
        "macro_f1": round(float(sum(f1[i] for i in present) / max(1, len(present))), 4),
        "per_class": {
            names[i]: {
                "precision": round(float(precision[i]), 4),
                "recall": round(float(recall[i]), 4),
                "f1": round(float(f1[i]), 4),
                "support": int(support[i]),
            }
            for i in present
        },
        "confusion": {"labels": names, "matrix": matrix.tolist()},
    }


def plot_confusion(result: dict[str, Any], path: Path, title: str) -> Path:
    """The confusion matrix as a PNG (rows: true label, columns: predicted)."""
    import matplotlib

    matplotlib.use("Agg")  # no screen: render to a file
    import matplotlib.pyplot as plt

    names = result["confusion"]["labels"]
    matrix = result["confusion"]["matrix"]
    size = max(4.0, 0.9 * len(names) + 2)
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(names)), names, rotation=45, ha="right")
    axes.set_yticks(range(len(names)), names)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(f"{title}: macro-F1 {result['macro_f1']:.3f}, n={result['n']}")
    peak = max((max(row) for row in matrix), default=0)
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            axes.text(
                j, i, str(value), ha="center", va="center", color="white" if value > peak / 2 else "black"
            )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def save_text(trained: TrainedText, folder: Path) -> dict[str, Any]:
    """Write the model into folder/<kind>/, moving the one it replaces to folder/<kind>/previous/."""
    kind = trained.model.kind
    target = folder / kind
    if (target / f"{kind}.json").exists():
        previous = target / "previous"
        shutil.rmtree(previous, ignore_errors=True)
        previous.mkdir(parents=True)
        for name in (f"{kind}.skops", f"{kind}.weights.npz", f"{kind}.json", "MODEL_CARD.md"):
            if (target / name).exists():
                shutil.move(str(target / name), previous / name)
    manifest = artifact.save(
        trained.model.pipeline,
        target,
        name=kind,
        kind=kind,
        feature_format=FEATURE_FORMAT,
        metrics=trained.metrics,
        created=trained.created,
        arrays=trained.model.fast.arrays() if trained.model.fast is not None else None,
        extra={
            "labels": trained.model.labels,
            "training": {
                "source": trained.source,
                "seconds": round(trained.seconds, 1),
                "model": f"TF-IDF word 1-2 + char_wb 2-5 grams, LinearSVC(C={SVM_C}), sigmoid calibration",
            },
        },
    )
    (target / "MODEL_CARD.md").write_text(_card(trained, manifest))
    return manifest


def _card(trained: TrainedText, manifest: dict[str, Any]) -> str:
    held = trained.metrics.get("held_out") or {}
    rows = "\n".join(
        f"| {label} | {m['precision']:.3f} | {m['recall']:.3f} | {m['f1']:.3f} | {m['support']} |"
        for label, m in held.get("per_class", {}).items()
    )
    kind = trained.model.kind
    return f"""# maildesk {kind} model

- **File**: `{manifest["artifact"]}`, sha256 `{manifest["sha256"]}`
- **Created**: {manifest["created"]}; scikit-learn {manifest["versions"]["scikit-learn"]}, \
feature format {FEATURE_FORMAT}
- **Model**: {manifest["training"]["model"]}; trained in {trained.seconds:.1f} s
- **Labels**: {", ".join(trained.model.labels)}

## Data
{trained.source or "Labelled texts given to train_text."}
{trained.metrics["n_train"]} examples: {json.dumps(trained.metrics["label_counts"])}.
Split: a fifth held out by an md5 hash of the text for the figures below; the shipped model is
then refitted on all of it.

## Figures on the held-out fifth
n = {held.get("n", 0)}, accuracy {held.get("accuracy", 0):.3f}, macro-F1 {held.get("macro_f1", 0):.3f}

| label | precision | recall | F1 | support |
|---|---|---|---|---|
{rows}

## Intended use and limits
Sets the {kind} of a new ticket from its subject and newly written text. Below the configured
confidence a ticket is left for a person. The figures come from data like the training data;
mail from other industries, languages or writing habits will score lower. Retrain with
`maildesk train {kind}` as agents correct labels; the model this one replaced is in `previous/`.
"""


# -- reading labelled data --------------------------------------------------------------------


def load_csv(path: Path) -> tuple[list[str], list[str]]:
    """A CSV with `text` and `label` columns."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
                raise UserError(f"{path}: needs columns text and label, has {reader.fieldnames}")
            pairs = [(row["text"] or "", (row["label"] or "").strip()) for row in reader]
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from None
    pairs = [(t, y) for t, y in pairs if y]
    return [t for t, _ in pairs], [y for _, y in pairs]


def load_mail_folder(folder: Path) -> tuple[list[str], list[str]]:
    """.eml files under folder, labelled by every labels.csv (file,label) or truth.json below it.

    The text is what the pipeline will classify: the subject and the newly written text, from
    maildesk's own parser, so training sees what production sees.
    """
    from maildesk.parse.message import parse

    labels: dict[Path, str] = {}
    for listing in sorted(folder.rglob("labels.csv")):
        with open(listing, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                name, label = (row.get("file") or "").strip(), (row.get("label") or "").strip()
                if name and label:
                    labels[(listing.parent / name).resolve()] = label
    for listing in sorted(folder.rglob("truth.json")):
        for name, label in json.loads(listing.read_text(encoding="utf-8")).items():
            labels[(listing.parent / name).resolve()] = str(label)
    if not labels:
        raise UserError(f"{folder}: no labels.csv or truth.json found")
    texts, names = [], []
    for path, label in sorted(labels.items()):
        try:
            mail = parse(path.read_bytes())
        except OSError as exc:
            raise UserError(f"cannot read {path}: {exc.strerror}") from None
        except Exception as exc:  # a file that cannot be parsed is skipped, and said so
            raise UserError(f"cannot parse {path}: {exc}") from None
        texts.append(ticket_text(mail.subject, mail.new_text))
        names.append(label)
    return texts, names


def load_data(path: Path) -> tuple[list[str], list[str]]:
    if path.is_dir():
        return load_mail_folder(path)
    if path.suffix.lower() == ".csv":
        return load_csv(path)
    raise UserError(f"{path}: give a folder of .eml with labels.csv/truth.json, or a CSV of text,label")


def check_labels(kind: str, labels: Iterable[str]) -> None:
    if kind == "request-type":
        from maildesk.request_types import REQUEST_TYPES

        unknown = sorted(set(labels) - set(REQUEST_TYPES))
        if unknown:
            raise UserError(f"unknown request types {unknown}: use {', '.join(REQUEST_TYPES)}")
    if kind == "issue-type":
        unknown = sorted(set(labels) - set(ISSUE_TYPES))
        if unknown:
            raise UserError(f"unknown issue types {unknown}: use {', '.join(ISSUE_TYPES)}")
