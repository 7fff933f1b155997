"""Fold schemes: how the train ids are cut into folds, and which ids train each fold.

Sample ids are a raster of tiles, ``row_width`` to a row (45 in the official data: id i + 45 is
the tile below id i), and the official test set is two bands of whole rows that no training
tile touches. The default scheme mirrors that:

- ``row_bands``: the rows the ids span are cut into bands of whole rows (contiguous id
  ranges), near-equal in height (or ``band_rows`` each); each band goes to one fold.
  Training tiles within ``buffer_rows`` rows of a fold's validation bands (diagonals
  included) are left out of that fold's training: buffered leave-block-out CV (Roberts et
  al. 2017, Ecography 40:913).
- ``id_groups``: blocks of ``group_size`` consecutive ids (horizontal neighbours only); the tiles
  above and below land in another fold most of the time, so its OOF leaks. Kept to compare.

Groups (bands or blocks) are assigned greedily, rarest content first, to the fold where they
most reduce the squared relative deviation of the fold's class totals (and size) from an equal
share, so every fold's class mix is close to the whole and rare classes are spread out.

The plan that results (``fold_plan.py``) is made once and kept on disk; every stage reads it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .constants import OFFICIAL_ROW_WIDTH
from .errors import ConfigError, DataError
from .metric import scored_proportions

SCHEMES = ("row_bands", "id_groups")


@dataclass(frozen=True)
class FoldScheme:
    """How folds are cut, resolved for a set of ids (row range and band count known)."""

    kind: str
    n_folds: int
    seed: int
    row_width: int
    first_row: int = 0  # the rows the ids span: (id - 1) // row_width
    n_rows: int = 0
    n_bands: int = 0
    band_rows: int = 0  # rows per band; 0: the rows split into n_bands near-equal bands
    buffer_rows: int = 0
    group_size: int = 8

    @property
    def buffer_ids(self) -> int:
        """Training ids closer than this to a validation id are left out (0: none). One row
        above and below is ``row_width`` away; + 1 reaches the diagonal neighbours."""
        return self.buffer_rows * self.row_width + 1 if self.buffer_rows else 0

    def band_starts(self) -> np.ndarray:
        """First row of each band, relative to ``first_row``."""
        if self.band_rows:
            return np.arange(0, self.n_rows, self.band_rows)
        return np.array([j * self.n_rows // self.n_bands for j in range(self.n_bands)])

    def groups(self, ids: np.ndarray) -> np.ndarray:
        """The group (band or block) of each id; a group always goes to one fold."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.kind == "row_bands":
            rows = (ids - 1) // self.row_width - self.first_row
            return np.searchsorted(self.band_starts(), rows, side="right") - 1
        return ids // self.group_size

    def file_name(self) -> str:
        if self.kind == "id_groups" and not self.buffer_rows:
            return f"folds-k{self.n_folds}-g{self.group_size}-s{self.seed}.csv"  # as before
        if self.kind == "row_bands":
            size = f"r{self.band_rows}" if self.band_rows else f"n{self.n_bands}"
            shape = f"bands-w{self.row_width}-{size}"
        else:
            shape = f"groups-g{self.group_size}"
        return f"folds-{shape}-b{self.buffer_rows}-k{self.n_folds}-s{self.seed}.csv"

    def describe(self) -> str:
        if self.kind == "row_bands":
            heights = np.diff(np.append(self.band_starts(), self.n_rows))
            lo, hi = int(heights.min()), int(heights.max())
            rows = f"{lo} rows" if lo == hi else f"{lo}-{hi} rows"
            what = f"{len(heights)} bands of {rows} ({self.row_width} ids a row)"
        else:
            what = f"blocks of {self.group_size} consecutive ids"
        buffer = f", {self.buffer_rows}-row buffer" if self.buffer_rows else ", no buffer"
        return f"{self.n_folds} folds, {what}{buffer}"

    def to_dict(self) -> dict:
        return asdict(self)


def auto_band_count(n_rows: int, n_folds: int) -> int:
    """Bands at least ~10 rows tall where the data allows, 1 to 4 bands per fold.

    The full id range (523 rows, 5 folds) gets 20 bands of 26-27 rows (the official test bands
    are 37 and 75 rows); the 414-id sample (10 rows) 5 bands of 2 rows.
    """
    per_fold = int(np.clip(n_rows // (n_folds * 10), 1, 4))
    return min(n_rows, n_folds * per_fold)


def resolve_scheme(data_cfg: dict, ids: np.ndarray, dataset_row_width: int | None) -> FoldScheme:
    """The fold scheme of a config's ``data`` section for these ids.

    ``data.row_width`` null means the dataset's own (a generated dataset's ``grid.json``), else
    the official 45.
    """
    kind = data_cfg["scheme"]
    if kind not in SCHEMES:
        raise ConfigError(f"'data.scheme' must be one of {SCHEMES}, got {kind!r}")
    width = data_cfg["row_width"] or dataset_row_width or OFFICIAL_ROW_WIDTH
    for key, value in (("row_width", width), ("group_size", data_cfg["group_size"])):
        if value < 1:
            raise ConfigError(f"'data.{key}' must be >= 1, got {value}")
    for key in ("band_rows", "buffer_rows"):
        if data_cfg[key] < 0:
            raise ConfigError(f"'data.{key}' must be >= 0, got {data_cfg[key]}")
    n_folds = data_cfg["n_folds"]
    if n_folds < 2:
        raise DataError(f"need at least 2 folds, got {n_folds}")
    rows = (np.asarray(ids, dtype=np.int64) - 1) // width
    first, n_rows = int(rows.min()), int(rows.max() - rows.min() + 1)
    band_rows = data_cfg["band_rows"] if kind == "row_bands" else 0
    if kind != "row_bands":
        n_bands = 0
    elif band_rows:
        n_bands = -(-n_rows // band_rows)
    else:
        n_bands = auto_band_count(n_rows, n_folds)
    return FoldScheme(
        kind=kind,
        n_folds=n_folds,
        seed=data_cfg["fold_seed"],
        row_width=int(width),
        first_row=first if kind == "row_bands" else 0,
        n_rows=n_rows if kind == "row_bands" else 0,
        n_bands=n_bands,
        band_rows=band_rows,
        buffer_rows=data_cfg["buffer_rows"],
        group_size=data_cfg["group_size"],
    )


def assign_groups(groups: np.ndarray, labels: np.ndarray, *, n_folds: int, seed: int) -> np.ndarray:
    """Fold index (0..n_folds-1) for each row, whole groups at a time, stratified."""
    uniq, group_of = np.unique(groups, return_inverse=True)
    if len(uniq) < n_folds:
        raise DataError(
            f"{len(groups)} samples in {len(uniq)} groups cannot fill {n_folds} folds; use "
            "smaller bands (data.band_rows) or groups (data.group_size), or fewer folds"
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


def make_folds(
    ids: np.ndarray, labels: np.ndarray, *, n_folds: int = 5, group_size: int = 8, seed: int = 0
) -> np.ndarray:
    """The ``id_groups`` assignment (blocks of ``group_size`` consecutive ids)."""
    if group_size < 1:
        raise DataError(f"group_size must be >= 1, got {group_size}")
    ids = np.asarray(ids, dtype=np.int64)
    return assign_groups(ids // group_size, labels, n_folds=n_folds, seed=seed)


def training_mask(ids: np.ndarray, folds: np.ndarray, buffer_ids: int) -> np.ndarray:
    """(n_folds, n) bool: row trains fold k's model (not in fold k, not within ``buffer_ids``
    ids of any of fold k's validation ids)."""
    ids = np.asarray(ids, dtype=np.int64)
    n_folds = int(folds.max()) + 1
    mask = np.empty((n_folds, len(ids)), dtype=bool)
    for k in range(n_folds):
        mask[k] = folds != k
        if buffer_ids:
            val = np.sort(ids[folds == k])
            pos = np.searchsorted(val, ids)
            below = np.abs(ids - val[np.clip(pos - 1, 0, len(val) - 1)])
            above = np.abs(val[np.clip(pos, 0, len(val) - 1)] - ids)
            mask[k] &= np.minimum(below, above) > buffer_ids
    return mask


def check_folds(ids: np.ndarray, folds: np.ndarray, *, where: str) -> None:
    """No id in two folds (ids unique), every fold non-empty and numbered 0..k-1."""
    ids = np.asarray(ids)
    uniq, counts = np.unique(ids, return_counts=True)
    if (counts > 1).any():
        raise DataError(f"{where}: sample_id {uniq[counts > 1][0]} is assigned to several folds")
    present = np.unique(folds)
    if present.tolist() != list(range(len(present))):
        raise DataError(f"{where}: folds must be numbered 0..k-1, got {present.tolist()}")
