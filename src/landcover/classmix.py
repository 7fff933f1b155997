"""The class-mix shift test's regions: the held-out patches resampled to other regions' class
mixes.

New ground differs from the training region in its class mix as much as in its radiometry
(a forested valley after a plain of fields). The full official y_train holds real regional
mixes: every band of ``BAND_ROWS`` raster rows of it (450 ids on the official raster) is a
region with its own. For each, the held-out patches (each predicted by the fold model that did
not train on it) are given weights so that their mean label matches that region's mix, as
closely as the patches allow, and as evenly as possible: the maximum-entropy weights
w_i ~ exp(lambda . y_i), lambda fitted by its convex dual with a small ridge, so that a mix no
weighting of these patches reaches (a class they hardly hold) gives the nearest one instead
of weights on a handful of patches; where even so the weights rest on fewer than ``MIN_ESS``
patches' worth, the ridge is raised until they do not (a region of five patches says little).
The weights are then turned into ``n`` whole draws by
systematic resampling (deterministic): a region is these patches, each ``count`` times, which
transductive steps (prior adaptation, alignment) then see as a test region.

What is reported with each region: its target mix, the mix reached, the effective sample size
of the weights (sum w)^2 / sum w^2 and the distinct patches drawn.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize

from .errors import DataError
from .metric import scored_proportions
from .tables import read_proportions

BAND_ROWS = 10  # raster rows a region of the full y_train spans
MIN_REGION = 200  # a band with fewer labelled patches is left out (a ragged edge)
RIDGE = 1e-3  # the dual's L2 on lambda: the reach of the weighting for mixes out of range
FULL_LABELS = "train_labels_full.csv"  # the full official y_train, where a sample ships it
MIN_ESS = 20.0  # the ridge is raised (x3 a step) until the weights' effective size reaches this


@dataclass(frozen=True)
class Region:
    """One class-mix region: a band of the full y_train played by resampled patches."""

    name: str  # "rows 0-9": the raster rows of the full y_train it comes from
    target: np.ndarray  # (8,) its scored-class mix
    reached: np.ndarray  # (8,) the weighted mean of the patches' labels
    counts: np.ndarray  # (n,) int: how often each held-out patch is drawn
    ess: float  # effective sample size of the weights
    weights: np.ndarray  # (n,) the weights the counts were drawn from, summing to 1

    @property
    def distinct(self) -> int:
        return int((self.counts > 0).sum())


def label_regions(
    ids: np.ndarray,
    scored: np.ndarray,
    row_width: int,
    band_rows: int = BAND_ROWS,
    min_patches: int = MIN_REGION,
) -> list[tuple[str, np.ndarray]]:
    """(name, scored mix) of each band of ``band_rows`` raster rows of a label table (sample
    ``ids``, (n, 8) ``scored`` proportions) with at least ``min_patches`` patches."""
    band = (np.asarray(ids, dtype=np.int64) - 1) // row_width // band_rows
    out = []
    for b in np.unique(band):
        rows = band == b
        if rows.sum() >= min_patches:
            mix = np.asarray(scored)[rows].mean(axis=0)
            first = int(b) * band_rows
            out.append((f"rows {first}-{first + band_rows - 1}", mix / mix.sum()))
    return out


def tilted_weights(labels: np.ndarray, target: np.ndarray, ridge: float = RIDGE) -> np.ndarray:
    """(n,) weights summing to 1, w ~ exp(lambda . y_i) for the (n, 8) scored ``labels``,
    whose weighted mean comes as close to ``target`` as the ridge allows (the maximum-entropy
    weighting that matches a mean)."""
    y = np.asarray(labels, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)

    def dual(lam: np.ndarray) -> tuple[float, np.ndarray]:
        z = y @ lam
        top = z.max()
        e = np.exp(z - top)
        w = e / e.sum()
        value = top + np.log(e.sum()) - lam @ t + 0.5 * ridge * lam @ lam
        return value, w @ y - t + ridge * lam

    res = minimize(dual, np.zeros(y.shape[1]), jac=True, method="L-BFGS-B")
    z = y @ res.x
    w = np.exp(z - z.max())
    return w / w.sum()


def systematic_counts(weights: np.ndarray, n: int) -> np.ndarray:
    """(len(weights),) int counts summing to ``n``: systematic resampling at the fixed offset
    1/2 (deterministic; each count within one of n w_i)."""
    edges = np.cumsum(np.asarray(weights, dtype=np.float64))
    edges /= edges[-1]
    points = (np.arange(n) + 0.5) / n
    return np.bincount(np.searchsorted(edges, points), minlength=len(weights))


def class_mix_regions(
    labels: np.ndarray, mixes: list[tuple[str, np.ndarray]], n: int | None = None
) -> list[Region]:
    """Each of ``mixes`` played by the held-out patches of (n_patches, 8) scored ``labels``,
    drawn ``n`` times (default: as many as there are patches)."""
    n = len(labels) if n is None else n
    regions = []
    for name, target in mixes:
        ridge = RIDGE
        w = tilted_weights(labels, target, ridge)
        while 1 / (w @ w) < min(MIN_ESS, len(labels) / 2):
            ridge *= 3
            w = tilted_weights(labels, target, ridge)
        counts = systematic_counts(w, n)
        reached = counts @ np.asarray(labels) / counts.sum()
        regions.append(Region(name, np.asarray(target), reached, counts, float(1 / (w @ w)), w))
    return regions


def region_row_weights(regions: list[Region]) -> np.ndarray:
    """(n,) each held-out patch's mean weight over ``regions``, scaled to mean 1: a KL weighted
    by these is the mean of the regions' KLs (the blend tuned for the average region)."""
    mean = np.mean([r.weights for r in regions], axis=0)
    return mean * len(mean)


def mix_table(labels_path: Path, given: str | None = None) -> Path:
    """The label table whose regions are played: ``given``, else the full official y_train
    beside the labels (``train_labels_full.csv``, as in the shared sample), else the labels."""
    if given:
        return Path(given)
    full = Path(labels_path).parent / FULL_LABELS
    return full if full.is_file() else Path(labels_path)


def regions_from_table(
    table_path: Path,
    labels: np.ndarray,
    row_width: int,
    band_rows: int = BAND_ROWS,
    min_patches: int = MIN_REGION,
    every: int = 1,
) -> list[Region]:
    """The class-mix regions of the label table at ``table_path`` (every ``every``-th band),
    played by patches whose scored labels are ``labels`` (n, 8)."""
    table = read_proportions(table_path, what="class-mix labels")
    mixes = label_regions(
        table.ids, scored_proportions(table.values), row_width, band_rows, min_patches
    )[::every]
    if not mixes:
        raise DataError(
            f"{table_path}: no band of {band_rows} raster rows holds {min_patches} labelled "
            "patches or more (--band-rows, --region-min)"
        )
    return class_mix_regions(labels, mixes)
