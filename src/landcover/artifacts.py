"""Experiment artifacts: ``<oof_dir>/<exp>/`` is complete or absent.

Layout of a complete experiment directory::

    oof.csv        sample_id, fold, 10 class columns: every train id once, predicted by the
                   model of the fold that did not see it
    test.csv       sample_id, 10 class columns: mean over the fold models
    test_folds/fold<k>.csv   each fold model's own test predictions (the blend tempers each
                   before averaging, as it was tuned on single-model OOF predictions)
    config.yaml    the resolved config
    meta.json      format_version, experiment name, data_fingerprint, folds_fingerprint,
                   seed, code version, package versions, creation time
    scores.json    {"oof_kl": float, "fold_kl": {"0": float, ...}}
    (anything else the trainer keeps: per-fold history CSVs, checkpoints)

Directories whose names start with '.' are work in progress and never loaded.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from .atomic import atomic_dir
from .errors import ArtifactError, LandcoverError
from .tables import Proportions, read_proportions, write_proportions

REQUIRED_FILES = ("oof.csv", "test.csv", "config.yaml", "meta.json", "scores.json")
FORMAT_VERSION = 2  # meta.json's format_version: what this code writes and reads (freshness.py)


@dataclass
class Experiment:
    name: str
    path: Path
    oof: Proportions
    test: Proportions
    meta: dict
    config: dict
    scores: dict = field(default_factory=dict)
    test_folds: list[Proportions] | None = None


def folds_fingerprint(ids: np.ndarray, folds: np.ndarray) -> str:
    """Hash of the (sample_id, fold) assignment, independent of row order."""
    order = np.argsort(ids)
    pairs = np.stack([np.asarray(ids)[order], np.asarray(folds)[order]]).astype(np.int64)
    return hashlib.sha256(pairs.tobytes()).hexdigest()[:16]


def is_complete(path: str | os.PathLike[str]) -> bool:
    path = Path(path)
    return (
        path.is_dir()
        and not path.name.startswith(".")
        and all((path / name).is_file() for name in REQUIRED_FILES)
    )


def load_experiment(path: str | os.PathLike[str]) -> Experiment:
    path = Path(path)
    if not is_complete(path):
        missing = [n for n in REQUIRED_FILES if not (path / n).is_file()]
        raise ArtifactError(f"{path}: not a complete experiment (missing {missing})")
    try:
        oof = read_proportions(path / "oof.csv", what="OOF predictions")
        test = read_proportions(path / "test.csv", what="test predictions", allow_fold=False)
        fold_files = sorted((path / "test_folds").glob("fold*.csv"), key=_fold_number)
        test_folds = [
            read_proportions(f, what="fold test predictions", allow_fold=False) for f in fold_files
        ] or None
    except LandcoverError as err:
        raise ArtifactError(str(err)) from None
    meta, scores = read_json(path / "meta.json"), read_json(path / "scores.json")
    config = read_yaml_mapping(path / "config.yaml")
    if test_folds and [_fold_number(f) for f in fold_files] != list(range(len(fold_files))):
        raise ArtifactError(f"{path / 'test_folds'}: expected fold0.csv .. fold<k>.csv")
    if oof.folds is None:
        raise ArtifactError(f"{path / 'oof.csv'}: no 'fold' column")
    if "data_fingerprint" not in meta:
        raise ArtifactError(f"{path / 'meta.json'}: no data_fingerprint")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path}: artifact format {meta.get('format_version', 1)}, this code reads "
            f"{FORMAT_VERSION}: retrain it (train.py --force)"
        )
    return Experiment(path.name, path, oof, test, meta, config, scores, test_folds)


def _read_mapping(path: Path, load, errors: tuple, kind: str) -> dict:
    """A mapping from an experiment file; a damaged file is named in the error."""
    try:
        value = load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, *errors) as err:
        raise ArtifactError(f"{path}: unreadable ({type(err).__name__}: {err})") from None
    if not isinstance(value, dict):
        raise ArtifactError(f"{path}: expected a {kind}")
    return value


def read_json(path: Path) -> dict:
    return _read_mapping(path, json.loads, (json.JSONDecodeError,), "JSON object")


def read_yaml_mapping(path: Path) -> dict:
    return _read_mapping(path, yaml.safe_load, (yaml.YAMLError,), "mapping")


def _fold_number(path: Path) -> int:
    digits = path.stem.removeprefix("fold")
    return int(digits) if digits.isdigit() else -1


def discover(oof_dir: str | os.PathLike[str], names: list[str] | None = None) -> list[Experiment]:
    """Load the named experiments, or every complete one under ``oof_dir`` (sorted by name)."""
    oof_dir = Path(oof_dir)
    if names:
        missing = [n for n in names if not is_complete(oof_dir / n)]
        if missing:
            raise ArtifactError(f"{oof_dir}: no complete experiment named {missing}")
        paths = [oof_dir / n for n in names]
    else:
        paths = sorted(p for p in oof_dir.iterdir() if is_complete(p)) if oof_dir.is_dir() else []
    if not paths:
        raise ArtifactError(f"{oof_dir}: no complete experiment found")
    return [load_experiment(p) for p in paths]


def incomplete_experiments(oof_dir: str | os.PathLike[str]) -> list[tuple[Path, list[str]]]:
    """Directories in ``oof_dir`` (not work in progress) that are not complete experiments,
    with the files they lack: ``discover`` leaves them out, and a user should be told."""
    oof_dir = Path(oof_dir)
    if not oof_dir.is_dir():
        return []
    return [
        (p, [n for n in REQUIRED_FILES if not (p / n).is_file()])
        for p in sorted(oof_dir.iterdir())
        if p.is_dir() and not p.name.startswith(".") and not is_complete(p)
    ]


def check_compatible(experiments: list[Experiment]) -> None:
    """Refuse experiments trained on different data, folds or sample ids."""
    first = experiments[0]
    for exp in experiments[1:]:
        if exp.meta["data_fingerprint"] != first.meta["data_fingerprint"]:
            raise ArtifactError(
                f"{exp.name} and {first.name} were trained on different data "
                f"(fingerprints {exp.meta['data_fingerprint']} vs {first.meta['data_fingerprint']})"
            )
        if set(exp.oof.ids.tolist()) != set(first.oof.ids.tolist()):
            raise ArtifactError(f"{exp.name} and {first.name}: OOF sample ids disagree")
        mine = dict(zip(exp.oof.ids.tolist(), exp.oof.folds.tolist(), strict=True))
        theirs = dict(zip(first.oof.ids.tolist(), first.oof.folds.tolist(), strict=True))
        if mine != theirs:
            bad = next(i for i in mine if mine[i] != theirs[i])
            raise ArtifactError(
                f"{exp.name} and {first.name}: fold assignments disagree (sample_id {bad}: "
                f"fold {mine[bad]} vs {theirs[bad]})"
            )
        plans = (exp.meta.get("fold_plan"), first.meta.get("fold_plan"))
        if None not in plans and plans[0] != plans[1]:
            raise ArtifactError(
                f"{exp.name} and {first.name}: trained under different fold plans (same "
                f"validation folds, different training sets: {plans[0]} vs {plans[1]}); "
                "retrain one of them under the other's data settings"
            )
        if set(exp.test.ids.tolist()) != set(first.test.ids.tolist()):
            raise ArtifactError(f"{exp.name} and {first.name}: test sample ids disagree")


def write_experiment(
    dest: str | os.PathLike[str],
    *,
    oof: Proportions,
    test: Proportions,
    meta: dict,
    config: dict,
    scores: dict,
    test_folds: np.ndarray | None = None,
    extra: dict[str, Path] | None = None,
) -> Path:
    """Write a complete experiment directory atomically (replacing any previous one).

    ``extra`` maps file names inside the experiment to existing files copied in (histories,
    checkpoints).
    """
    if oof.folds is None:
        raise ArtifactError("OOF predictions need a fold per sample")
    meta = {
        **meta,
        "format_version": FORMAT_VERSION,
        "folds_fingerprint": folds_fingerprint(oof.ids, oof.folds),
    }
    dest = Path(dest)
    with atomic_dir(dest) as tmp:
        write_proportions(tmp / "oof.csv", oof.ids, oof.values, folds=oof.folds)
        write_proportions(tmp / "test.csv", test.ids, test.values)
        for k, values in enumerate([] if test_folds is None else test_folds):
            write_proportions(tmp / "test_folds" / f"fold{k}.csv", test.ids, values)
        (tmp / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=str))
        (tmp / "scores.json").write_text(json.dumps(scores, indent=2, sort_keys=True))
        for name, src in (extra or {}).items():
            target = tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target)
    return dest
