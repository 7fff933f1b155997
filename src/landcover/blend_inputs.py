"""Blending's inputs: compatible experiments (same data, ids and folds) with their OOF truth.

Rows are matched by sample_id everywhere: every experiment's OOF and test predictions are
aligned to the first experiment's ids, the truth to the OOF ids.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .artifacts import Experiment, check_compatible, discover
from .errors import ArtifactError, DataError
from .tables import align, read_proportions


@dataclass(frozen=True)
class BlendInputs:
    experiments: list[Experiment]
    ids: np.ndarray  # OOF sample ids; rows of oof, truth and folds follow them
    folds: np.ndarray
    oof: np.ndarray  # (models, rows, 10)
    truth: np.ndarray  # (rows, 10)
    labels_path: Path
    test_ids: np.ndarray
    test: np.ndarray  # (models, test rows, 10): each experiment's mean over its fold models
    test_folds: np.ndarray | None  # (models, folds, test rows, 10), when every experiment has it

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.experiments]

    @property
    def benchmark(self) -> int | None:
        """Index of the official benchmark recipe (meta.json 'name' contains 'benchmark')."""
        for i, exp in enumerate(self.experiments):
            if "benchmark" in str(exp.meta.get("name", "")).lower():
                return i
        return None


def resolve_labels(experiments: list[Experiment], labels: str | os.PathLike[str] | None) -> Path:
    """``labels`` if given, else the ``labels_path`` the experiments recorded in meta.json."""
    if labels is not None:
        return Path(labels)
    recorded = {e.name: e.meta["labels_path"] for e in experiments if e.meta.get("labels_path")}
    if not recorded:
        raise ArtifactError(
            f"no --labels given and no meta.json records a labels_path "
            f"({', '.join(e.name for e in experiments)}); pass --labels PATH (train labels CSV)"
        )
    if len(set(recorded.values())) > 1:
        raise ArtifactError(
            f"experiments record different labels_path {recorded}; pass --labels PATH to choose"
        )
    name, path = next(iter(recorded.items()))
    if not Path(path).is_file():
        raise DataError(
            f"{path}: labels_path recorded in {name}/meta.json does not exist; pass --labels PATH"
        )
    return Path(path)


def load_inputs(
    oof_dir: str | os.PathLike[str],
    names: list[str] | None = None,
    labels: str | os.PathLike[str] | None = None,
) -> BlendInputs:
    """Load and cross-check the experiments (same data, ids and folds) and the OOF truth."""
    if names and len(set(names)) != len(names):
        raise ArtifactError(f"an experiment is named twice in {names}")
    experiments = discover(oof_dir, names)
    check_compatible(experiments)
    first = experiments[0]
    ids, test_ids = first.oof.ids, first.test.ids
    oof = [e.oof.select(ids, what=f"{e.name}/oof.csv") for e in experiments]
    test = [e.test.select(test_ids, what=f"{e.name}/test.csv") for e in experiments]
    test_folds = None
    if all(e.test_folds for e in experiments):
        test_folds = np.stack(
            [
                np.stack(
                    [p.select(test_ids, what=f"{e.name}/test_folds").values for p in e.test_folds]
                )
                for e in experiments
            ]
        )
    labels_path = resolve_labels(experiments, labels)
    truth = read_proportions(labels_path, what="train labels", require_sum_to_one=True)
    truth = align(truth, ids, what=f"{labels_path} vs the OOF sample ids of {first.name}")
    return BlendInputs(
        experiments=experiments,
        ids=ids,
        folds=first.oof.folds,
        oof=np.stack([p.values for p in oof]),
        truth=truth.values,
        labels_path=labels_path,
        test_ids=test_ids,
        test=np.stack([p.values for p in test]),
        test_folds=test_folds,
    )
