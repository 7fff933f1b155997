"""Radiometric alignment of a region to the training region (transductive, no labels).

A new region's imagery differs from the training region's mostly by one change its patches
share: one acquisition, one atmosphere, one phase of the season. Per band, such a change is
close to affine in reflectance (a gain, an offset, a haze layer, a seasonal scaling of the
vegetation bands), so the region's per-band quantiles, regressed on the training region's,
estimate it, and its inverse maps the region back before any member sees it
(``predict.align``). What the fit cannot tell from a change of radiometry is a change of land
cover mix (a region with more water is darker): the shift test's clean column measures that
cost on held-out folds. ``predict.align: beyond_spread`` pays less of it: it corrects only
what exceeds the natural spread, how far the training region's own raster rows would be moved
(``training_spread``), and leaves a region that differs no more than they do as it is.

One part of a change is not shared: residual path radiance (an offset) can differ from patch
to patch, and lifts a patch's darkest pixels where nothing else does. ``predict.dark_level``
brings a patch whose dark level (per band, the ``DARK_PERCENTILE`` of its pixels) lies above
those of all but the brightest ``1 - DARK_QUANTILE`` of the fold's training patches down to
that bound (``dark_bound``, ``dark_corrected``: dark-object subtraction, only beyond what the
training patches hold). A gain barely moves a dark level (it scales values near zero); an
offset moves it by all of itself. It comes first: the region's quantiles are then read from
its corrected patches (``RegionSample.quantiles``), so the region's map corrects what its
patches still share, not a mean of offsets that the dark level has already taken out of some.

A region is a run of contiguous raster rows of patches (the official test set is two such
bands; a validation fold is one or more); a run too small to estimate quantiles from joins its
neighbour.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import ClassVar

import numpy as np

QUANTILES = np.linspace(0.02, 0.98, 49)  # the tails (clouds, deep water, glints) left out
STRIDE = 4  # every 4th pixel of every 4th row: 4,096 pixels a 256-px patch and band
MAX_PATCHES = 2_000  # quantiles of a larger set from this many patches, evenly spread
MIN_PATCHES = 16  # a region of fewer patches joins its neighbour
CHUNK = 256  # patches mapped at a time
ANCHORS = [4, 44]  # the QUANTILES of the 10th and 90th percentiles: where a correction is measured
SPREAD_ROWS = 32  # at most this many training raster rows measure the natural spread
SPREAD_QUANTILE = 0.9  # the spread: this quantile of the rows' corrections (robust to odd rows)
DARK_PERCENTILE = 1.0  # a patch's dark level: this percentile of each band's pixel grid
DARK_QUANTILE = 0.99  # the bound: this quantile of the training patches' dark levels


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


def band_quantiles(images: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """(4, len(QUANTILES)) per-band quantiles of ``images[rows]`` ((n, 4, H, W), reflectance
    x 1e4, memory-mapped or not) from a regular grid of pixels of at most ``MAX_PATCHES``."""
    return RegionSample.of_images(images, rows).quantiles()


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


def corrections(gain: np.ndarray, offset: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """(bands, 2): how much the map ``gain * r + offset`` moves the source values that it sends
    to the ``reference`` quantiles' 10th and 90th percentiles (``ANCHORS``)."""
    targets = np.asarray(reference, float)[:, ANCHORS]
    return targets - (targets - offset[:, None]) / gain[:, None]


def training_spread(
    images: np.ndarray, rows: np.ndarray, ids: np.ndarray, row_width: int, reference: np.ndarray
) -> np.ndarray:
    """(bands, 2): the natural spread of a fold's training ground, the ``SPREAD_QUANTILE`` of
    how far aligning each of its raster rows (``rows``, whose sample ids are ``ids``; a row of
    fewer than ``MIN_PATCHES`` patches joined to the next) on its own would move it at the
    anchors. A region moved no further is within what the training ground holds, land cover
    mix as much as radiometry (``beyond_spread``); fewer than two such units: 0, aligned all
    the way."""
    rows, raster_rows = np.asarray(rows), (np.asarray(ids, dtype=np.int64) - 1) // row_width
    units, unit = [], np.array([], dtype=rows.dtype)
    for r in np.unique(raster_rows):  # a row of fewer than MIN_PATCHES joins the next
        unit = np.concatenate([unit, rows[raster_rows == r]])
        if len(unit) >= MIN_PATCHES:
            units, unit = [*units, unit], unit[:0]
    if units and len(unit):  # the last rows, too few alone, join the unit before
        units[-1] = np.concatenate([units[-1], unit])
    if len(units) < 2:  # one unit is the reference itself
        return np.zeros((np.shape(reference)[0], len(ANCHORS)))
    units = [
        units[i] for i in np.unique(np.linspace(0, len(units) - 1, SPREAD_ROWS).round().astype(int))
    ]
    moved = [
        corrections(*affine_fit(band_quantiles(images, u), reference), reference) for u in units
    ]
    return np.quantile(np.abs(moved), SPREAD_QUANTILE, axis=0).round(3)


def fold_alignment(
    images: np.ndarray, rows: np.ndarray, ids: np.ndarray, row_width: int, mode: bool | str
) -> tuple[np.ndarray, np.ndarray | None]:
    """A fold's reference quantiles (``training_reference`` of its training ``rows``, sample
    ids ``ids``) and, under ``mode`` ``beyond_spread``, its natural spread (else None)."""
    reference = training_reference(images, rows)
    if mode != "beyond_spread":
        return reference, None
    return reference, training_spread(images, rows, ids, row_width, reference)


def beyond_spread(
    gain: np.ndarray, offset: np.ndarray, reference: np.ndarray, spread: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The map that corrects only what exceeds ``spread`` (``training_spread``): at each anchor
    the correction of ``gain * r + offset`` shrunk toward none by the spread (soft threshold),
    linear between the anchors; a spread of 0 keeps the map as it is."""
    targets = np.asarray(reference, float)[:, ANCHORS]
    sources = (targets - offset[:, None]) / gain[:, None]
    moved = targets - sources
    kept = np.sign(moved) * np.maximum(np.abs(moved) - np.asarray(spread, float), 0)
    width = sources[:, 1] - sources[:, 0]
    slope = np.where(width > 1, (kept[:, 1] - kept[:, 0]) / np.where(width > 1, width, 1), 0)
    return 1 + slope, kept[:, 0] - slope * sources[:, 0]


def region_map(
    quantiles: np.ndarray, reference: np.ndarray, spread: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per band, the gain and offset that align a region of these quantiles to ``reference``:
    all the way, or (``spread``) only beyond the training ground's natural spread."""
    gain, offset = affine_fit(quantiles, reference)
    return (gain, offset) if spread is None else beyond_spread(gain, offset, reference, spread)


def mapped(images: np.ndarray, gain: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """(n, 4, H, W) uint16 images under the per-band map ``gain * r + offset``."""
    out = np.empty(np.shape(images), dtype=np.uint16)
    g = np.asarray(gain, np.float32)[:, None, None]
    b = np.asarray(offset, np.float32)[:, None, None]
    for i in range(0, len(out), CHUNK):
        x = np.asarray(images[i : i + CHUNK], dtype=np.float32) * g + b
        out[i : i + CHUNK] = np.clip(np.rint(x), 1, 65535)
    return out


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


def patch_grids(images: np.ndarray) -> np.ndarray:
    """(n, bands, g): each patch's pixel grid (every ``STRIDE``-th pixel of every
    ``STRIDE``-th row) of (n, bands, H, W) images: what its quantiles and dark level read."""
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


def dark_bound(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(bands,): the ``DARK_QUANTILE`` of the dark levels of a fold's training patches
    ``images[rows]`` (at most ``MAX_PATCHES`` of them), as its ``done.json`` records it
    (``dark_bound``)."""
    levels = row_levels(images, np.sort(sampled(np.asarray(rows))))
    return np.quantile(levels, DARK_QUANTILE, axis=0).round(3)


def row_levels(images: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(len(rows), bands): the dark levels (``dark_levels``) of ``images[rows]``, read
    ``CHUNK`` patches at a time (a memory-mapped set is never read whole)."""
    rows = np.asarray(rows)
    return np.concatenate(
        [dark_levels(images[rows[i : i + CHUNK]]) for i in range(0, len(rows), CHUNK)]
    )


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


@dataclass
class RegionSample:
    """What a region's quantiles are read from: the pixel grids of (at most ``MAX_PATCHES``
    of) its patches, one array (bands, g) a patch, or a scene's pixels cut into windows. Its
    quantiles are those of its patches as they are, or with each one's dark level first
    brought within a fold's ``dark_bound`` (``quantiles(bound)``), equal to
    ``band_quantiles(dark_corrected(patches, bound))``."""

    grids: list[np.ndarray]  # per patch (or window), (bands, pixels) uint16
    _quantiles: dict = field(default_factory=dict, repr=False)  # per bound, read once

    def __post_init__(self) -> None:
        self.grids = [g for g in self.grids if np.shape(g)[-1] > 0]
        if not self.grids:
            raise ValueError("quantiles need at least one patch with pixels")

    @cached_property
    def levels(self) -> np.ndarray:
        """(patches, bands): each one's dark level (``dark_levels``)."""
        return np.stack([grid_levels(g) for g in self.grids])

    @classmethod
    def of(cls, chunks: Iterable[np.ndarray]) -> RegionSample:
        """From image chunks, each (n, bands, H, W): every patch's pixel grid."""
        return cls([g for x in chunks for g in patch_grids(x)])

    @classmethod
    def of_images(cls, images: np.ndarray, rows: np.ndarray | None = None) -> RegionSample:
        """From ``images[rows]`` (all of them by default), as ``band_quantiles`` samples them."""
        rows = sampled(np.arange(len(images)) if rows is None else np.asarray(rows))
        return cls.of(images[np.sort(rows[i : i + CHUNK])] for i in range(0, len(rows), CHUNK))

    @classmethod
    def of_scene(cls, pixels: np.ndarray, valid: np.ndarray, cell: int) -> RegionSample:
        """From a scene's decimated (bands, h, w) ``pixels`` and its (h, w) ``valid`` mask, cut
        into cells of ``cell`` x ``cell`` decimated pixels, a window's worth each: the valid
        pixels of each cell stand for one window's grid."""
        h, w = np.shape(valid)
        cell = max(int(cell), 1)
        return cls(
            [
                pixels[:, y : y + cell, x : x + cell][:, valid[y : y + cell, x : x + cell]]
                for y in range(0, h, cell)
                for x in range(0, w, cell)
            ]
        )

    def quantiles(self, bound: np.ndarray | None = None) -> np.ndarray:
        """(bands, len(QUANTILES)) quantiles of the region's pixels, each patch's dark level
        first brought within ``bound`` (``dark_corrected``), if given."""
        key = None if bound is None else np.asarray(bound, np.float64).tobytes()
        if key not in self._quantiles:
            grids = self.grids
            if bound is not None:
                excess = dark_excess(self.levels, bound)
                grids = [
                    np.stack([lowered(b, e) if e > 0 else b for b, e in zip(g, ex, strict=True)])
                    for g, ex in zip(grids, excess, strict=True)
                ]
            self._quantiles[key] = pixel_quantiles(np.concatenate(grids, axis=1))
        return self._quantiles[key]


@dataclass(eq=False)
class FoldRadiometry:
    """How one fold model's inputs are prepared, in one place for the fold loop, ``predict.py``
    (patches and scene windows) and the shift test: each patch's dark level first brought
    within ``bound`` (``predict.dark_level``), then the patches of a region mapped onto
    ``reference`` (``predict.align``; only beyond ``spread`` under ``beyond_spread``) by the
    map its quantiles give once read after that correction. Nothing set: inputs as they are.
    The fields are what the fold's ``done.json`` records (``RECORDED``)."""

    bound: np.ndarray | None = None  # (bands,) the training patches' dark level
    reference: np.ndarray | None = None  # (bands, len(QUANTILES)) the training quantiles
    spread: np.ndarray | None = None  # (bands, len(ANCHORS)) the training rows' natural spread

    RECORDED: ClassVar[dict[str, str]] = {  # field: its key in done.json
        "bound": "dark_bound",
        "reference": "align_reference",
        "spread": "align_spread",
    }

    @classmethod
    def of_fold(
        cls,
        images: np.ndarray,
        rows: np.ndarray,
        ids: np.ndarray,
        row_width: int | None,
        align: bool | str,
        dark_level: bool,
    ) -> FoldRadiometry:
        """A fold's, from its training patches ``images[rows]`` (sample ids ``ids``), as the
        ``predict`` settings ``align`` and ``dark_level`` ask."""
        bound = dark_bound(images, rows) if dark_level else None
        reference, spread = (
            fold_alignment(images, rows, ids, row_width, align) if align else (None, None)
        )
        return cls(bound, reference, spread)

    @staticmethod
    def recorded_keys(align: bool | str, dark_level: bool) -> dict[str, str]:
        """The ``done.json`` keys a fold records under these ``predict`` settings (what
        ``of_fold`` sets), each with the setting that asks for it."""
        keys = {"dark_bound": "predict.dark_level"} if dark_level else {}
        if align:
            keys["align_reference"] = "predict.align"
        if align == "beyond_spread":
            keys["align_spread"] = "predict.align"
        return keys

    @classmethod
    def recorded(cls, record: dict, keys: Iterable[str]) -> FoldRadiometry:
        """From a fold's ``done.json`` ``record``: the fields named (``RECORDED`` values)."""
        keys = set(keys)
        return cls(
            **{f: np.asarray(record[k], np.float64) for f, k in cls.RECORDED.items() if k in keys}
        )

    def record(self) -> dict:
        """What the fold's ``done.json`` records: every field set, by its ``RECORDED`` key."""
        return {
            k: getattr(self, f).tolist()
            for f, k in self.RECORDED.items()
            if getattr(self, f) is not None
        }

    @property
    def aligns(self) -> bool:
        return self.reference is not None

    @property
    def changes(self) -> bool:
        return self.aligns or self.bound is not None

    def prepared(
        self,
        images: np.ndarray,
        rows: np.ndarray | None = None,
        region: RegionSample | None = None,
        valid: np.ndarray | None = None,
    ) -> np.ndarray:
        """(n, bands, H, W) uint16 ``images[rows]`` (all by default) of one region as the fold
        model takes them, in chunks; ``region``: the region's sample if already read (a scene's,
        a chunked read's), else read from them; ``valid`` (n, H, W): the pixels each patch's
        dark level is read from (a scene window's; ``dark_levels``)."""
        rows = np.arange(len(images)) if rows is None else np.asarray(rows)
        if self.aligns:
            region = RegionSample.of_images(images, rows) if region is None else region
            gain, offset = region_map(region.quantiles(self.bound), self.reference, self.spread)
        out = np.empty((len(rows), *np.shape(images)[1:]), dtype=np.uint16)
        for i in range(0, len(rows), CHUNK):
            x = np.asarray(images[rows[i : i + CHUNK]])
            if self.bound is not None:
                mask = None if valid is None else valid[i : i + CHUNK]
                x = dark_corrected(x, self.bound, mask)
            out[i : i + CHUNK] = mapped(x, gain, offset) if self.aligns else x
        return out

    def regions_prepared(
        self, images: np.ndarray, ids: np.ndarray, row_width: int, rows: np.ndarray | None = None
    ) -> np.ndarray:
        """``images[rows]`` (all by default; sample ids ``ids``) prepared, each region of their
        ids (``regions``) on its own: a validation fold's, a test set's."""
        rows = np.arange(len(images)) if rows is None else np.asarray(rows)
        if not self.aligns:  # nothing read per region
            return self.prepared(images, rows)
        out = np.empty((len(rows), *np.shape(images)[1:]), dtype=np.uint16)
        for where in regions(ids, row_width):
            out[where] = self.prepared(images, rows[where])
        return out
