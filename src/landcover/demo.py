"""A small synthetic dataset in the official layout, for demos, tests and CPU smoke runs.

One coherent scene is drawn (smooth random class fields, argmax under calibrated class biases)
and cut into tiles in row-major order, so consecutive ids are neighbours as in the real data
(random folds leak). Pixels follow per-class log-normal spectra whose means, spreads, band
correlations and texture were measured on real patches, so a per-pixel model or a small CNN can
learn the proportions, with realistic overlap between classes.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np
from scipy import ndimage

from .atomic import atomic_dir
from .constants import CLASSES, ID_COLUMN, N_CLASSES, OFFICIAL_PIXEL_COUNTS, SCORED_CLASSES
from .errors import LandcoverError
from .tables import write_proportions
from .tiff import write_image, write_mask

DEFAULT_N_TRAIN = 160
DEFAULT_N_TEST = 40
DEFAULT_SIZE = 64
MAX_PIXELS = 20_000_000  # the whole scene lives in memory (~200 bytes a pixel)


class Spectrum(NamedTuple):
    mean: tuple[float, float, float, float]  # per band, B G R NIR (reflectance x 1e4)
    sd: tuple[float, float, float, float]  # per-pixel sd within the class
    between: tuple[float, float, float, float]  # sd of the per-patch class mean
    fine: tuple[float, float, float, float]  # white-noise sd (pixel-scale texture)
    corr: tuple[float, float, float, float, float, float]  # BG BR BN GR GN RN
    scale: float  # correlation length (px) of the within-patch texture


# Measured 2026-11-24 on the shared sample (../shared/data/landcover-sample: 414 train patches,
# every pixel, read with landcover.tiff.read_image/read_mask in a scratch session, not kept):
# mean/sd/corr over the class's pixels; `between` = weighted sd of the per-patch class means
# (patches with > 200 px of it); `fine` = rms of (pixel - its 3x3 mean) on class interiors
# x 3/sqrt(8); `scale` from the NIR autocorrelation of log values at lags 1..32 (cultivated
# parcels stay correlated to ~16 px, forests and towns to ~3 px).
# NOT measured (absent from the sample, so plausible guesses): clouds (bright and flat in all
# bands), natural (bare rock / sparse vegetation: like soil), snow (very bright visible, lower
# NIR). no_data never occurs in the real data and is never generated.
# fmt: off
SPECTRA: dict[str, Spectrum] = {
    "clouds": Spectrum((4500, 4600, 4800, 5400), (1200, 1150, 1100, 1000), (600, 575, 550, 500),
                       (150, 150, 150, 150), (0.97, 0.95, 0.85, 0.97, 0.87, 0.88), 6.0),
    "artificial": Spectrum((1040, 1300, 1388, 2932), (760, 862, 980, 1122), (383, 487, 560, 637),
                           (265, 269, 280, 302), (0.98, 0.95, 0.37, 0.97, 0.49, 0.38), 2.0),
    "cultivated": Spectrum((600, 916, 941, 3501), (339, 390, 582, 1037), (77, 93, 155, 298),
                           (69, 74, 93, 129), (0.97, 0.90, -0.21, 0.88, -0.08, -0.44), 6.0),
    "broadleaf": Spectrum((162, 341, 162, 3611), (106, 141, 160, 583), (23, 28, 27, 253),
                          (26, 37, 31, 190), (0.92, 0.94, -0.10, 0.90, 0.02, -0.21), 2.0),
    "coniferous": Spectrum((178, 329, 190, 2729), (99, 135, 158, 540), (21, 28, 29, 135),
                           (27, 37, 32, 182), (0.92, 0.92, 0.08, 0.90, 0.25, 0.00), 2.0),
    "herbaceous": Spectrum((389, 687, 552, 3564), (213, 243, 352, 674), (52, 55, 94, 161),
                           (52, 60, 75, 166), (0.95, 0.94, -0.21, 0.90, -0.05, -0.33), 3.0),
    "natural": Spectrum((800, 1100, 1300, 2200), (300, 330, 380, 450), (150, 160, 180, 220),
                        (80, 85, 95, 110), (0.97, 0.94, 0.80, 0.97, 0.82, 0.85), 3.0),
    "snow": Spectrum((7500, 7300, 7000, 5500), (1500, 1500, 1500, 1300), (900, 900, 900, 800),
                     (150, 150, 150, 150), (0.98, 0.97, 0.85, 0.98, 0.87, 0.88), 6.0),
    "water": Spectrum((517, 758, 481, 797), (449, 533, 446, 947), (292, 379, 243, 298),
                      (79, 88, 81, 253), (0.96, 0.92, 0.19, 0.91, 0.22, 0.34), 2.0),
}
# A smooth "relief" field pulls mountain classes together (snow sits on a few high tiles) and
# keeps fields and towns in the lowlands, so classes co-occur as they do on real maps.
RELIEF = {"snow": 2.0, "natural": 1.5, "coniferous": 1.0, "cultivated": -1.0, "artificial": -0.5}
MIN_SHARE = 0.01  # every scored class gets at least this share of the scene
CLOUD_SHARE = 0.003  # clouds: rare, as in the real data
EDGE_BLUR = 0.7  # px; mixes spectra across class borders like the sensor's point spread
MAX_VALUE = 24000  # real pixels span 1..~24,000
# fmt: on
DATASET_ENTRIES = {
    "dataset",
    "README.txt",
    "grid.json",
    "train_images.csv",
    "train_labels.csv",
    "test_images.csv",
}


def target_shares() -> np.ndarray:
    """Class shares of the scene: the official prior, rare scored classes lifted, few clouds."""
    share = np.array(OFFICIAL_PIXEL_COUNTS, dtype=np.float64)
    share /= share.sum()
    scored = [CLASSES.index(name) for name in SCORED_CLASSES]
    share[scored] = np.maximum(share[scored], MIN_SHARE)
    share[:2] = 0.0
    share *= (1 - CLOUD_SHARE) / share.sum()
    share[CLASSES.index("clouds")] = CLOUD_SHARE
    return share


def _log_params() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Log-normal parameters matching each class's mean and sd: mu (K, 4), sds (K, 3, 4)
    for the between/texture/fine parts, Cholesky factors (K, 4, 4), texture scales (K,)."""
    mu = np.zeros((N_CLASSES, 4))
    sds = np.zeros((N_CLASSES, 3, 4))
    chol = np.tile(np.eye(4), (N_CLASSES, 1, 1))
    scale = np.full(N_CLASSES, 2.0)
    for name, sp in SPECTRA.items():
        k = CLASSES.index(name)
        mean, sd = np.array(sp.mean), np.array(sp.sd)
        var = np.log1p((sd / mean) ** 2)
        mu[k] = np.log(mean) - var / 2
        between, fine = (np.array(sp.between) / sd) ** 2, (np.array(sp.fine) / sd) ** 2
        texture = np.maximum(1 - between - fine, 0.05)  # the spatially correlated rest
        sds[k] = np.sqrt(np.stack([between, texture, fine]) * var)
        corr = np.eye(4)
        corr[np.triu_indices(4, 1)] = sp.corr
        chol[k] = np.linalg.cholesky(np.maximum(corr, corr.T))
        scale[k] = sp.scale
    return mu, sds, chol, scale


def _field(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    """A unit-variance Gaussian random field with correlation length ``sigma`` px."""
    step = max(1, int(sigma // 4))  # large scales are drawn on a coarse grid (fast), then zoomed
    pad = math.ceil(3 * sigma / step)  # margin dropped afterwards: borders would be too extreme
    coarse = tuple(-(-n // step) + 1 + 2 * pad for n in shape)
    z = ndimage.gaussian_filter(rng.standard_normal(coarse), sigma / step)
    z = z[pad:-pad, pad:-pad] * (2 * math.sqrt(math.pi) * sigma / step)  # var 1/(4 pi s^2) -> 1
    if step > 1:
        z = ndimage.zoom(z, step, order=1)
    return z[: shape[0], : shape[1]].astype(np.float32)


def _class_map(
    rng: np.random.Generator, shape: tuple[int, int], size: int, used: np.ndarray, train: np.ndarray
) -> np.ndarray:
    relief = _field(rng, shape, size)
    logits = np.empty((N_CLASSES - 1, *shape), dtype=np.float32)  # no_data never drawn
    for k, name in enumerate(CLASSES[1:]):
        logits[k] = 0.8 * _field(rng, shape, size / 10) + 0.5 * _field(rng, shape, size / 2)
        logits[k] += RELIEF.get(name, 0.0) * relief
    # One bias per class so that the scene gets the target shares, then lifted where needed so
    # that every class also occurs in the train tiles (tiny scenes, a rare class drawn in test).
    target = target_shares()[1:]
    scene, train_px = (logits[:, ::2, ::2][:, a[::2, ::2]] for a in (used, train))
    bias = np.log(target)
    for _ in range(60):
        got = np.bincount(np.argmax(scene + bias[:, None], axis=0), minlength=len(target))
        bias += 0.5 * np.log(target / np.maximum(got / scene.shape[1], 1e-4))
    for _ in range(40):
        got = np.bincount(np.argmax(train_px + bias[:, None], axis=0), minlength=len(target))
        low = got / train_px.shape[1] < target / 4
        if not low.any():
            break
        bias[low] += 0.25
    logits += bias[:, None, None].astype(np.float32)
    return (np.argmax(logits, axis=0) + 1).astype(np.uint8)


def _scene(
    rng: np.random.Generator, rows: int, cols: int, size: int, n_train: int, n_tiles: int
) -> tuple[np.ndarray, np.ndarray]:
    """The scene's (H, W) class mask and (4, H, W) uint16 image."""
    shape = (rows * size, cols * size)
    tile = np.arange(rows * cols).reshape(rows, cols).repeat(size, 0).repeat(size, 1)
    mask = _class_map(rng, shape, size, tile < n_tiles, tile < n_train)
    mu, sds, chol, scale = _log_params()
    log_img = ndimage.gaussian_filter(np.moveaxis(mu[mask], -1, 0), (0, EDGE_BLUR, EDGE_BLUR))
    # Noise fields shared by all classes, mixed per class: scene-wide drift (illumination,
    # season), within-patch texture at each class's scale, pixel noise.
    drift = np.stack([_field(rng, shape, size) for _ in range(4)])
    texture = {s: np.stack([_field(rng, shape, s) for _ in range(4)]) for s in sorted(set(scale))}
    fine = rng.standard_normal((4, *shape), dtype=np.float32)
    for k in np.unique(mask):
        sel = mask == k
        parts = (drift[:, sel], texture[scale[k]][:, sel], fine[:, sel])
        for sd, z in zip(sds[k], parts, strict=True):
            log_img[:, sel] += sd[:, None] * (chol[k] @ z)
    image = np.clip(np.rint(np.exp(log_img)), 1, MAX_VALUE).astype(np.uint16)
    return mask, image


def _check_args(n_train: int, n_test: int, size: int, seed: int) -> None:
    def is_int(x: object) -> bool:
        return isinstance(x, (int, np.integer)) and not isinstance(x, bool)

    for name, value in (("n_train", n_train), ("n_test", n_test)):
        if not is_int(value) or value < 1:
            raise LandcoverError(f"{name} must be a positive integer, got {value!r}")
    if not is_int(size) or size < 32 or size % 32:
        raise LandcoverError(f"size must be a multiple of 32 and >= 32, got {size!r}")
    if not is_int(seed) or seed < 0:
        raise LandcoverError(f"seed must be a non-negative integer, got {seed!r}")
    if (n_train + n_test) * size * size > MAX_PIXELS:
        raise LandcoverError(
            f"(n_train + n_test) * size^2 must be at most {MAX_PIXELS:,} pixels, got "
            f"{(n_train + n_test) * size * size:,}: use fewer or smaller patches"
        )


def _check_target(out_dir: Path) -> None:
    """Only replace a directory that is empty or holds nothing but a dataset."""
    if out_dir.exists() and not out_dir.is_dir():
        raise LandcoverError(f"{out_dir}: exists and is not a directory")
    if out_dir.is_dir():
        other = sorted(p.name for p in out_dir.iterdir() if p.name not in DATASET_ENTRIES)
        if other:
            raise LandcoverError(
                f"{out_dir}: refusing to replace a directory that holds more than a dataset "
                f"({', '.join(other[:3])}); choose a new or empty directory"
            )


def make_demo_dataset(
    out_dir: str | os.PathLike[str],
    n_train: int = DEFAULT_N_TRAIN,
    n_test: int = DEFAULT_N_TEST,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
) -> Path:
    """Write a synthetic dataset in the official layout under ``out_dir`` and return it.

    Train ids are 1..n_train, test ids n_train+1..n_train+n_test, all neighbouring tiles of one
    scene in row-major order. The same arguments always give identical files; an existing
    dataset in ``out_dir`` is replaced atomically.
    """
    _check_args(n_train, n_test, size, seed)
    out_dir = Path(out_dir)
    _check_target(out_dir)
    n = n_train + n_test
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    mask, image = _scene(np.random.default_rng(seed), rows, cols, size, n_train, n)
    ids = np.arange(1, n + 1, dtype=np.int64)
    labels = np.empty((n_train, N_CLASSES))
    with atomic_dir(out_dir) as tmp:
        for t, sample_id in enumerate(ids):
            r, c = divmod(t, cols)
            win = (slice(r * size, (r + 1) * size), slice(c * size, (c + 1) * size))
            part = "train" if t < n_train else "test"
            write_image(
                tmp / f"dataset/{part}/images/{sample_id}.tif",
                np.ascontiguousarray(image[(slice(None), *win)]),
            )
            if t < n_train:
                tile_mask = np.ascontiguousarray(mask[win])
                write_mask(tmp / f"dataset/train/masks/{sample_id}.tif", tile_mask)
                labels[t] = np.bincount(tile_mask.ravel(), minlength=N_CLASSES) / tile_mask.size
        for name, part_ids in (("train", ids[:n_train]), ("test", ids[n_train:])):
            text = "\n".join([ID_COLUMN, *map(str, part_ids)]) + "\n"
            (tmp / f"{name}_images.csv").write_text(text)
        write_proportions(tmp / "train_labels.csv", ids[:n_train], labels)
        # the scene's raster width, so fold plans cut bands of whole rows as on the real data
        (tmp / "grid.json").write_text(json.dumps({"row_width": cols}) + "\n")
        (tmp / "README.txt").write_text(
            "Synthetic demo data (landcover.demo.make_demo_dataset), NOT real imagery: "
            f"n_train={n_train} n_test={n_test} size={size} seed={seed}\n"
        )
    return out_dir
