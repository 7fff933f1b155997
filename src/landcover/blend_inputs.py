"""Blending's inputs: compatible experiments (same data, ids and folds) with their OOF truth.

Rows are matched by sample_id everywhere: every experiment's OOF and test predictions are
aligned to the first experiment's ids, the truth to the OOF ids. Runs of one experiment at
other seeds (``<name>_s<seed>``, ``config.seeded_name``) are averaged into one member before any
weight is tuned (``seed_groups``): their OOF, test and per-fold test predictions, meaned.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .artifacts import Experiment, check_compatible, discover
from .errors import ArtifactError, DataError
from .freshness import config_differences
from .tables import Proportions, align, read_proportions

SEEDED = re.compile(r"^(?P<base>.+)_s(?P<seed>[1-9][0-9]*)$")


def seed_groups(experiments: list[Experiment]) -> list[list[Experiment]]:
    """The experiments grouped by the experiment they are seeds of (``<name>`` and its
    ``<name>_s<seed>``), in the order their first seed comes, each group in seed order."""
    groups: dict[str, list[tuple[int, Experiment]]] = {}
    for exp in experiments:
        found = SEEDED.match(exp.name)
        base, seed = (found["base"], int(found["seed"])) if found else (exp.name, 0)
        groups.setdefault(base, []).append((seed, exp))
    return [[e for _, e in sorted(group, key=lambda pair: pair[0])] for group in groups.values()]


def averaged(group: list[Experiment]) -> Experiment:
    """One member from the runs of one experiment at several seeds: its predictions meaned,
    named as its base experiment, ``meta["seed_paths"]`` naming every run (prediction loads
    each one's fold models and averages them, ``members.SeedAverage``)."""
    if len(group) == 1:
        return group[0]
    first = group[0]
    for other in group[1:]:
        differ = [d for d in config_differences(first.config, other.config) if d != "seed"]
        if differ and differ != ["experiment"]:
            raise ArtifactError(
                f"{other.path} is not a seed of {first.path}: trained otherwise "
                f"({', '.join(d for d in differ if d != 'experiment')})"
            )
    ids, test_ids = first.oof.ids, first.test.ids

    def mean(tables: list[Proportions], ids: np.ndarray, what: str) -> Proportions:
        values = np.mean([t.select(ids, what=what).values for t in tables], axis=0)
        return Proportions(ids, values, tables[0].select(ids).folds)

    test_folds = None
    if all(e.test_folds for e in group):
        test_folds = [
            mean(list(folds), test_ids, "seed test folds")
            for folds in zip(*(e.test_folds for e in group), strict=True)
        ]
    found = SEEDED.match(first.name)
    return replace(
        first,
        name=found["base"] if found else first.name,
        oof=mean([e.oof for e in group], ids, "seed OOF"),
        test=mean([e.test for e in group], test_ids, "seed test"),
        test_folds=test_folds,
        meta={**first.meta, "seed_paths": [str(e.path) for e in group]},
        scores={},
    )


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
    average_seeds: bool = True,
) -> BlendInputs:
    """Load and cross-check the experiments (same data, ids and folds) and the OOF truth;
    ``average_seeds``: the runs of one experiment at several seeds as one member."""
    if names and len(set(names)) != len(names):
        raise ArtifactError(f"an experiment is named twice in {names}")
    experiments = discover(oof_dir, names)
    check_compatible(experiments)
    if average_seeds:
        experiments = [averaged(group) for group in seed_groups(experiments)]
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
