"""The spam model as the pipeline holds it: checked at once, loaded only where it scores.

Checking (manifest, scikit-learn version, checksum) costs milliseconds; loading imports
scikit-learn, over a second. The worker checks at start-up, so a tampered or incompatible
model stops it with a clear error before any mail is touched; the parser processes load
and score; the worker loads only if it must score itself (a small batch, or a fallback).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from maildesk.classifier import artifact
from maildesk.classifier.artifact import ModelError

if TYPE_CHECKING:
    from maildesk.classifier.spam import LinearScorer, SpamModel, SpamScore

# here, not in maildesk.classifier.spam, which cannot be imported without scikit-learn
KIND = "spam"
RETRAIN = "maildesk train spam"
FEATURE_FORMAT = 1  # the version of spam.extract(): a model trained on another is refused


class CheckedSpamModel:
    """A verified spam model folder; `score` loads the model on first use."""

    def __init__(self, folder: Path) -> None:
        self.manifest: dict[str, Any] = artifact.verify(
            folder, name=KIND, kind=KIND, feature_format=FEATURE_FORMAT, retrain=RETRAIN
        )
        threshold = self.manifest.get("threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1:
            raise ModelError(f"the spam model in {folder} has no valid threshold: retrain with `{RETRAIN}`")
        self.folder = folder
        self.threshold = float(threshold)
        self._model: SpamModel | None = None
        self._linear: LinearScorer | None = None

    def loaded(self) -> SpamModel:
        """The full scikit-learn model (for score_many and training code)."""
        if self._model is None:
            from maildesk.classifier.spam import SpamModel

            self._model = SpamModel.load(self.folder)
        return self._model

    def score(self, raw: bytes) -> SpamScore:
        if self._linear is None:
            from maildesk.classifier.spam import LinearScorer

            arrays = artifact.load_arrays(self.folder, self.manifest)
            self._linear = LinearScorer.from_arrays(arrays) if arrays else self.loaded().linear
        return self._linear.score(raw)

    def score_many(self, raws: list[bytes]) -> list[SpamScore]:
        return self.loaded().score_many(raws)
