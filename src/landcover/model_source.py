"""What a trained model is made of, wherever it lives: each member's files (fold directories,
resolved config, metadata) with its weight and temperature, and the rest of the blend (floor,
its target, class calibration).

A submission sidecar and an experiment directory are read here; a bundle (``bundle.py``)
gives the same thing from its own folder. ``Predictor.load`` builds fold models from any of
them and ``export.py`` copies one into a bundle, so neither knows where a model came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .artifacts import Experiment, is_complete, load_experiment
from .blend_model import Stack, blend
from .errors import ArtifactError
from .submission import Submitted, load_submitted


@dataclass(frozen=True)
class MemberFiles:
    """One member: where its files are and its place in the blend."""

    name: str
    path: Path  # holds config.yaml, meta.json and folds/fold<k>/
    config: dict
    meta: dict
    weight: float
    temperature: float
    n_folds: int
    seeds: tuple[Path, ...] = ()  # every run's folder, for a member averaged over seeds


@dataclass(frozen=True)
class ModelSource:
    path: Path
    members: list[MemberFiles]
    floor: float
    prior: np.ndarray  # (8,) the floor's target
    bias: np.ndarray | None = None  # (8,) the class calibration (blend_model.py); None: none
    power: np.ndarray | None = None
    submitted: Submitted | None = None  # a sidecar's blend and its inputs
    experiment: Experiment | None = None  # a lone experiment
    left_out: list[MemberFiles] = field(default_factory=list)  # members not in the blend

    @property
    def calibration(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        return self.bias, self.power


def _files(exp: Experiment, weight: float, temperature: float) -> MemberFiles:
    n_folds = int(exp.oof.folds.max()) + 1
    seeds = tuple(Path(p) for p in exp.meta.get("seed_paths") or [])
    return MemberFiles(
        exp.name, exp.path, exp.config, exp.meta, weight, temperature, n_folds, seeds
    )


def source_of(model: str | os.PathLike[str], every_member: bool = False) -> ModelSource:
    """A sidecar ``<name>.json`` or a complete experiment directory. Members without weight
    are left out (they change nothing) unless ``every_member``."""
    path = Path(model)
    if path.suffix == ".json":
        sub = load_submitted(path)
        members = [
            _files(exp, float(w), float(t))
            for exp, w, t in zip(
                sub.inputs.experiments, sub.params.weights, sub.params.temperatures, strict=True
            )
        ]
        kept = [m for m in members if m.weight > 0 or every_member]
        left_out = [m for m in members if not (m.weight > 0 or every_member)]
        return ModelSource(
            path,
            kept,
            sub.params.floor,
            sub.prior,
            sub.params.bias,
            sub.params.power,
            submitted=sub,
            left_out=left_out,
        )
    if is_complete(path):
        exp = load_experiment(path)
        return ModelSource(path, [_files(exp, 1.0, 1.0)], 0.0, np.zeros(8), experiment=exp)
    raise ArtifactError(
        f"{path}: not a submission sidecar (<name>.json), a complete experiment nor a bundle"
    )


def kept_weights(source: ModelSource, min_weight: float) -> ModelSource:
    """``source`` without the members weighted under ``min_weight``, the others' weights
    renormalised to sum to 1 as blend tuning does when it drops one (``snap_small_weights``);
    unchanged (bit for bit) when none is dropped."""
    kept = [m for m in source.members if m.weight >= min_weight]
    if not kept:
        raise ArtifactError(f"{source.path}: no member is weighted {min_weight:g} or more")
    dropped = [m for m in source.members if m.weight < min_weight]
    if not dropped:
        return source
    total = sum(m.weight for m in kept)
    return replace(
        source,
        members=[replace(m, weight=m.weight / total) for m in kept],
        left_out=[*source.left_out, *dropped],
    )


def test_change(full: ModelSource, kept: ModelSource) -> float | None:
    """The largest change ``kept_weights`` makes to a sidecar's own test predictions (0: it
    dropped nothing; None: not a sidecar, or its experiments kept no per-fold test files)."""
    sub = full.submitted
    if sub is None or sub.inputs.test_folds is None:
        return None
    names = {m.name: m.weight for m in kept.members}
    weights = np.array([names.get(e.name, 0.0) for e in sub.inputs.experiments])
    pruned = replace(sub.params, weights=weights)
    folds = sub.inputs.test_folds
    change = [
        blend(Stack.of(folds[:, k]), pruned, sub.prior)
        - blend(Stack.of(folds[:, k]), sub.params, sub.prior)
        for k in range(folds.shape[1])
    ]
    return float(np.abs(np.mean(change, axis=0)).max())
