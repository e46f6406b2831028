"""The spam model: CV figures, the committed artifact, unsafe models refused, data layouts, hostile input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.feature_extraction import FeatureHasher

from maildesk.classifier import artifact
from maildesk.classifier.artifact import ModelError
from maildesk.classifier.spam import (
    N_FEATURES,
    SpamModel,
    SpamScore,
    _hash_index,
    extract,
    load_examples,
    reasons_for,
    save_spam,
    train_spam,
)
from maildesk.errors import MaildeskError, UserError
from tests.conftest import CORPORA, ROOT

SA2002 = CORPORA / "spamassassin-2002"
MODEL = ROOT / "models" / "spam"
MALFORMED = sorted(p for p in (CORPORA / "malformed").rglob("*.eml"))
KNOWN_SPAM = SA2002 / "spam" / "00001.7848dde101aa985090474a91ec93fcf0.eml"
KNOWN_HAM = SA2002 / "easy_ham" / "00001.7c53336b37003a9286aba55d2945844c.eml"

HAM_MESSAGE = b"""From: Alice Example <alice@customer.example>
To: support@helpdesk.example
Subject: Re: printer on floor 2
Message-ID: <abc@customer.example>
Date: Mon, 2 Mar 2026 10:00:00 +0100
Content-Type: text/plain; charset=utf-8

Thanks, the printer works again since this morning.
"""
SPAM_MESSAGE = b"""From: WINNER <promo123@cheap-deals.example>
To: undisclosed-recipients:;
Subject: FREE MONEY!!! Click here $$$
Content-Type: text/html

<html><body><font size=5>CLICK HERE to claim your FREE prize http://192.0.2.7/claim !!!</font></body></html>
"""


@pytest.fixture(scope="module")
def model() -> SpamModel:
    return SpamModel.load(MODEL)


@pytest.fixture
def model_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "spam"
    shutil.copytree(MODEL, folder)
    return folder


def _subset() -> list[tuple[bytes, bool]]:
    # a fixed, spread-out slice of every part, so the figures repeat and the test stays quick
    examples = load_examples(SA2002)
    spam = [e for e in examples if e[1]][::2]
    ham = [e for e in examples if not e[1]][::5]
    return spam + ham


def test_training_on_a_subset_gives_sane_cross_validated_figures(tmp_path: Path) -> None:
    trained = train_spam(_subset(), random_state=0, source="subset of the 2002 parts")
    m = trained.metrics
    assert m["n"] == m["n_spam"] + m["n_ham"] == 800
    assert m["folds"] == 5
    assert m["f1"] > 0.9
    assert m["precision"] > 0.9 and m["recall"] > 0.85
    assert m["ham_fp_rate"] <= 0.01
    assert 0.0 < trained.model.threshold < 1.0

    manifest = save_spam(trained, tmp_path / "out")
    assert {p.name for p in (tmp_path / "out").iterdir()} == {
        "spam.skops",
        "spam.weights.npz",
        "spam.json",
        "MODEL_CARD.md",
    }
    on_disk = json.loads((tmp_path / "out" / "spam.json").read_text())
    assert on_disk == manifest
    assert on_disk["kind"] == "spam" and on_disk["threshold"] == trained.model.threshold
    assert on_disk["metrics"]["f1"] == m["f1"]
    assert set(on_disk["versions"]) == {"scikit-learn", "skops", "python"}
    assert on_disk["created"].endswith("+00:00")
    card = (tmp_path / "out" / "MODEL_CARD.md").read_text()
    for heading in ("## Data", "## Split and figures", "## Intended use", "## Limitations"):
        assert heading in card
    reloaded = SpamModel.load(tmp_path / "out")
    raw = KNOWN_SPAM.read_bytes()
    assert reloaded.score(raw).probability == pytest.approx(trained.model.score(raw).probability)


def test_training_refuses_too_few_examples() -> None:
    with pytest.raises(UserError, match="at least"):
        train_spam([(SPAM_MESSAGE, True)] * 3 + [(HAM_MESSAGE, False)] * 30)


def test_committed_model_scores_spam_over_ham_with_reasons(model: SpamModel) -> None:
    spam = model.score(KNOWN_SPAM.read_bytes())
    ham = model.score(KNOWN_HAM.read_bytes())
    assert isinstance(spam, SpamScore)
    assert spam.probability > model.threshold > ham.probability
    assert 0.0 <= ham.probability < spam.probability <= 1.0
    assert spam.reasons and all(isinstance(r, str) and ": " in r for r in spam.reasons)
    assert model.manifest["metrics"]["n"] == 3250
    crafted = model.score(SPAM_MESSAGE)
    assert crafted.probability > model.score(HAM_MESSAGE).probability
    assert any(r.startswith("words: ") for r in crafted.reasons)


def test_score_many_matches_score(model: SpamModel) -> None:
    raws = [KNOWN_SPAM.read_bytes(), KNOWN_HAM.read_bytes(), SPAM_MESSAGE, b""]
    # score() computes from the weights directly; the pipeline's predict_proba agrees to rounding
    for many, one in zip(model.score_many(raws), [model.score(raw) for raw in raws], strict=True):
        assert many.probability == pytest.approx(one.probability, abs=1e-12)
        assert many.reasons == one.reasons
    assert model.score_many([]) == []


def test_reasons_name_the_strongest_spam_features_in_groups() -> None:
    reasons = reasons_for(
        [
            ("w:free", 0.5),
            ("w:click", 0.4),
            ("struct:html-only", 0.3),
            ("hn:x-mailer", -0.2),
            ("s:money", 0.1),
        ]
    )
    assert reasons == ("words: 'free', 'click'", "structure: HTML only", "subject: 'money'")
    assert reasons_for([("w:thanks", -1.0)]) == ()


def test_hash_index_is_the_one_feature_hasher_uses() -> None:
    tokens = ["w:free", "s:héllo", "url:ip-address", "hv:x-mailer:outlook", *(f"w:{i}" for i in range(3000))]
    hashed = FeatureHasher(n_features=N_FEATURES, input_type="dict", alternate_sign=False).transform(
        [{t: 1.0} for t in tokens]
    )
    assert [int(hashed[i].indices[0]) for i in range(len(tokens))] == [
        _hash_index(t, N_FEATURES) for t in tokens
    ]


def test_a_tampered_artifact_is_refused(model_copy: Path) -> None:
    path = model_copy / "spam.skops"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"does not match its manifest.*maildesk train spam"):
        SpamModel.load(model_copy)


def test_another_scikit_learn_version_is_refused(model_copy: Path) -> None:
    manifest = json.loads((model_copy / "spam.json").read_text())
    manifest["versions"]["scikit-learn"] = "0.24.2"
    (model_copy / "spam.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=r"scikit-learn 0\.24\.2.*retrain it with `maildesk train spam`"):
        SpamModel.load(model_copy)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [("kind", "issue-type", "not 'spam'"), ("feature_format", 999, "feature format 999")],
)
def test_another_kind_or_feature_format_is_refused(
    model_copy: Path, key: str, value: object, message: str
) -> None:
    manifest = json.loads((model_copy / "spam.json").read_text())
    manifest[key] = value
    (model_copy / "spam.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match=message):
        SpamModel.load(model_copy)


def test_a_missing_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"no model manifest.*maildesk train spam") as caught:
        SpamModel.load(tmp_path)
    assert isinstance(caught.value, MaildeskError)


class Untrusted:
    """Stands for any type a model file should never bring in."""


def test_unknown_types_in_a_model_file_are_refused(tmp_path: Path) -> None:
    artifact.save(
        {"model": Untrusted()}, tmp_path, name="spam", kind="spam", feature_format=1, metrics={}, extra={}
    )
    with pytest.raises(ModelError, match=r"types maildesk does not load.*Untrusted"):
        artifact.load(tmp_path, name="spam", kind="spam", feature_format=1, retrain="maildesk train spam")


# --- labelled data layouts ---------------------------------------------------------------------


def test_load_examples_reads_truth_json(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(SPAM_MESSAGE)
    (tmp_path / "b.eml").write_bytes(HAM_MESSAGE)
    (tmp_path / "truth.json").write_text(json.dumps({"a.eml": "spam", "b.eml": "ham"}))
    assert load_examples(tmp_path) == [(SPAM_MESSAGE, True), (HAM_MESSAGE, False)]


def test_load_examples_reads_labels_csv(tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(SPAM_MESSAGE)
    (tmp_path / "b.eml").write_bytes(HAM_MESSAGE)
    (tmp_path / "labels.csv").write_text("file,label\na.eml,spam\nb.eml,ham\n")
    assert load_examples(tmp_path) == [(SPAM_MESSAGE, True), (HAM_MESSAGE, False)]


def test_load_examples_reads_spam_and_ham_folders(tmp_path: Path) -> None:
    for folder, raw in (("spam", SPAM_MESSAGE), ("easy_ham", HAM_MESSAGE), ("hard_ham", HAM_MESSAGE)):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "00001.eml").write_bytes(raw)
        (tmp_path / folder / "cmds").write_text("listing, not mail\n")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.eml").write_bytes(SPAM_MESSAGE)
    assert sorted(load_examples(tmp_path), key=lambda e: e[1]) == [
        (HAM_MESSAGE, False),
        (HAM_MESSAGE, False),
        (SPAM_MESSAGE, True),
    ]


def test_load_examples_reads_a_text_label_csv(tmp_path: Path) -> None:
    path = tmp_path / "mail.csv"
    path.write_text(
        'text,label\n"Subject: win\n\nFREE money now",spam\n"Subject: hi\n\nsee you at 10",ham\n',
        encoding="utf-8",
    )
    assert load_examples(path) == [
        (b"Subject: win\n\nFREE money now", True),
        (b"Subject: hi\n\nsee you at 10", False),
    ]


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"truth.json": '{"a.eml": "maybe"}', "a.eml": "x"}, "neither spam nor ham"),
        ({"truth.json": '{"../escape.eml": "spam"}'}, "outside the data folder"),
        ({"labels.csv": "file,label\nmissing.eml,spam\n"}, "does not exist"),
        ({"notes.txt": "nothing labelled"}, "no truth.json"),
    ],
)
def test_load_examples_explains_bad_data(tmp_path: Path, files: dict[str, str], message: str) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(UserError, match=message):
        load_examples(tmp_path)


def test_load_examples_needs_text_and_label_columns(tmp_path: Path) -> None:
    path = tmp_path / "mail.csv"
    path.write_text("body,class\nhello,ham\n")
    with pytest.raises(UserError, match="'text' and 'label'"):
        load_examples(path)


# --- hostile input -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_malformed_mail_is_scored_without_error(model: SpamModel, path: Path) -> None:
    score = model.score(path.read_bytes())
    assert 0.0 <= score.probability <= 1.0


_HEADER_LINES = st.sampled_from(
    [
        b"From: a@b.example\n",
        b"Subject: =?utf-8?B?zzz?=\n",
        b"Subject: =?x-unknown?Q?=FF=00?=\n",
        b"Content-Type: multipart/mixed; boundary=XX\n",
        b"Content-Type: text/html; charset=unknown-8bit\n",
        b"Content-Transfer-Encoding: base64\n",
        b"Content-Transfer-Encoding: quoted-printable\n",
        b"Received: from [300.1.2.3] by x\n",
        b"Reply-To: <@>\n",
        b"Message-ID: <>\n",
        b"\xff\xfe: \x00\n",
        b"--XX\n",
        b"--XX--\n",
        b"\n",
    ]
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_HEADER_LINES | st.binary(max_size=200), max_size=40))
def test_feature_extraction_never_raises_on_mail_like_bytes(parts: list[bytes]) -> None:
    counts = extract(b"".join(parts))
    assert all(count > 0 for count in counts.values())


@settings(max_examples=100, deadline=None)
@given(raw=st.binary(max_size=3000))
def test_scoring_never_raises_on_arbitrary_bytes(model: SpamModel, raw: bytes) -> None:
    score = model.score(raw)
    assert 0.0 <= score.probability <= 1.0


def test_the_checked_model_scores_exactly_as_the_pipeline_without_importing_sklearn() -> None:
    import subprocess
    import sys

    from maildesk.classifier.handle import CheckedSpamModel

    files = sorted((CORPORA / "spamassassin-2002").glob("*/*"))[::25]
    raws = [p.read_bytes() for p in files]
    checked = CheckedSpamModel(MODEL)
    reference = SpamModel.load(MODEL).score_many(raws)
    for fast, slow in zip((checked.score(r) for r in raws), reference, strict=True):
        assert abs(fast.probability - slow.probability) < 1e-9
        assert fast.reasons == slow.reasons
    # a process that only scores never imports scikit-learn (over a second of start-up)
    code = (
        "import sys; from pathlib import Path; from maildesk.classifier.handle import CheckedSpamModel; "
        f"CheckedSpamModel(Path({str(MODEL)!r})).score(b'Subject: hi\\n\\nhello'); "
        "print('sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    import shutil

    from maildesk.classifier.handle import CheckedSpamModel

    copy = tmp_path / "spam"
    shutil.copytree(MODEL, copy)
    data = bytearray((copy / "spam.weights.npz").read_bytes())
    data[100] ^= 0x01
    (copy / "spam.weights.npz").write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"weights .* do not match"):
        CheckedSpamModel(copy)
