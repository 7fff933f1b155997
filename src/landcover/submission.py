"""A submission and its sidecar: check a submission file, and load the blend a sidecar
describes (its experiments, weights, temperatures, floor and prior) exactly as submitted.

``blend.py`` writes ``<name>.csv`` (the submission), ``<name>.json`` (the sidecar) and
``<name>.oof.csv``; the blend notebook and ``predict.py`` read them back through here, so what
they explain or apply is the blend that was handed in, never a re-tuned one.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .blend_inputs import BlendInputs, load_inputs
from .blend_model import BlendParams, Stack, blend
from .constants import SCORED_CLASSES, SUBMISSION_COLUMNS
from .errors import ArtifactError, DataError
from .provenance import REPO_ROOT
from .tables import align, read_proportions, read_table


def check_submission(path: str | os.PathLike[str], expected_ids: np.ndarray) -> int:
    """A submission has the 11 columns in the official order, the ids of x_test once each
    and rows of non-negative numbers summing to 1; returns its row count."""
    columns = list(read_table(path).columns)
    if columns != list(SUBMISSION_COLUMNS):
        raise DataError(f"{path}: columns must be {list(SUBMISSION_COLUMNS)}, got {columns}")
    table = read_proportions(path, what="submission", require_sum_to_one=True, allow_fold=False)
    align(table, expected_ids, what=f"{path} vs x_test")
    return len(table)


@dataclass(frozen=True)
class Submitted:
    """The blend of a sidecar, re-applied to its experiments' OOF predictions."""

    path: Path  # the sidecar
    sidecar: dict
    inputs: BlendInputs
    params: BlendParams
    prior: np.ndarray  # (8,) the floor's target
    oof: np.ndarray  # (n, 8) the blended OOF, equal to <name>.oof.csv


def newest_sidecar(folder: str | os.PathLike[str]) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise ArtifactError(f"{folder}: submissions folder not found")
    found = (
        sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
    )
    if not found:
        raise ArtifactError(f"{folder}: no submission sidecar (<name>.json) found; run blend.py")
    return found[-1]


def _experiment_paths(sidecar: dict, where: Path) -> list[Path]:
    """Each experiment's recorded path (every seed's, for a member averaged over seeds), as
    given (relative to the current directory) or relative to the repository root."""
    paths = []
    for model in sidecar["experiments"]:
        for given in model.get("seeds") or [model["path"]]:
            recorded = Path(given)
            options = [recorded] if recorded.is_absolute() else [recorded, REPO_ROOT / recorded]
            found = next((p for p in options if p.is_dir()), None)
            if found is None:
                raise ArtifactError(f"{where}: experiment {model['name']} not found at {recorded}")
            paths.append(found)
    return paths


def calibration_vector(recorded: dict | None) -> np.ndarray | None:
    """A sidecar's class calibration vector (none in sidecars written before it existed; a
    class's null: NaN, it has none)."""
    if recorded is None:
        return None
    values = [recorded[c] for c in SCORED_CLASSES]  # null: a class without one
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def load_submitted(path: str | os.PathLike[str]) -> Submitted:
    """The sidecar at ``path`` and its blend, checked against its own ``.oof.csv``: an
    experiment retrained since the blend was made is refused, not silently explained."""
    path = Path(path)
    if not path.is_file():
        raise ArtifactError(f"{path}: submission sidecar not found")
    try:
        sidecar = json.loads(path.read_text())
        models = sidecar["experiments"]
        params = BlendParams(
            np.array([m["weight"] for m in models], dtype=np.float64),
            np.array([m["temperature"] for m in models], dtype=np.float64),
            float(sidecar["floor"]),
            calibration_vector(sidecar.get("class_bias")),
            calibration_vector(sidecar.get("class_power")),
        )
        prior = np.array([sidecar["prior"][c] for c in SCORED_CLASSES], dtype=np.float64)
    except (ValueError, KeyError, TypeError) as err:  # a JSONDecodeError is a ValueError
        raise ArtifactError(f"{path}: not a blend sidecar ({type(err).__name__}: {err})") from None
    paths = _experiment_paths(sidecar, path)
    if len({p.parent for p in paths}) != 1:
        raise ArtifactError(f"{path}: its experiments are not in one directory")
    inputs = load_inputs(paths[0].parent, [p.name for p in paths], sidecar.get("labels_path"))
    if inputs.experiments[0].meta["data_fingerprint"] != sidecar["data_fingerprint"]:
        raise ArtifactError(f"{path}: the experiments were retrained on other data since")
    oof = blend(Stack.of(inputs.oof), params, prior)
    written = read_proportions(path.with_suffix(".oof.csv"), what="blended OOF").select(inputs.ids)
    if not np.allclose(oof, written.values[:, 2:], rtol=0, atol=1e-12):
        raise ArtifactError(
            f"{path}: re-applying the blend does not give {path.with_suffix('.oof.csv').name}; "
            "an experiment changed since the blend was made (re-run blend.py)"
        )
    return Submitted(path, sidecar, inputs, params, prior, oof)
