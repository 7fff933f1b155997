"""Label and prediction tables: read, validate, align by sample id, write atomically.

A table is ``sample_id`` plus class columns (all 10, or the 8 scored ones without no_data and
clouds), optionally a ``fold`` column. Rows always travel with their ids; nothing is matched by
position.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .atomic import atomic_path
from .constants import CLASSES, FOLD_COLUMN, ID_COLUMN, SCORED_CLASSES
from .errors import DataError

SUM_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Proportions:
    """Class proportions with their sample ids; ``values`` is (n, 10) float64, columns CLASSES."""

    ids: np.ndarray
    values: np.ndarray
    folds: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def to_frame(self) -> pd.DataFrame:
        frame = pd.DataFrame(self.values, columns=list(CLASSES))
        frame.insert(0, ID_COLUMN, self.ids)
        if self.folds is not None:
            frame.insert(1, FOLD_COLUMN, self.folds)
        return frame

    def select(self, ids: np.ndarray, *, what: str = "table") -> Proportions:
        """Rows for ``ids``, in that order; every id must be present (others are left out)."""
        ids = np.asarray(ids, dtype=np.int64)
        missing = np.setdiff1d(ids, self.ids)
        if len(missing):
            raise DataError(f"{what}: missing sample_id {_sample(missing)}")
        order = pd.Index(self.ids).get_indexer(ids)
        folds = None if self.folds is None else self.folds[order]
        return Proportions(ids=ids, values=self.values[order], folds=folds)


def _sample(ids: np.ndarray, limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f" (and {len(ids) - limit} more)" if len(ids) > limit else "")


def read_ids(path: str | os.PathLike[str], what: str = "id list") -> np.ndarray:
    """Read a one-column ``sample_id`` CSV (x_train, x_test); ids must be unique integers."""
    frame = read_table(path)
    if ID_COLUMN not in frame.columns:
        raise DataError(f"{path}: {what} has no '{ID_COLUMN}' column (columns: {list(frame)})")
    return _parse_ids(frame[ID_COLUMN], path)


def read_table(path: str | os.PathLike[str]) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable CSV ({err})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    if frame.empty:
        raise DataError(f"{path}: no rows")
    return frame


def _parse_ids(column: pd.Series, path: str | os.PathLike[str]) -> np.ndarray:
    numeric = pd.to_numeric(column.str.strip(), errors="coerce")
    bad = column[numeric.isna() | (numeric % 1 != 0)]
    if len(bad):
        raise DataError(
            f"{path}: '{ID_COLUMN}' must be an integer, "
            f"got {bad.iloc[0]!r} at row {bad.index[0] + 2}"
        )
    ids = numeric.to_numpy(dtype=np.int64)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"{path}: duplicated sample_id {_sample(uniq[counts > 1])}")
    return ids


def read_proportions(
    path: str | os.PathLike[str],
    *,
    what: str = "prediction",
    require_sum_to_one: bool = False,
    allow_fold: bool = True,
) -> Proportions:
    """Read and validate a label or prediction CSV.

    Accepts all 10 class columns or the 8 scored ones; missing no_data/clouds are filled with 0.
    Values must be finite and non-negative and no row may sum to 0; with
    ``require_sum_to_one`` (labels, submissions) every row must sum to 1.
    """
    frame = read_table(path)
    columns = list(frame.columns)
    if ID_COLUMN not in columns:
        raise DataError(f"{path}: {what} has no '{ID_COLUMN}' column (columns: {columns})")
    expected = set(CLASSES) | {ID_COLUMN} | ({FOLD_COLUMN} if allow_fold else set())
    extra = [c for c in columns if c not in expected]
    missing = [c for c in SCORED_CLASSES if c not in columns]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing class column(s) {missing}")
        if extra:
            parts.append(f"unexpected column(s) {extra}")
        raise DataError(
            f"{path}: {what} has " + " and ".join(parts) + f"; expected {list(CLASSES)}"
        )
    if len(set(columns)) != len(columns):
        raise DataError(f"{path}: {what} has duplicated column names")
    ids = _parse_ids(frame[ID_COLUMN], path)

    values = np.zeros((len(frame), len(CLASSES)), dtype=np.float64)
    for j, name in enumerate(CLASSES):
        if name not in columns:
            continue  # only the ignored classes may be absent
        col = pd.to_numeric(frame[name].str.strip(), errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(col)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: sample_id {ids[i]}: column '{name}' is not a finite number "
                f"({frame[name].iloc[i]!r})"
            )
        if (col < 0).any():
            i = int(np.flatnonzero(col < 0)[0])
            raise DataError(f"{path}: sample_id {ids[i]}: column '{name}' is negative ({col[i]})")
        values[:, j] = col
    _check_rows(values, ids, path, require_sum_to_one)

    folds = None
    if FOLD_COLUMN in columns:
        fold = pd.to_numeric(frame[FOLD_COLUMN].str.strip(), errors="coerce")
        if fold.isna().any() or (fold % 1 != 0).any() or (fold < 0).any():
            i = int(np.flatnonzero((fold.isna() | (fold % 1 != 0) | (fold < 0)).to_numpy())[0])
            raise DataError(f"{path}: sample_id {ids[i]}: fold must be a non-negative integer")
        folds = fold.to_numpy(dtype=np.int64)
    return Proportions(ids=ids, values=values, folds=folds)


def _check_rows(
    values: np.ndarray, ids: np.ndarray, where: object, require_sum_to_one: bool
) -> None:
    sums = values.sum(axis=1)
    if (sums <= 0).any():
        i = int(np.flatnonzero(sums <= 0)[0])
        raise DataError(f"{where}: sample_id {ids[i]}: row sums to 0")
    if require_sum_to_one:
        off = np.abs(sums - 1) > SUM_TOLERANCE
        if off.any():
            i = int(np.flatnonzero(off)[0])
            raise DataError(f"{where}: sample_id {ids[i]}: row sums to {sums[i]:.9g}, not 1")


def align(table: Proportions, ids: np.ndarray, *, what: str = "table") -> Proportions:
    """Reorder ``table`` to ``ids``; the id sets must be equal (nothing missing, nothing extra)."""
    ids = np.asarray(ids, dtype=np.int64)
    extra = np.setdiff1d(table.ids, ids)
    missing = np.setdiff1d(ids, table.ids)
    if len(missing) or len(extra):
        parts = []
        if len(missing):
            parts.append(f"missing sample_id {_sample(missing)}")
        if len(extra):
            parts.append(f"unexpected sample_id {_sample(extra)}")
        raise DataError(f"{what}: " + "; ".join(parts))
    return table.select(ids, what=what)


def normalise_rows(values: np.ndarray) -> np.ndarray:
    """Make each row sum to 1 (the ignored classes keep their share)."""
    values = np.asarray(values, dtype=np.float64)
    return values / values.sum(axis=1, keepdims=True)


def write_proportions(
    path: str | os.PathLike[str],
    ids: np.ndarray,
    values: np.ndarray,
    *,
    folds: np.ndarray | None = None,
    expected_ids: np.ndarray | None = None,
) -> Path:
    """Validate and atomically write a prediction CSV in the exact submission format.

    Floats are written with the shortest repr that round-trips (full precision). With
    ``expected_ids``, the ids must be exactly those, once each.
    """
    path = Path(path)
    ids = np.asarray(ids, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (len(ids), len(CLASSES)):
        raise DataError(f"{path}: expected {len(ids)} x {len(CLASSES)} values, got {values.shape}")
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"{path}: duplicated sample_id {_sample(uniq[counts > 1])}")
    if expected_ids is not None:
        align(Proportions(ids, values), expected_ids, what=str(path))
    bad = ~np.isfinite(values).all(axis=1) | (values < 0).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{path}: sample_id {ids[i]}: NaN, inf or negative value {values[i]}")
    _check_rows(values, ids, path, require_sum_to_one=True)
    frame = Proportions(ids, values, folds).to_frame()
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def prior_proportions(values: np.ndarray) -> np.ndarray:
    """Mean label vector, the constant baseline and the blend's floor target."""
    return normalise_rows(np.asarray(values, dtype=np.float64).mean(axis=0, keepdims=True))[0]
