"""Apply a trained model to a scene of any size: overlapping windows, blended smoothly, read
and written one strip of windows at a time, so memory does not grow with the scene.

Windows of ``size`` pixels start every ``size - overlap`` pixels (the last one flush with the
edge). Each window's per-pixel values (its members' probabilities blended as its proportions
are: ``map_blend.py``) are weighted by a separable taper that falls linearly to ~0 over
``overlap`` pixels at its borders, divided by the sum of the tapers of every window covering
the pixel, so weights sum to 1 everywhere and a pixel's values change smoothly from one
window to the next: no seams. Because the normalised weights are known before anything is
predicted, each window adds its share straight into the map strip and into the region sums
(of the raw probabilities: a region's proportions are blended from its own means), and no
per-member image is ever held.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import rasterio

from .constants import CLASSES, N_CLASSES
from .errors import DataError
from .map_blend import window_values
from .map_outputs import describe_class_band, write_qml
from .members import member_for
from .predictor import Predictor
from .progress import bar
from .sites import Regions
from .tiff import PALETTE_NODATA, Scene, class_map_profile, finish_cog


def window_starts(length: int, size: int, step: int) -> list[int]:
    """Window origins along one axis: every ``step``, the last one flush with the end."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size, step))
    return [*starts, length - size]


def taper(size: int, overlap: int) -> np.ndarray:
    """Weights along one axis of a window: 1 inside, a linear ramp over ``overlap`` pixels."""
    if overlap <= 0:
        return np.ones(size)
    i = np.arange(size)
    return np.clip(np.minimum(i + 0.5, size - i - 0.5) / overlap, 0.0, 1.0)


def coverage(length: int, starts: list[int], weights: np.ndarray) -> np.ndarray:
    """The sum of the tapers of every window over each position of an axis."""
    total = np.zeros(max(length, len(weights)))
    for s in starts:
        total[s : s + len(weights)] += weights
    return total


@dataclass
class SceneResult:
    region_sums: np.ndarray  # (members, folds, regions, 10): weighted probability sums
    valid_pixels: np.ndarray  # (regions,) pixels counted (not nodata)
    scene_pixels: np.ndarray  # (regions,) pixels of the region inside the scene, nodata too
    windows: int
    seconds: float = 0.0
    outputs: list[Path] = field(default_factory=list)


DEFAULT_OVERLAP = 64  # px: a quarter of the challenge's 256 px patches


def window_settings(
    patch_size: int, window: int | None, overlap: int | None
) -> tuple[int, int, str]:
    """(window, overlap, a line saying where they come from): the window defaults to the
    patches the members trained on, the overlap to ``DEFAULT_OVERLAP`` clipped to a quarter
    of the window; an overlap given beyond half the window is an error."""
    size = window or patch_size
    said = f"windows of {size} px" + ("" if window else " (the members' training patches)")
    if overlap is None:
        overlap = min(DEFAULT_OVERLAP, size // 4)
        clipped = " clipped to a quarter of the window" if overlap < DEFAULT_OVERLAP else ""
        return size, overlap, f"{said}, overlap {overlap} px (default {DEFAULT_OVERLAP}{clipped})"
    check_overlap(size, overlap)
    return size, overlap, f"{said}, overlap {overlap} px"


def check_overlap(size: int, overlap: int) -> None:
    if not 0 <= overlap <= size // 2:
        raise DataError(f"--overlap {overlap}: windows of {size} px allow 0 to {size // 2} px")


def predict_scene(
    predictor: Predictor,
    scene: Scene,
    regions: Regions,
    *,
    size: int,
    overlap: int,
    map_path: Path | None,
    probabilities_path: Path | None = None,
    batch: int = 8,
) -> SceneResult:
    """Predict every window of ``scene``; write the class map (and the map's per-class values,
    uint8, value / 255: ``map_blend.py``) as Cloud-Optimized GeoTIFFs, the map's QGIS style
    beside it; return the region sums."""
    check_overlap(size, overlap)
    height, width = scene.shape
    step = size - overlap
    rows_at, cols_at = window_starts(height, size, step), window_starts(width, size, step)
    edge = taper(size, overlap)
    cover_y, cover_x = coverage(height, rows_at, edge), coverage(width, cols_at, edge)
    canvas = (max(height, size), max(width, size))
    inside = np.zeros(canvas, dtype=bool)
    inside[:height, :width] = True

    members = predictor.members
    sums = np.zeros((len(members), predictor.n_folds, len(regions), N_CLASSES))
    valid_pixels, scene_pixels = np.zeros(len(regions)), np.zeros(len(regions))
    work = [p.with_name(f".{p.name}.work.tif") for p in (map_path, probabilities_path) if p]
    sinks = []
    if map_path:
        sinks.append(rasterio.open(work[0], "w", **class_map_profile(scene)))
        describe_class_band(sinks[0])
    if probabilities_path:
        probs_sink = rasterio.open(work[-1], "w", **class_map_profile(scene, N_CLASSES))
        for i, name in enumerate(CLASSES, start=1):
            probs_sink.set_band_description(i, f"map value of {name} x 255 (map_blend.py)")
        sinks.append(probs_sink)

    acc = np.zeros((N_CLASSES, size, canvas[1]), dtype=np.float32)  # the current strip
    done_to = 0  # rows [0, done_to) are written
    n_windows = 0
    try:
        for r, top in enumerate(bar(rows_at, desc=f"{scene.path.name} rows", unit="strip")):
            pixels, valid = _read_strip(scene, top, size, canvas)
            valid &= inside[top : top + size]
            wy = edge / cover_y[top : top + size]
            for start in range(0, len(cols_at), batch):
                lefts = cols_at[start : start + batch]
                weights = [
                    (wy[:, None] * (edge / cover_x[x : x + size])[None, :]).astype(np.float32)
                    for x in lefts
                ]
                masks = [regions.members(top, left, size) for left in lefts]
                for left, w, found in zip(lefts, weights, masks, strict=True):
                    scene_w = w * inside[top : top + size, left : left + size]
                    valid_w = w * valid[:, left : left + size]
                    for i, mask in found:
                        scene_pixels[i] += scene_w[mask].sum()
                        valid_pixels[i] += valid_w[mask].sum()
                keep = [j for j, x in enumerate(lefts) if valid[:, x : x + size].any()]
                if not keep:
                    continue
                n_windows += len(keep)
                images = np.stack([pixels[:, :, lefts[j] : lefts[j] + size] for j in keep])
                grounds = np.stack([valid[:, lefts[j] : lefts[j] + size] for j in keep])
                shares = [weights[j] * valid[:, lefts[j] : lefts[j] + size] for j in keep]
                found = [masks[j] for j in keep]
                count = functools.partial(_region_sums, sums, found, shares)
                values = window_values(predictor, images, grounds, count)
                for j, v, w in zip(keep, values, shares, strict=True):
                    acc[2:, :, lefts[j] : lefts[j] + size] += v * w
            last = r == len(rows_at) - 1
            final = height if last else rows_at[r + 1]
            _write_rows(sinks, acc, valid, done_to, final, top, width)
            done_to = final
            if not last:  # slide the strip down to the next window row
                shift = rows_at[r + 1] - top
                acc[:, : size - shift] = acc[:, shift:]
                acc[:, size - shift :] = 0
    except BaseException:
        for sink in sinks:
            sink.close()
        for tmp in work:
            tmp.unlink(missing_ok=True)
        raise
    for sink in sinks:
        sink.close()
    outputs = []
    for tmp, out in zip(work, [p for p in (map_path, probabilities_path) if p], strict=True):
        finish_cog(tmp, out)
        tmp.unlink()
        outputs.append(out)
    if map_path:
        write_qml(map_path)
    return SceneResult(sums, valid_pixels, scene_pixels, n_windows, outputs=outputs)


def _region_sums(sums, found, shares, m: int, k: int, probs: np.ndarray) -> None:
    """Add fold model ``k`` of member ``m``'s weighted probabilities to the region sums."""
    for regions, p, w in zip(found, probs, shares, strict=True):
        share = (p if p.ndim == 3 else p[:, None, None]) * w
        for i, mask in regions:
            sums[m, k, i] += share[:, mask].sum(axis=1)


def _read_strip(scene: Scene, top: int, size: int, canvas: tuple[int, int]):
    """(4, size, canvas width) pixels and validity from row ``top``, reflect-padded where the
    scene is smaller than a window."""
    height, width = scene.shape
    rows = min(size, height - top)
    pixels, valid = scene.read_rows(top, rows)
    pad = ((0, size - rows), (0, canvas[1] - width))
    if any(p[1] for p in pad):
        pixels = np.pad(pixels, ((0, 0), *pad), mode="reflect")
        valid = np.pad(valid, pad, mode="constant")
    return pixels, valid


def _write_rows(sinks, acc, valid, start, stop, top, width) -> None:
    """Finish rows ``start .. stop`` (scene rows; the strip begins at ``top``) and write them:
    the class is the argmax of the scored classes' values (``map_blend.py``)."""
    if stop <= start or not sinks:
        return
    part = acc[:, start - top : stop - top, :width]
    ok = valid[start - top : stop - top, :width]
    window = rasterio.windows.Window(0, start, width, stop - start)
    classes = np.where(ok, part[2:].argmax(axis=0) + 2, PALETTE_NODATA).astype(np.uint8)
    if sinks and sinks[0].count == 1:
        sinks[0].write(classes[None], window=window)
    if sinks[-1].count == N_CLASSES:
        scaled = np.where(ok[None], np.rint(np.clip(part, 0, 1) * 255), 0).astype(np.uint8)
        sinks[-1].write(scaled, window=window)


def region_proportions(predictor: Predictor, result: SceneResult) -> np.ndarray:
    """(regions, 10) proportions: each fold model's mean over a region's valid pixels, then
    the blend exactly as for a test patch (``Predictor.combine``); NaN where nothing is valid."""
    counts = result.valid_pixels
    seen = counts > 0
    out = np.full((len(counts), N_CLASSES), np.nan)
    if seen.any():
        means = result.region_sums[:, :, seen] / counts[seen][None, None, :, None]
        per_member = [
            [means[m, k] for k in range(len(member.folds))]
            for m, member in enumerate(predictor.members)
        ]
        out[seen] = predictor.combine(per_member)
    return out


def proportions_table(
    predictor: Predictor, regions: Regions, result: SceneResult, pixel_area: float, size: int
):
    """The sites CSV: site, the 10 class columns, pixels and area counted, notes."""
    import pandas as pd

    props = region_proportions(predictor, result)
    frame = pd.DataFrame(props, columns=list(CLASSES))
    frame.insert(0, "site", regions.names)
    frame["valid_pixels"] = np.rint(result.valid_pixels).astype(np.int64)
    frame["covered_m2"] = result.valid_pixels * pixel_area
    nodata = 1 - np.divide(
        result.valid_pixels,
        result.scene_pixels,
        out=np.zeros_like(result.valid_pixels),
        where=result.scene_pixels > 0,
    )
    frame["nodata_share"] = np.where(result.scene_pixels > 0, nodata, np.nan)
    for column, values in regions.table().items():
        frame[column] = values
    notes = []
    for i in range(len(frame)):
        note = []
        if "inside_share" in frame and frame["inside_share"].iloc[i] < 0.999:
            note.append(f"partly outside the raster ({frame['inside_share'].iloc[i]:.0%} inside)")
        if result.valid_pixels[i] == 0:
            note.append("no valid pixel: no proportions")
        elif frame["nodata_share"].iloc[i] > 0:
            note.append(f"{frame['nodata_share'].iloc[i]:.0%} of its pixels are nodata")
        notes.append("; ".join(note))
    frame["note"] = notes
    image_level = [m.name for m in predictor.members if not _has_pixels(m)]
    frame["image_level_members"] = (
        f"{'+'.join(image_level)}: one vector per {size}-px window" if image_level else ""
    )
    return frame


def _has_pixels(member) -> bool:
    return member_for(member.config).predicts_masks
