"""A patch's dark level, and how a fold model's inputs are prepared with it (per patch,
transductive, no labels).

Residual path radiance after atmospheric correction (an offset) differs from patch to patch
and lifts a patch's darkest pixels where nothing else does; a gain barely moves them (it scales
values near zero). ``predict.dark_level`` brings a patch whose dark level (per band, the
``DARK_PERCENTILE`` of its pixel grid) lies above those of all but the brightest
``1 - DARK_QUANTILE`` of the fold's training patches down to that bound (``dark_bound``,
``dark_corrected``): dark-object subtraction, only beyond what the training patches hold.
``train.dark_corrected`` trains on inputs corrected the same way, after their augmentation
(``dark_corrected_torch``, the training device's twin).

What this module no longer does: map a whole region's band quantiles onto the training
region's (region alignment). A region with another class mix (more forest, less bare field) is
darker or brighter for reasons of land cover, and aligning it "corrects" land cover into a
radiometric error: on a real unseen region it cost 45% (docs/new-ground.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

STRIDE = 4  # every 4th pixel of every 4th row: 4,096 pixels a 256-px patch and band
MAX_PATCHES = 2_000  # a training bound from at most this many patches, evenly spread
CHUNK = 256  # patches read at a time
DARK_PERCENTILE = 1.0  # a patch's dark level: this percentile of each band's pixel grid
DARK_QUANTILE = 0.99  # the bound: this quantile of the training patches' dark levels


def sampled(rows: np.ndarray) -> np.ndarray:
    """At most ``MAX_PATCHES`` of ``rows``, evenly spread."""
    rows = np.asarray(rows)
    if len(rows) <= MAX_PATCHES:
        return rows
    return rows[np.linspace(0, len(rows) - 1, MAX_PATCHES).round().astype(int)]


def patch_grids(images: np.ndarray) -> np.ndarray:
    """(n, bands, g): each patch's pixel grid (every ``STRIDE``-th pixel of every
    ``STRIDE``-th row) of (n, bands, H, W) images: what its dark level reads."""
    x = np.asarray(images)[:, :, ::STRIDE, ::STRIDE]
    return x.reshape(*x.shape[:2], -1)


def grid_levels(pixels: np.ndarray) -> np.ndarray:
    """(..., bands): the ``DARK_PERCENTILE`` of each band of (..., bands, g) pixels."""
    return np.percentile(np.asarray(pixels, dtype=np.float64), DARK_PERCENTILE, axis=-1)


def dark_levels(images: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """(n, bands): each patch's dark level, the ``DARK_PERCENTILE`` of each band over its pixel
    grid (``patch_grids``) of (n, bands, H, W) images; ``valid`` (n, H, W): only the grid's
    valid pixels count (a scene window's nodata is not ground), all of them where none is."""
    out = np.empty(np.shape(images)[:2])
    for i in range(0, len(out), CHUNK):
        grids = patch_grids(images[i : i + CHUNK])
        if valid is None:
            out[i : i + CHUNK] = grid_levels(grids)
            continue
        masks = np.asarray(valid[i : i + CHUNK], bool)[:, ::STRIDE, ::STRIDE]
        masks = masks.reshape(len(grids), -1)
        out[i : i + CHUNK] = [
            grid_levels(g[:, m] if m.any() else g) for g, m in zip(grids, masks, strict=True)
        ]
    return out


def row_levels(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(len(rows), bands): the dark levels of ``images[rows]``, read ``CHUNK`` patches at a
    time (a memory-mapped set is never read whole)."""
    rows = np.asarray(rows)
    return np.concatenate(
        [dark_levels(images[rows[i : i + CHUNK]]) for i in range(0, len(rows), CHUNK)]
    )


def dark_bound(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(bands,): the ``DARK_QUANTILE`` of the dark levels of a fold's training patches
    ``images[rows]`` (at most ``MAX_PATCHES`` of them), as its ``done.json`` records it."""
    levels = row_levels(images, np.sort(sampled(np.asarray(rows))))
    return np.quantile(levels, DARK_QUANTILE, axis=0).round(3)


def dark_excess(levels: np.ndarray, bound: np.ndarray) -> np.ndarray:
    """(n, bands): how far each patch's dark level (``levels``) lies above ``bound``, else 0."""
    return np.maximum(np.asarray(levels, np.float64) - np.asarray(bound, np.float64), 0)


def lowered(pixels: np.ndarray, excess: float) -> np.ndarray:
    """uint16 ``pixels`` of one patch and band lowered by ``excess`` (rounded, at least 1)."""
    out = np.asarray(pixels).astype(np.float32) - np.float32(excess)
    return np.clip(np.rint(out), 1, 65535).astype(np.uint16)


def dark_corrected(
    images: np.ndarray, bound: np.ndarray, valid: np.ndarray | None = None
) -> np.ndarray:
    """(n, bands, H, W) uint16 ``images``, each patch whose dark level (``dark_levels``, of its
    ``valid`` pixels if given) lies above ``bound`` in a band lowered there by the excess, so
    that it sits on the bound; the other patches and bands as they are."""
    excess = dark_excess(dark_levels(images, valid), bound)
    out = np.array(images, dtype=np.uint16)  # a copy, in memory
    for i, j in zip(*np.nonzero(excess), strict=True):
        out[i, j] = lowered(out[i, j], excess[i, j])
    return out


def dark_corrected_torch(
    reflectance: Callable | None, levels: torch.Tensor, bound: torch.Tensor
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The training device's twin of ``dark_corrected``, after the physical augmentations
    ``reflectance`` (``augment.reflectance_augment``, or None): each sample lowered, per band,
    by how far its patch's dark level, changed as its pixels are, lies above ``bound``.
    ``levels`` (B, C): the dark levels of the samples' whole patches, as prediction reads them;
    ``bound`` (C,). Every physical change is a rising map of each band's values, so it moves a
    percentile as it moves the pixels: the changed level is the change of the level."""
    levels = levels[:, :, None, None]
    if reflectance is not None:
        levels = reflectance(levels)
    excess = (levels - bound.view(1, -1, 1, 1)).clamp_min(0)

    def apply(x: torch.Tensor) -> torch.Tensor:
        if reflectance is not None:
            x = reflectance(x)
        return (x - excess).clamp_min(1)

    return apply


@dataclass(eq=False)
class FoldRadiometry:
    """How one fold model's inputs are prepared, in one place for the fold loop, ``predict.py``
    (patches and scene windows) and the shift tests: each patch's dark level brought within
    ``bound`` (``predict.dark_level``); no bound, inputs as they are. ``bound`` is what the
    fold's ``done.json`` records (``RECORDED``)."""

    bound: np.ndarray | None = None  # (bands,) the training patches' dark level

    RECORDED: ClassVar[str] = "dark_bound"  # its key in done.json

    @classmethod
    def of_fold(cls, images: np.ndarray, rows: np.ndarray, dark_level: bool) -> FoldRadiometry:
        """A fold's, from its training patches ``images[rows]``, as ``predict.dark_level``
        asks."""
        return cls(dark_bound(images, rows) if dark_level else None)

    @classmethod
    def recorded(cls, record: dict) -> FoldRadiometry:
        """From a fold's ``done.json`` ``record`` (None where it records no bound)."""
        bound = record.get(cls.RECORDED)
        return cls(None if bound is None else np.asarray(bound, np.float64))

    def record(self) -> dict:
        """What the fold's ``done.json`` records."""
        return {} if self.bound is None else {self.RECORDED: self.bound.tolist()}

    @property
    def changes(self) -> bool:
        return self.bound is not None

    def prepared(
        self, images: np.ndarray, rows: np.ndarray | None = None, valid: np.ndarray | None = None
    ) -> np.ndarray:
        """(n, bands, H, W) uint16 ``images[rows]`` (all by default) as the fold model takes
        them, in chunks; ``valid`` (n, H, W): the pixels each patch's dark level is read from
        (a scene window's; ``dark_levels``)."""
        rows = np.arange(len(images)) if rows is None else np.asarray(rows)
        out = np.empty((len(rows), *np.shape(images)[1:]), dtype=np.uint16)
        for i in range(0, len(rows), CHUNK):
            x = np.asarray(images[rows[i : i + CHUNK]])
            if self.bound is not None:
                mask = None if valid is None else valid[i : i + CHUNK]
                x = dark_corrected(x, self.bound, mask)
            out[i : i + CHUNK] = x
        return out
