"""Radiometric alignment of a region to the training region (transductive, no labels).

A new region's imagery differs from the training region's mostly by one change its patches
share: one acquisition, one atmosphere, one phase of the season. Per band, such a change is
close to affine in reflectance (a gain, an offset, a haze layer, a seasonal scaling of the
vegetation bands), so the region's per-band quantiles, regressed on the training region's,
estimate it, and its inverse maps the region back before any member sees it
(``predict.align``). What the fit cannot tell from a change of radiometry is a change of land
cover mix (a region with more water is darker): the shift test's clean column measures that
cost on held-out folds.

A region is a run of contiguous raster rows of patches (the official test set is two such
bands; a validation fold is one or more); a run too small to estimate quantiles from joins its
neighbour.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

QUANTILES = np.linspace(0.02, 0.98, 49)  # the tails (clouds, deep water, glints) left out
STRIDE = 4  # every 4th pixel of every 4th row: 4,096 pixels a 256-px patch and band
MAX_PATCHES = 2_000  # quantiles of a larger set from this many patches, evenly spread
MIN_PATCHES = 16  # a region of fewer patches joins its neighbour
CHUNK = 256  # patches mapped at a time


def pixel_quantiles(pixels: np.ndarray) -> np.ndarray:
    """(bands, len(QUANTILES)) quantiles of (bands, n_pixels) reflectances."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.shape[1] == 0:
        raise ValueError(f"quantiles need (bands, pixels) with pixels, got shape {pixels.shape}")
    return np.quantile(pixels.astype(np.float64), QUANTILES, axis=1).T


def sampled(rows: np.ndarray) -> np.ndarray:
    """At most ``MAX_PATCHES`` of ``rows``, evenly spread: those a region's quantiles read."""
    rows = np.asarray(rows)
    if len(rows) <= MAX_PATCHES:
        return rows
    return rows[np.linspace(0, len(rows) - 1, MAX_PATCHES).round().astype(int)]


def grid_quantiles(chunks: Iterable[np.ndarray]) -> np.ndarray:
    """(4, len(QUANTILES)) per-band quantiles of the pixel grid (every ``STRIDE``-th pixel of
    every ``STRIDE``-th row) of image chunks, each (n, 4, H, W)."""
    grids = [np.asarray(x)[:, :, ::STRIDE, ::STRIDE].copy() for x in chunks]  # chunks freed
    if not grids:
        raise ValueError("quantiles need at least one patch")
    x = np.concatenate(grids)
    return pixel_quantiles(np.moveaxis(x, 1, 0).reshape(x.shape[1], -1))


def band_quantiles(images: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """(4, len(QUANTILES)) per-band quantiles of ``images[rows]`` ((n, 4, H, W), reflectance
    x 1e4, memory-mapped or not) from a regular grid of pixels of at most ``MAX_PATCHES``."""
    rows = sampled(np.arange(len(images)) if rows is None else np.asarray(rows))
    return grid_quantiles(images[np.sort(rows[i : i + CHUNK])] for i in range(0, len(rows), CHUNK))


def training_reference(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """The quantiles of a fold's training patches that its regions are aligned to, as its
    ``done.json`` records them (``align_reference``)."""
    return band_quantiles(images, rows).round(3)


def affine_fit(source: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per band, the gain and offset that best map the ``source`` quantiles onto the
    ``reference`` ones (least squares): ``reference ~ gain * source + offset``."""
    source, reference = np.asarray(source, float), np.asarray(reference, float)
    if source.shape != reference.shape:
        raise ValueError(f"quantiles differ in shape: {source.shape} vs {reference.shape}")
    centred = source - source.mean(axis=1, keepdims=True)
    spread = (centred**2).sum(axis=1)
    covariance = (centred * (reference - reference.mean(axis=1, keepdims=True))).sum(axis=1)
    gain = np.where(spread > 0, covariance / np.maximum(spread, 1e-12), 1.0)
    offset = reference.mean(axis=1) - gain * source.mean(axis=1)
    return gain, offset


def mapped(images: np.ndarray, gain: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """(n, 4, H, W) uint16 images under the per-band map ``gain * r + offset``."""
    out = np.empty(np.shape(images), dtype=np.uint16)
    g = np.asarray(gain, np.float32)[:, None, None]
    b = np.asarray(offset, np.float32)[:, None, None]
    for i in range(0, len(out), CHUNK):
        x = np.asarray(images[i : i + CHUNK], dtype=np.float32) * g + b
        out[i : i + CHUNK] = np.clip(np.rint(x), 1, 65535)
    return out


def aligned(images: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``images`` (n, 4, H, W) uint16 of one region mapped, per band, onto the radiometry whose
    quantiles are ``reference`` (``band_quantiles`` of the training images)."""
    return mapped(images, *affine_fit(band_quantiles(images), reference))


def regions(ids: np.ndarray, row_width: int) -> list[np.ndarray]:
    """Positions in ``ids`` grouped into regions: runs of contiguous raster rows (id i + width
    is the tile below id i), a run of fewer than ``MIN_PATCHES`` patches joined to the run
    before it (the first to the one after)."""
    ids = np.asarray(ids, dtype=np.int64)
    if len(ids) == 0:
        return []
    order = np.argsort(ids, kind="stable")
    rows = (ids[order] - 1) // row_width
    runs = np.split(order, np.flatnonzero(np.diff(rows) > 1) + 1)
    merged: list[np.ndarray] = []
    for run in runs:
        if merged and (len(run) < MIN_PATCHES or len(merged[-1]) < MIN_PATCHES):
            merged[-1] = np.concatenate([merged[-1], run])
        else:
            merged.append(run)
    return [np.sort(r) for r in merged]


def region_aligned(
    images: np.ndarray, rows: np.ndarray, ids: np.ndarray, row_width: int, reference: np.ndarray
) -> np.ndarray:
    """``images[rows]`` (uint16, in memory) with each region of their ``ids`` (``regions``)
    aligned on its own to ``reference``."""
    rows = np.asarray(rows)
    out = np.empty((len(rows), *np.shape(images)[1:]), dtype=np.uint16)
    for where in regions(ids, row_width):
        gain, offset = affine_fit(band_quantiles(images, rows[where]), reference)
        out[where] = mapped(images[rows[where]], gain, offset)
    return out
