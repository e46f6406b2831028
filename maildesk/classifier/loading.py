"""Finding the configured models: the spam model, and the issue-type and team models."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from maildesk.errors import UserError

if TYPE_CHECKING:
    from maildesk.classifier.text import PlainTextModel, TextModel
    from maildesk.config import Config

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent
# loaded models by (folder, checksum): loading takes a second or two, and a verified artifact
# with the same checksum is the same model, so one process (the test suite, a long `serve`)
# loads each once; a retrained model has a new checksum and is loaded afresh
_LOADED: dict[tuple[str, str], TextModel | PlainTextModel] = {}


def find_model_folder(config: Config, name: str, found: Callable[[Path], bool]) -> Path | None:
    """The first folder `name` can mean for which `found(folder)` holds, or None.

    A relative path is looked up next to the config file, in the working directory, then in
    the project that ships `models/`, so `maildesk serve` finds the shipped models wherever
    it is started.
    """
    candidates = [Path(name)]
    if not Path(name).is_absolute():
        bases = [config.source.parent if config.source else None, Path.cwd(), PROJECT_ROOT]
        candidates = [base / name for base in bases if base is not None]
    return next((folder for folder in candidates if found(folder)), None)


def load_text_model(config: Config, kind: str) -> TextModel | PlainTextModel | None:
    """The `kind` model the config names, or None when it is off, or absent at its default path.

    A model that is there but tampered with or incompatible raises ModelError.
    """
    name = {
        "issue-type": config.classify.issue_type_model,
        "team": config.classify.team_model,
        "request-type": config.classify.request_type_model,
    }[kind]
    if not name:
        return None
    folder = find_model_folder(config, name, lambda f: (f / f"{kind}.json").is_file())
    if folder is not None:
        from maildesk.classifier import artifact
        from maildesk.classifier.text import FEATURE_FORMAT, FastPredictor, PlainTextModel, TextModel

        manifest = artifact.verify(
            folder, name=kind, kind=kind, feature_format=FEATURE_FORMAT, retrain=f"maildesk train {kind}"
        )
        key = (str(folder.resolve()), str(manifest.get("sha256")))
        if key not in _LOADED:
            arrays = artifact.load_arrays(folder, manifest)
            # the plain weights when the model has them: no scikit-learn import, a fast load
            _LOADED[key] = (
                PlainTextModel(kind, FastPredictor.from_arrays(arrays), manifest)
                if arrays
                else TextModel.load(folder, kind)
            )
        return _LOADED[key]
    if name != f"models/{kind}":
        raise UserError(f"config key classify.{kind.replace('-', '_')}_model: no model at {name!r}")
    if kind == "issue-type":
        log.warning("no issue-type model installed (models/issue-type): tickets stay unclassified")
    return None
