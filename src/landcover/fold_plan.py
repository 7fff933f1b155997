"""The fold plan on disk: the validation fold of every train id and the ids that train each
fold's model, made once per data and scheme (``folds.py``) and read by every stage.

The file is a CSV ``sample_id,fold,train_0,..,train_{k-1}`` (``train_k`` = 1 when the patch
trains fold k's model) beside a JSON with the scheme; ``plan_for`` is the one entry point that
makes it (or reads it when it exists).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_path, write_json
from .constants import FOLD_COLUMN, ID_COLUMN
from .errors import DataError
from .folds import FoldScheme, assign_groups, check_folds, resolve_scheme, training_mask


@dataclass(frozen=True)
class FoldPlan:
    """Validation fold of every train id, and which ids train each fold's model."""

    ids: np.ndarray
    folds: np.ndarray
    train: np.ndarray  # (n_folds, n) bool
    scheme: dict
    path: Path | None = None

    @property
    def n_folds(self) -> int:
        return int(self.train.shape[0])

    def val_rows(self, fold: int) -> np.ndarray:
        return np.flatnonzero(self.folds == fold)

    def train_rows(self, fold: int) -> np.ndarray:
        return np.flatnonzero(self.train[fold])

    def buffer_rows(self, fold: int) -> np.ndarray:
        """Rows left out of fold ``fold``'s training although they are not its validation."""
        return np.flatnonzero(~self.train[fold] & (self.folds != fold))

    def fingerprint(self) -> str:
        """Hash of the whole plan (validation folds and training sets), independent of order."""
        order = np.argsort(self.ids)
        parts = np.vstack([self.ids[order], self.folds[order], self.train[:, order]])
        return hashlib.sha256(parts.astype(np.int64).tobytes()).hexdigest()[:16]

    def summary(self) -> list[dict]:
        return [
            {
                "fold": k,
                "val": int((self.folds == k).sum()),
                "train": int(self.train[k].sum()),
                "buffer": len(self.buffer_rows(k)),
            }
            for k in range(self.n_folds)
        ]


def make_plan(ids: np.ndarray, labels: np.ndarray, scheme: FoldScheme) -> FoldPlan:
    ids = np.asarray(ids, dtype=np.int64)
    folds = assign_groups(scheme.groups(ids), labels, n_folds=scheme.n_folds, seed=scheme.seed)
    train = training_mask(ids, folds, scheme.buffer_ids)
    empty = [k for k in range(scheme.n_folds) if not train[k].any()]
    if empty:
        raise DataError(
            f"{scheme.describe()}: fold {empty[0]} has no training patch left after the buffer; "
            "use fewer buffer rows (data.buffer_rows)"
        )
    return FoldPlan(ids, folds, train, scheme.to_dict())


def write_plan(path: str | os.PathLike[str], plan: FoldPlan) -> Path:
    """The CSV (ids, folds, training membership) and its JSON scheme, both atomically."""
    path = Path(path)
    check_folds(plan.ids, plan.folds, where=str(path))
    frame = pd.DataFrame({ID_COLUMN: plan.ids, FOLD_COLUMN: plan.folds})
    for k in range(plan.n_folds):
        frame[f"train_{k}"] = plan.train[k].astype(np.int8)
    write_json(path.with_suffix(".json"), {**plan.scheme, "folds": plan.summary()})
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def read_plan(path: str | os.PathLike[str], ids: np.ndarray) -> FoldPlan:
    """The plan for ``ids`` (rows in that order) from a fold file; a file with only
    ``sample_id,fold`` (an earlier version) means: train on every other fold."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: fold file not found")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: unreadable fold file ({err})") from None
    if list(frame.columns[:2]) != [ID_COLUMN, FOLD_COLUMN]:
        raise DataError(f"{path}: expected columns {ID_COLUMN},{FOLD_COLUMN},.. got {list(frame)}")
    check_folds(frame[ID_COLUMN].to_numpy(), frame[FOLD_COLUMN].to_numpy(), where=str(path))
    index = pd.Index(frame[ID_COLUMN].to_numpy())
    rows = index.get_indexer(np.asarray(ids))
    if (rows < 0).any() or len(index) != len(ids):
        raise DataError(f"{path}: fold file does not cover exactly the train ids")
    frame = frame.iloc[rows]
    folds = frame[FOLD_COLUMN].to_numpy(dtype=np.int64)
    n_folds = int(folds.max()) + 1
    columns = [f"train_{k}" for k in range(n_folds)]
    if len(frame.columns) == 2:
        train = np.stack([folds != k for k in range(n_folds)])
    elif list(frame.columns[2:]) == columns:
        train = frame[columns].to_numpy().T.astype(bool)
        if (train & (folds[None, :] == np.arange(n_folds)[:, None])).any():
            raise DataError(f"{path}: a patch trains the model of its own validation fold")
    else:
        raise DataError(f"{path}: expected columns {columns} after {FOLD_COLUMN}")
    meta = path.with_suffix(".json")
    scheme = json.loads(meta.read_text()) if meta.is_file() else {"kind": "id_groups"}
    scheme.pop("folds", None)
    return FoldPlan(np.asarray(ids, dtype=np.int64), folds, train, scheme, path)


def ensure_plan(
    cache_dir: str | os.PathLike[str], ids: np.ndarray, labels: np.ndarray, scheme: FoldScheme
) -> FoldPlan:
    """The fold plan for this scheme in the cache directory, made once and then reused."""
    path = Path(cache_dir) / scheme.file_name()
    if path.is_file():
        return read_plan(path, ids)
    plan = make_plan(ids, labels, scheme)
    write_plan(path, plan)
    return FoldPlan(plan.ids, plan.folds, plan.train, plan.scheme, path)


def plan_for(data, data_cfg: dict) -> FoldPlan:
    """The fold plan of a prepared dataset (``cache.PreparedData``) under a config's ``data``
    section: the one entry point that prepare.py and the fold loop share."""
    scheme = resolve_scheme(data_cfg, data.train_ids, data.row_width)
    return ensure_plan(data.cache_dir, data.train_ids, data.labels, scheme)
