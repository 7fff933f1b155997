"""Deterministic k-fold assignment, stratified on class proportions, neighbours kept together.

Consecutive sample ids are neighbouring tiles, so ids are grouped in blocks of ``group_size``
(``id // group_size``) and a whole block goes to one fold; otherwise a tile's neighbour in
another fold leaks its content into validation. Blocks are assigned greedily, rarest content
first, to the fold where they most reduce the squared relative deviation of the fold's class
totals (and size) from an equal share, so every fold's class mix is close to the whole and rare
classes are spread across folds.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .constants import FOLD_COLUMN, ID_COLUMN
from .errors import DataError
from .metric import scored_proportions


def make_folds(
    ids: np.ndarray, labels: np.ndarray, *, n_folds: int = 5, group_size: int = 8, seed: int = 0
) -> np.ndarray:
    """Fold index (0..n_folds-1) for each id, in the order of ``ids``."""
    ids = np.asarray(ids, dtype=np.int64)
    if n_folds < 2:
        raise DataError(f"need at least 2 folds, got {n_folds}")
    if group_size < 1:
        raise DataError(f"group_size must be >= 1, got {group_size}")
    groups = ids // group_size
    uniq, group_of = np.unique(groups, return_inverse=True)
    if len(uniq) < n_folds:
        raise DataError(
            f"{len(ids)} samples in {len(uniq)} groups of {group_size} ids cannot fill "
            f"{n_folds} folds; lower group_size or n_folds"
        )
    mass = np.zeros((len(uniq), labels.shape[1] - 2))
    np.add.at(mass, group_of, scored_proportions(labels))
    sizes = np.bincount(group_of).astype(np.float64)

    total = mass.sum(axis=0)
    present = total > 0
    target = total[present] / n_folds
    target_size = sizes.sum() / n_folds
    share = np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)

    rng = np.random.default_rng(seed)
    shuffled = rng.permutation(len(uniq))
    order = shuffled[np.argsort(-share[shuffled].max(axis=1), kind="stable")]

    fold_mass = np.zeros((n_folds, int(present.sum())))
    fold_size = np.zeros(n_folds)
    group_fold = np.empty(len(uniq), dtype=np.int64)
    for g in order:
        after = ((fold_mass + mass[g, present] - target) / target) ** 2
        before = ((fold_mass - target) / target) ** 2
        size_cost = ((fold_size + sizes[g] - target_size) / target_size) ** 2 - (
            (fold_size - target_size) / target_size
        ) ** 2
        cost = (after - before).sum(axis=1) + present.sum() * size_cost
        best = np.flatnonzero(np.isclose(cost, cost.min()))
        fold = int(best[rng.integers(len(best))]) if len(best) > 1 else int(best[0])
        group_fold[g] = fold
        fold_mass[fold] += mass[g, present]
        fold_size[fold] += sizes[g]
    return group_fold[group_of]


def folds_file_name(n_folds: int, group_size: int, seed: int) -> str:
    return f"folds-k{n_folds}-g{group_size}-s{seed}.csv"


def write_folds(path: str | os.PathLike[str], ids: np.ndarray, folds: np.ndarray) -> Path:
    check_folds(ids, folds, where=str(path))
    frame = pd.DataFrame({ID_COLUMN: ids, FOLD_COLUMN: folds})
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return Path(path)


def read_folds(path: str | os.PathLike[str], ids: np.ndarray) -> np.ndarray:
    """Folds for ``ids`` (in that order) from a ``sample_id,fold`` file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: fold file not found")
    frame = pd.read_csv(path)
    if list(frame.columns) != [ID_COLUMN, FOLD_COLUMN]:
        raise DataError(f"{path}: expected columns {ID_COLUMN},{FOLD_COLUMN}, got {list(frame)}")
    check_folds(frame[ID_COLUMN].to_numpy(), frame[FOLD_COLUMN].to_numpy(), where=str(path))
    lookup = dict(zip(frame[ID_COLUMN].tolist(), frame[FOLD_COLUMN].tolist(), strict=True))
    missing = [i for i in np.asarray(ids).tolist() if i not in lookup]
    if missing or len(lookup) != len(ids):
        raise DataError(f"{path}: fold file does not cover exactly the train ids")
    return np.array([lookup[i] for i in np.asarray(ids).tolist()], dtype=np.int64)


def check_folds(ids: np.ndarray, folds: np.ndarray, *, where: str) -> None:
    """No id in two folds (ids unique), every fold non-empty and numbered 0..k-1."""
    ids = np.asarray(ids)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"{where}: sample_id {uniq[counts > 1][0]} is assigned to several folds")
    present = np.unique(folds)
    if present.tolist() != list(range(len(present))):
        raise DataError(f"{where}: folds must be numbered 0..k-1, got {present.tolist()}")


def ensure_folds(
    cache_dir: Path,
    ids: np.ndarray,
    labels: np.ndarray,
    *,
    n_folds: int,
    group_size: int,
    seed: int,
) -> tuple[Path, np.ndarray]:
    """The fold file for these settings in the cache directory, made once and then reused."""
    path = Path(cache_dir) / folds_file_name(n_folds, group_size, seed)
    if path.is_file():
        return path, read_folds(path, ids)
    folds = make_folds(ids, labels, n_folds=n_folds, group_size=group_size, seed=seed)
    write_folds(path, ids, folds)
    return path, folds
