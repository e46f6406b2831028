"""Issue-type and team models: training, evaluation, the shipped model, safety, through the CLI."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from maildesk.classifier.artifact import ModelError
from maildesk.classifier.text import TextModel, held_out, load_mail_folder
from tests.conftest import CORPORA, FIXTURES, ROOT, Desk

ISSUE_DATA = FIXTURES / "issue-types"
TICKETS = CORPORA / "it-tickets" / "train.csv"


def small_ticket_csv(path: Path, per_label: int = 120) -> Path:
    """A few hundred real it-tickets rows, the same every run."""
    seen: dict[str, int] = {}
    with open(TICKETS, newline="", encoding="utf-8") as source, open(path, "w", newline="") as target:
        writer = csv.writer(target)
        writer.writerow(["text", "label"])
        for row in csv.DictReader(source):
            if seen.get(row["label"], 0) < per_label:
                seen[row["label"]] = seen.get(row["label"], 0) + 1
                writer.writerow([row["text"], row["label"]])
    return path


def test_the_labelled_set_is_balanced_and_parses() -> None:
    texts, labels = load_mail_folder(ISSUE_DATA)
    assert {label: labels.count(label) for label in set(labels)} == {
        "Service Request": 320,
        "Information Request": 320,
        "Problem": 320,
        "Incident": 320,
    }
    assert all(text.strip() for text in texts)
    assert 0.15 < sum(held_out(t) for t in texts) / len(texts) < 0.25


def test_the_shipped_issue_type_model_loads_and_classifies() -> None:
    model = TextModel.load(ROOT / "models", "issue-type")
    got = model.predict(
        [
            "Website down\nOur whole shop is offline since 6am, customers cannot order anything.",
            "New user\nCould you please create an account for our new colleague Ben starting Monday?",
            "Opening hours over Christmas\nAre you reachable on 24 December, and until what time?",
        ]
    )
    assert [p.label for p in got] == ["Incident", "Service Request", "Information Request"]
    assert all(0 < p.confidence <= 1 for p in got)
    manifest = json.loads((ROOT / "models" / "issue-type" / "issue-type.json").read_text())
    assert manifest["metrics"]["held_out"]["macro_f1"] >= 0.9


def test_train_and_evaluate_team_on_real_tickets_with_json_and_png(desk: Desk, tmp_path: Path) -> None:
    data = small_ticket_csv(tmp_path / "tickets.csv")
    result = desk.run("train", "team", "--data", str(data), "--out", str(tmp_path / "models"))
    assert result.code == 0, result.err
    assert (tmp_path / "models" / "team" / "team.skops").exists()
    assert (tmp_path / "models" / "team" / "MODEL_CARD.md").read_text().count("|") > 20
    png = tmp_path / "team.png"
    evaluated = desk.run("evaluate", "team", "--data", str(data), "--model", str(tmp_path / "models"),
                         "--json", "--png", str(png))  # fmt: skip
    assert evaluated.code == 0, evaluated.err
    shape = json.loads(evaluated.out)
    assert {"n", "accuracy", "macro_f1", "per_class"} <= set(shape)
    assert shape["n"] == 8 * 120 and len(shape["per_class"]) == 8
    assert set(next(iter(shape["per_class"].values()))) == {"precision", "recall", "f1", "support"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # retraining keeps the model it replaces
    assert desk.run("train", "team", "--data", str(data), "--out", str(tmp_path / "models")).code == 0
    assert (tmp_path / "models" / "team" / "previous" / "team.skops").exists()


def test_evaluate_issue_type_on_an_eml_folder(desk: Desk, tmp_path: Path) -> None:
    sample = tmp_path / "sample"
    sample.mkdir()
    rows = []
    for folder in sorted(p for p in ISSUE_DATA.iterdir() if p.is_dir()):
        with open(folder / "labels.csv", newline="") as listing:
            first = list(csv.DictReader(listing))[:5]
        for line in first:
            shutil.copy(folder / line["file"], sample / f"{folder.name}-{line['file']}")
            rows.append((f"{folder.name}-{line['file']}", line["label"]))
    (sample / "truth.json").write_text(json.dumps(dict(rows)))
    models = str(ROOT / "models")
    result = desk.run("evaluate", "issue-type", "--data", str(sample), "--model", models, "--json",
                      "--png", str(tmp_path / "m.png"))  # fmt: skip
    assert result.code == 0, result.err
    shape = json.loads(result.out)
    assert shape["n"] == 40 and shape["accuracy"] > 0.8  # these were in its training data


def test_a_tampered_issue_type_model_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "issue-type"
    shutil.copytree(ROOT / "models" / "issue-type", copy)
    data = bytearray((copy / "issue-type.skops").read_bytes())
    data[-100] ^= 0xFF
    (copy / "issue-type.skops").write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"does not match its manifest.*maildesk train issue-type"):
        TextModel.load(copy, "issue-type")


def test_training_refuses_unknown_issue_types(desk: Desk, tmp_path: Path) -> None:
    data = tmp_path / "bad.csv"
    data.write_text("text,label\n" + "".join(f"some text {i},Complaint\n" for i in range(20)))
    result = desk.run("train", "issue-type", "--data", str(data), "--out", str(tmp_path / "m"))
    assert result.code == 1 and "unknown issue types ['Complaint']" in result.err


def test_evaluate_spam_on_a_labelled_folder(desk: Desk, tmp_path: Path) -> None:
    folder = tmp_path / "mail"
    folder.mkdir()
    truth = {}
    for kind, source in (("spam", "spam"), ("ham", "easy_ham")):
        for path in sorted((CORPORA / "spamassassin-2002" / source).iterdir())[:25]:
            shutil.copy(path, folder / f"{kind}-{path.name}")
            truth[f"{kind}-{path.name}"] = kind
    (folder / "truth.json").write_text(json.dumps(truth))
    result = desk.run("evaluate", "spam", "--data", str(folder), "--model", str(ROOT / "models"), "--json",
                      "--png", str(tmp_path / "spam.png"))  # fmt: skip
    assert result.code == 0, result.err
    shape = json.loads(result.out)
    assert shape["n"] == 50 and set(shape["per_class"]) == {"ham", "spam"}
    assert shape["per_class"]["spam"]["precision"] > 0.9


def test_the_plain_weights_predict_exactly_as_the_pipeline_without_sklearn() -> None:
    import subprocess
    import sys

    import numpy as np

    from maildesk.classifier import artifact
    from maildesk.classifier.text import FastPredictor

    folder = ROOT / "models" / "issue-type"
    manifest = json.loads((folder / "issue-type.json").read_text())
    plain = FastPredictor.from_arrays(artifact.load_arrays(folder, manifest) or {})
    reference = TextModel.load(ROOT / "models", "issue-type")
    texts, _ = load_mail_folder(ISSUE_DATA / "problem-b")
    texts = [*texts[:60], "", "?!", "Straße kaputt " * 400, "日本語のテキスト"]
    expected = reference.pipeline.predict_proba(texts)
    got = np.vstack([plain.predict_proba(t) for t in texts])
    assert np.abs(expected - got).max() < 1e-9
    code = (
        "import sys; from maildesk.classifier.loading import load_text_model; "
        "from maildesk.config import Config; "
        "m = load_text_model(Config(), 'issue-type'); m.predict(['printer broken']); "
        "print(type(m).__name__, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.split() == ["PlainTextModel", "False"]


def test_classify_reports_the_triage_a_new_ticket_would_get(desk: Desk) -> None:
    incident = sorted((ISSUE_DATA / "incident-a").glob("*.eml"))[0]
    question = sorted((ISSUE_DATA / "information-request-b").glob("*.eml"))[0]
    result = desk.run("classify", "--json", str(incident), str(question))
    assert result.code == 0, result.err
    first, second = (json.loads(line) for line in result.out.splitlines())
    assert (
        first["issue_type"] == "Incident" and first["priority"] == "urgent" and first["type_confidence"] > 0.5
    )
    assert second["issue_type"] == "Information Request"
    assert desk.tickets() == [], "classify stores nothing"
