"""The shift test: how members and the blend hold up when the radiometry of new ground differs
from the training region's, measured on the spatial validation folds.

Each change is applied to the validation patches (uint16 reflectance x 1e4), seeded by the
sample id, and every fold model predicts the patches of its own validation fold, as for OOF.
The ranges are those that separate a test region from a training one in Sentinel-2 L2A
imagery: calibration and sun/view geometry (a per-band gain of up to 15%), residual path
radiance after atmospheric correction (an offset of up to 0.03 reflectance), thin haze the
cloud mask misses (10-30% of a bright, bluish layer), and another phase of the vegetation
(NIR 10-25% lower, red 10-40% higher, as after harvest or in autumn).

A change is drawn per patch, or once for a whole held-out fold (``region_draw``): a test
region's change is mostly shared by its patches (one acquisition, one atmosphere).

Transductive levers play the test set with the held-out fold's images (never its labels):
``adapt`` re-estimates the networks' BatchNorm statistics on them; each patch's dark level is
brought within the training patches' as the member's fold models do it (``radiometry.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .augment import AIRLIGHT, GAIN, HAZE, OFFSET

SHIFTS: dict[str, str] = {
    "none": "the patches as they are",
    "gain": f"per-band gain x U{GAIN}",
    "offset": f"per-band offset + U(0, {OFFSET:g}) ({OFFSET / 1e4:g} reflectance)",
    "haze": f"haze: (1 - t) r + t A, t ~ U{HAZE}, A = {tuple(int(a) for a in AIRLIGHT)}",
    "season": "NIR x U(0.75, 0.9), red x U(1.1, 1.4)",
    "combined": "gain, offset and haze at half their ranges",
}


def shifted(
    images: np.ndarray, ids: np.ndarray, kind: str, region: int | None = None
) -> np.ndarray:
    """``images`` (n, 4, H, W) uint16 under the change ``kind``, drawn per sample id, or drawn
    once and shared by every patch when they are one ``region`` (its number seeds the draw)."""
    if region is None:
        keys = [[int(i), len(kind), ord(kind[0])] for i in np.asarray(ids).tolist()]
    else:
        keys = [[int(region), len(kind), ord(kind[0]), 1]] * len(ids)
    return _changed(images, ((kind, np.random.default_rng(key)) for key in keys))


CHANGES = tuple(k for k in SHIFTS if k != "none")  # what a shifted training copy may be under
TRAINING_KINDS = ("gain", "offset", "haze")  # LightGBM's shifted copies, by default


def randomised(
    images: np.ndarray,
    rows: np.ndarray,
    seed: int,
    copy: int,
    kinds: tuple[str, ...] = TRAINING_KINDS,
) -> np.ndarray:
    """``images`` (n, 4, H, W) uint16, each under one change of ``kinds`` drawn with its
    ranges above from a generator seeded by (seed, copy, the patch's row): the LightGBM
    member's changed training copies (``gbm.radiometric_copies``, ``gbm.radiometric_kinds``). By
    default the season change is left out: the shift test's season column then measures a
    change training never saw."""
    if not kinds or any(k not in CHANGES for k in kinds):
        raise ValueError(f"training changes must be some of {list(CHANGES)}, got {kinds}")

    def draws():
        for row in np.asarray(rows).tolist():
            rng = np.random.default_rng([int(seed), int(copy), int(row), 7])
            yield kinds[rng.integers(len(kinds))], rng

    return _changed(images, draws())


def _changed(images: np.ndarray, draws) -> np.ndarray:
    """Each patch under its own ``(kind, generator)`` of ``draws``, back to uint16."""
    x = np.asarray(images, dtype=np.float64)
    out = np.empty_like(x)
    for i, (kind, rng) in enumerate(draws):
        out[i] = _change(x[i], kind, rng)
    return np.clip(np.rint(out), 1, 65535).astype(np.uint16)


def _change(x: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    air = np.array(AIRLIGHT)[:, None, None]
    if kind == "none":
        return x
    if kind == "gain":
        return x * rng.uniform(*GAIN, size=(4, 1, 1))
    if kind == "offset":
        return x + rng.uniform(0, OFFSET, size=(4, 1, 1))
    if kind == "haze":
        t = rng.uniform(*HAZE)
        return (1 - t) * x + t * air
    if kind == "season":
        y = x.copy()
        y[3] *= rng.uniform(0.75, 0.9)
        y[2] *= rng.uniform(1.1, 1.4)
        return y
    if kind == "combined":
        t = rng.uniform(0.05, 0.15)
        y = x * rng.uniform(0.925, 1.075, size=(4, 1, 1)) + rng.uniform(0, 150, size=(4, 1, 1))
        return (1 - t) * y + t * air
    raise ValueError(f"unknown shift {kind!r} (known: {', '.join(SHIFTS)})")


def region_seed(fold: int, draw: int = 0) -> int:
    """The seed of held-out fold ``fold``'s shared change, its ``draw``-th (``region_draw``)."""
    return 1_000_003 + 1_000 * draw + fold


def shifted_oof(
    folds: list,
    images: np.ndarray,
    ids: np.ndarray,
    fold_of: np.ndarray,
    kind: str,
    adapt: Callable | None = None,
    region_draw: int | None = None,
    prepare: Callable | None = None,
) -> np.ndarray:
    """(n, 10) OOF predictions of the fold models ``folds`` (``FoldModel``) on their own
    validation rows (``fold_of``), under the change ``kind``, drawn per patch or, given a
    ``region_draw``, once a fold (seeded by ``region_seed(fold, region_draw)``).
    ``prepare(images, ids, fold)`` first prepares the (changed) validation images as fold
    ``fold`` prepares its inputs (each patch's dark level), and ``adapt(model, images)``
    adapts a fold model to them, if given."""
    out = np.zeros((len(ids), 10))
    for k, model in enumerate(folds):
        rows = np.flatnonzero(fold_of == k)
        region = None if region_draw is None else region_seed(k, region_draw)
        changed = shifted(np.asarray(images[rows]), ids[rows], kind, region)
        if prepare is not None:
            changed = prepare(changed, ids[rows], k)
        if adapt is not None:
            adapt(model, changed)
        out[rows] = model.predict_proportions(changed, np.arange(len(rows)))
    return out
