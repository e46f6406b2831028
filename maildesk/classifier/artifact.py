"""Saving and loading trained models safely: skops files with a manifest that is checked on load.

A model file is code-adjacent: pickle would run whatever a tampered file asks. skops loads
only the types named in TRUSTED_TYPES, and the manifest beside the file pins its sha256, its
kind, the feature format it was trained on and the scikit-learn version that wrote it, so a
model that would silently mis-score (or not load at all) is refused with a message that says
what to do.
"""

from __future__ import annotations

import hashlib
import json
import platform
import zipfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import sklearn
import skops
import skops.io

from maildesk.errors import MaildeskError

# Every type a maildesk model may contain beyond what skops trusts by default is named here;
# anything else in a file is refused rather than loaded.
TRUSTED_TYPES: Final[tuple[str, ...]] = (
    "sklearn.pipeline.Pipeline",
    "sklearn.feature_extraction._hash.FeatureHasher",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.svm._classes.LinearSVC",
    "sklearn.model_selection._split.StratifiedKFold",
)

MANIFEST_VERSION: Final = 1


class ModelError(MaildeskError):
    """A model cannot be used: missing, tampered with, of another kind, or from incompatible software."""


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _major_minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def versions() -> dict[str, str]:
    """The software versions a manifest records, as they are in this process."""
    return {
        "scikit-learn": sklearn.__version__,
        "skops": skops.__version__,
        "python": platform.python_version(),
    }


def save(
    model: object,
    folder: Path,
    *,
    name: str,
    kind: str,
    feature_format: int,
    metrics: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
    created: datetime | None = None,
) -> dict[str, Any]:
    """Write `<name>.skops` and `<name>.json` (the manifest) into folder; returns the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    artifact = folder / f"{name}.skops"
    # write beside and rename, so a crash never leaves a half-written model under the real name
    partial = artifact.with_suffix(".skops.tmp")
    skops.io.dump(model, partial, compression=zipfile.ZIP_DEFLATED)
    partial.replace(artifact)
    manifest: dict[str, Any] = {
        "manifest_version": MANIFEST_VERSION,
        "kind": kind,
        "artifact": artifact.name,
        "created": (created or datetime.now(UTC)).astimezone(UTC).isoformat(timespec="seconds"),
        "sha256": _sha256(artifact),
        "versions": versions(),
        "feature_format": feature_format,
        "metrics": dict(metrics),
        **dict(extra or {}),
    }
    (folder / f"{name}.json").write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
    return manifest


def read_manifest(folder: Path, name: str, retrain: str) -> dict[str, Any]:
    """The manifest of `<name>` in folder, or ModelError naming what is missing or broken."""
    path = folder / f"{name}.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"no model manifest at {path}: train one with `{retrain}`") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"model manifest {path} is unreadable ({exc})") from None
    if not isinstance(manifest, dict):
        raise ModelError(f"model manifest {path} is not a JSON object")
    return manifest


def load(folder: Path, *, name: str, kind: str, feature_format: int, retrain: str) -> tuple[Any, dict]:
    """Load `<name>.skops` after checking its manifest; `retrain` is the command the errors suggest.

    Checks, in order: the manifest's kind and feature format, the scikit-learn major.minor
    version (estimators are not portable across them), the file's sha256, and then that the
    file holds only trusted types.
    """
    manifest = read_manifest(folder, name, retrain)
    if manifest.get("kind") != kind:
        raise ModelError(f"{folder} holds a {manifest.get('kind')!r} model, not {kind!r}")
    if manifest.get("feature_format") != feature_format:
        raise ModelError(
            f"the {kind} model in {folder} uses feature format {manifest.get('feature_format')!r}, "
            f"this maildesk extracts format {feature_format}: retrain it with `{retrain}`"
        )
    saved = str(manifest.get("versions", {}).get("scikit-learn", "unknown"))
    if _major_minor(saved) != _major_minor(sklearn.__version__):
        raise ModelError(
            f"the {kind} model in {folder} was trained with scikit-learn {saved}, "
            f"this is scikit-learn {sklearn.__version__}: retrain it with `{retrain}`"
        )
    artifact = folder / str(manifest.get("artifact", f"{name}.skops"))
    if artifact.parent != folder or not artifact.is_file():
        raise ModelError(f"model file {artifact} is missing: retrain it with `{retrain}`")
    actual = _sha256(artifact)
    if actual != manifest.get("sha256"):
        raise ModelError(
            f"model file {artifact} does not match its manifest (sha256 {actual[:12]}..., "
            f"expected {str(manifest.get('sha256'))[:12]}...): it was changed or damaged; "
            f"retrain it with `{retrain}`"
        )
    try:
        untrusted = skops.io.get_untrusted_types(file=artifact)
        unknown = sorted(set(untrusted) - set(TRUSTED_TYPES))
        if unknown:
            listed = ", ".join(unknown)
            raise ModelError(f"model file {artifact} contains types maildesk does not load: {listed}")
        model = skops.io.load(artifact, trusted=list(untrusted))
    except ModelError:
        raise
    except (OSError, ValueError, TypeError, KeyError, AttributeError, zipfile.BadZipFile) as exc:
        raise ModelError(
            f"model file {artifact} cannot be loaded ({exc}): retrain it with `{retrain}`"
        ) from None
    return model, manifest
