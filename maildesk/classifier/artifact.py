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
    import sklearn
    import skops

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
    arrays: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write `<name>.skops` and `<name>.json` (the manifest) into folder; returns the manifest."""
    import skops.io

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
    if arrays:
        # the fitted numbers alone, for processes that score without loading scikit-learn;
        # plain arrays in an .npz, read with allow_pickle=False, checked by their own sha256
        import numpy as np

        weights = folder / f"{name}.weights.npz"
        with open(weights, "wb") as handle:
            np.savez_compressed(handle, **dict(arrays))
        manifest["weights"] = {"file": weights.name, "sha256": _sha256(weights)}
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


def verify(folder: Path, *, name: str, kind: str, feature_format: int, retrain: str) -> dict[str, Any]:
    """Check a model's manifest, software version and checksum without loading it.

    Cheap (no scikit-learn import), so a process can refuse a tampered or incompatible model
    at start-up and leave the loading to whichever process scores with it.
    """
    from importlib.metadata import version

    manifest = read_manifest(folder, name, retrain)
    if manifest.get("kind") != kind:
        raise ModelError(f"{folder} holds a {manifest.get('kind')!r} model, not {kind!r}")
    if manifest.get("feature_format") != feature_format:
        raise ModelError(
            f"the {kind} model in {folder} uses feature format {manifest.get('feature_format')!r}, "
            f"this maildesk extracts format {feature_format}: retrain it with `{retrain}`"
        )
    saved = str(manifest.get("versions", {}).get("scikit-learn", "unknown"))
    installed = version("scikit-learn")
    if _major_minor(saved) != _major_minor(installed):
        raise ModelError(
            f"the {kind} model in {folder} was trained with scikit-learn {saved}, "
            f"this is scikit-learn {installed}: retrain it with `{retrain}`"
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
    weights = manifest.get("weights")
    if weights is not None:
        path = folder / str(weights.get("file", ""))
        if path.parent != folder or not path.is_file() or _sha256(path) != weights.get("sha256"):
            raise ModelError(
                f"model weights {path} are missing or do not match the manifest: retrain it with `{retrain}`"
            )
    return manifest


def load_arrays(folder: Path, manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """The arrays `save` wrote beside a model `verify` accepted, or None when it has none."""
    import numpy as np

    weights = manifest.get("weights")
    if not weights:
        return None
    try:
        with np.load(folder / str(weights["file"]), allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"model weights in {folder} cannot be read ({exc})") from None


def load(folder: Path, *, name: str, kind: str, feature_format: int, retrain: str) -> tuple[Any, dict]:
    """Load `<name>.skops` after `verify`; `retrain` is the command the errors suggest.

    Checks, in order: the manifest's kind and feature format, the scikit-learn major.minor
    version (estimators are not portable across them), the file's sha256, and then that the
    file holds only trusted types.
    """
    import skops.io

    manifest = verify(folder, name=name, kind=kind, feature_format=feature_format, retrain=retrain)
    artifact = folder / str(manifest.get("artifact", f"{name}.skops"))
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
