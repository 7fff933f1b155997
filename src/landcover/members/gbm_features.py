"""Per-pixel features for the LightGBM member, computed once per dataset on every core.

Each pixel is described by its four log reflectances, three spectral indices and the local mean
of the log bands at two scales (context a pixel alone lacks); ``gbm.per_image``,
``gbm.texture``, ``gbm.patch_relative``, ``gbm.patch_relative_context`` and
``gbm.above_dark_level`` change
the set
(``FeatureSpec``). Two stores are kept beside a
prepared cache's arrays (``cache/<data>/gbm-*``), built on first use in parallel processes and
then memory-mapped by every fold, experiment and re-run:

- ``gbm-samples-v*-p<P>-s<seed><tag>[-c<N>]``: for every train patch, ``P`` pixels drawn with a
  generator seeded by the patch's row and the seed, their features and classes (then ``P`` more
  from each of ``N`` radiometrically changed copies of the patch: ``gbm.radiometric_copies``). A
  fold trains on the samples of its training rows: a patch's features are computed once, not
  once per fold.
- ``gbm-features-v*-s<stride><tag>``: the features of every ``stride``-th pixel of every patch
  (validation and test proportions), the test set's computed once, not once per fold.

Arrays that are not cache files (patches read by predict.py) get their features computed
directly.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import uniform_filter

from ..radiometry import dark_corrected, dark_levels
from ..shift import TRAINING_KINDS, randomised

VERSION = 1  # bump when the features change: stores of another version are not read
CONTEXT_SIZES = (5, 17)  # local-mean windows in pixels
BANDS = ("b", "g", "r", "nir")
WIDE = 51  # texture: the widest local-mean window (a fifth of a 256-pixel patch)
CHUNK = 32  # patches per parallel job


@dataclass(frozen=True)
class FeatureSpec:
    """Which features describe a pixel.

    ``per_image``: log bands, local means and brightness relative to the image's own mean (a
    region's overall brightness per band taken out; the indices are ratios and stay as they
    are). ``texture``: also the local standard deviation of the log brightness at 5 and 17
    pixels (rough in towns, smooth in fields; a per-band gain does not change it in log
    space), the NDVI's local mean at 17 and 51 pixels and its local deviation at 5, and the
    log bands' local mean at 51 pixels: the context that a pixel alone lacks.
    ``patch_relative``: also each log band less the patch's own mean of it, beside the bands
    as they are (a per-band gain of the whole patch taken out: a new region's calibration, a
    patch's own). ``patch_relative_context``: also each local mean of the log bands (5 and 17
    pixels, and 51 with ``texture``) less the patch's own mean of the band: the
    neighbourhood's brightness against the patch's, which a per-band gain of the whole patch
    leaves where it was. ``above_dark_level``: also each band above the patch's own dark level
    (``radiometry.dark_levels``, its 1st percentile), in log, less the patch's mean of that:
    dark-object subtraction, then the patch's gain taken out. A per-band change ``a x + b`` of
    the whole patch (gain, offset, the affine part of haze, a seasonal gain) leaves it where it
    was, up to rounding and the ``log1p``'s +1.
    """

    per_image: bool = False
    texture: bool = False
    patch_relative: bool = False
    patch_relative_context: bool = False
    above_dark_level: bool = False

    @classmethod
    def from_config(cls, gcfg: dict) -> FeatureSpec:
        """From a ``gbm`` section."""
        return cls(
            per_image=gcfg["per_image"],
            texture=gcfg["texture"],
            patch_relative=gcfg["patch_relative"],
            patch_relative_context=gcfg["patch_relative_context"],
            above_dark_level=gcfg["above_dark_level"],
        )

    @property
    def tag(self) -> str:
        """Suffix of the stores' folder names (empty for the basic set)."""
        return (
            "-relative" * self.per_image
            + "-texture" * self.texture
            + "-rel" * self.patch_relative
            + "-relctx" * self.patch_relative_context
            + "-drel" * self.above_dark_level
        )

    @property
    def context_sizes(self) -> tuple[int, ...]:
        """The local-mean windows of the log bands, in pixels."""
        return (*CONTEXT_SIZES, *(WIDE,) * self.texture)

    @property
    def names(self) -> tuple[str, ...]:
        basic = (
            *(f"log_{b}" for b in BANDS),
            "ndvi",
            "ndwi",
            "brightness",
            *(f"mean{s}_{b}" for s in CONTEXT_SIZES for b in BANDS),
        )
        texture = (
            "std5_brightness",
            "std17_brightness",
            "std5_ndvi",
            "mean17_ndvi",
            f"mean{WIDE}_ndvi",
            *(f"mean{WIDE}_{b}" for b in BANDS),
        )
        relative = tuple(f"rel_{b}" for b in BANDS)
        context = tuple(f"relmean{s}_{b}" for s in self.context_sizes for b in BANDS)
        dark = tuple(f"drel_{b}" for b in BANDS)
        return (
            *basic,
            *texture * self.texture,
            *relative * self.patch_relative,
            *context * self.patch_relative_context,
            *dark * self.above_dark_level,
        )


BASIC = FeatureSpec()


def cores() -> int:
    return len(os.sched_getaffinity(0))


def _local(x: np.ndarray, size: int) -> np.ndarray:
    """Local mean over ``size`` x ``size`` pixels of (..., H, W)."""
    return uniform_filter(x, size=(1,) * (x.ndim - 2) + (size, size), mode="reflect")


def _local_std(x: np.ndarray, size: int) -> np.ndarray:
    mean = _local(x, size)
    return np.sqrt(np.maximum(_local(x * x, size) - mean * mean, 0.0))


def _above_dark(raw: np.ndarray, images: np.ndarray) -> np.ndarray:
    """(n, 4, H, W): log1p of each band above the patch's dark level, less its patch mean."""
    dark = dark_levels(images).astype(np.float32)[:, :, None, None]
    above = np.log1p(np.maximum(raw - dark, np.float32(0.0)))
    return above - above.mean(axis=(2, 3), keepdims=True)


def pixel_features(images: np.ndarray, stride: int = 1, spec: FeatureSpec = BASIC) -> np.ndarray:
    """(n, 4, H, W) uint16 -> (n, H//stride, W//stride, len(spec.names)) float32."""
    x = np.log1p(np.asarray(images, dtype=np.float32))
    raw = np.asarray(images, dtype=np.float32)
    green, red, nir = raw[:, 1], raw[:, 2], raw[:, 3]  # bands behave as B, G, R, NIR
    ndvi = (nir - red) / (nir + red + 1.0)
    ndwi = (green - nir) / (green + nir + 1.0)
    bright = np.log1p(raw.mean(axis=1))
    patch_mean = x.mean(axis=(2, 3), keepdims=True)
    relative = x - patch_mean if spec.patch_relative else None
    if spec.per_image:
        x = x - patch_mean
        bright = bright - bright.mean(axis=(1, 2), keepdims=True)
    parts = [x[:, 0], x[:, 1], x[:, 2], x[:, 3], ndvi, ndwi, bright]
    smooth = {size: _local(x, size) for size in spec.context_sizes}
    for size in CONTEXT_SIZES:
        parts += list(smooth[size].transpose(1, 0, 2, 3))
    if spec.texture:
        parts += [_local_std(bright, 5), _local_std(bright, 17), _local_std(ndvi, 5)]
        parts += [_local(ndvi, 17), _local(ndvi, WIDE)]
        parts += list(smooth[WIDE].transpose(1, 0, 2, 3))
    if spec.patch_relative:
        parts += list(relative.transpose(1, 0, 2, 3))
    if spec.patch_relative_context:
        centre = 0.0 if spec.per_image else patch_mean  # per_image took it out of x already
        for size in spec.context_sizes:
            parts += list((smooth[size] - centre).transpose(1, 0, 2, 3))
    if spec.above_dark_level:
        parts += list(_above_dark(raw, images).transpose(1, 0, 2, 3))
    feats = np.stack(parts, axis=-1)
    offset = stride // 2
    return np.ascontiguousarray(feats[:, offset::stride, offset::stride])


def sample_picks(row: int, n_pixels: int, per_image: int, seed: int, copy: int = 0) -> np.ndarray:
    """The pixels drawn from train patch ``row`` (or its changed copy ``copy``): the same
    whatever the fold."""
    key = [seed, row] if copy == 0 else [seed, row, copy]
    return np.random.default_rng(key).integers(0, n_pixels, size=per_image)


def _strided_job(args: tuple) -> np.ndarray:
    filename, start, stop, stride, spec = args
    images = np.load(filename, mmap_mode="r")
    return pixel_features(images[start:stop], stride, spec)


def _sample_job(args: tuple) -> tuple[np.ndarray, np.ndarray]:
    images_file, masks_file, start, stop, per_image, seed, spec, copies, kinds, bound = args
    images = np.load(images_file, mmap_mode="r")[start:stop]
    masks = np.load(masks_file, mmap_mode="r")[start:stop]
    return _sample_job_arrays(images, masks, start, per_image, seed, spec, copies, kinds, bound)


def _build(
    folder: Path,
    names: tuple[str, ...],
    n: int,
    job: Callable,
    args: Callable[[int, int], tuple],
    workers: int,
) -> None:
    """Run ``job`` over chunks of ``n`` rows in ``workers`` processes and append its outputs to
    .npy files ``names`` in ``folder``, once: a lock keeps a concurrent builder waiting, and
    the files appear complete or not at all."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if all((folder / name).is_file() for name in names):
            return
        tmp = [folder / f".{name}.tmp" for name in names]
        handles = [path.open("wb") for path in tmp]
        try:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                jobs = [args(s, min(s + CHUNK, n)) for s in range(0, n, CHUNK)]
                for i, out in enumerate(pool.map(job, jobs)):
                    out = out if isinstance(out, tuple) else (out,)
                    for handle, array in zip(handles, out, strict=True):
                        if i == 0:
                            header = {
                                "descr": np.lib.format.dtype_to_descr(array.dtype),
                                "fortran_order": False,
                                "shape": (n, *array.shape[1:]),
                            }
                            np.lib.format.write_array_header_1_0(handle, header)
                        handle.write(np.ascontiguousarray(array).tobytes())
        finally:
            for handle in handles:
                handle.close()
        for path, name in zip(tmp, names, strict=True):
            path.replace(folder / name)


def strided_features(
    images: np.ndarray, stride: int, workers: int, spec: FeatureSpec = BASIC
) -> np.ndarray | None:
    """Features of every ``stride``-th pixel of a cached image array (memory-mapped; built
    once), or None when ``images`` is not a cache file."""
    filename = getattr(images, "filename", None)
    if filename is None or images.ndim != 4:
        return None
    source = Path(filename)
    folder = source.parent / f"gbm-features-v{VERSION}-s{stride}{spec.tag}"
    name = source.name
    job_args = lambda a, b: (source, a, b, stride, spec)  # noqa: E731
    _build(folder, (name,), len(images), _strided_job, job_args, workers)
    return np.load(folder / name, mmap_mode="r")


def training_samples(
    images: np.ndarray,
    masks: np.ndarray,
    per_image: int,
    seed: int,
    workers: int,
    spec: FeatureSpec = BASIC,
    copies: int = 0,
    kinds: tuple[str, ...] = TRAINING_KINDS,
    bound: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(n, (copies + 1) * per_image, features) and (n, (copies + 1) * per_image) classes of
    every train patch's drawn pixels, the patch's own first, then those of each of ``copies``
    radiometrically changed copies (each under one of the changes ``kinds``): memory-mapped
    stores beside a cache, or computed here for arrays in memory. ``bound`` (bands,): each
    patch and copy first dark-level corrected onto it (``align.dark_corrected``), as a fold
    corrects the patches it predicts (``train.dark_corrected``); a store per bound."""
    filename = getattr(images, "filename", None)
    if filename is None:
        return _sample_job_arrays(images, masks, 0, per_image, seed, spec, copies, kinds, bound)
    source = Path(filename)
    tag = f"p{per_image}-s{seed}{spec.tag}" + f"-c{copies}" * (copies > 0)
    if copies and tuple(kinds) != TRAINING_KINDS:
        tag += "-k" + "-".join(kinds)
    if bound is not None:
        bound = np.asarray(bound, np.float64)
        tag += "-dark" + "-".join(repr(float(b)) for b in bound)  # exact: one store a bound
    folder = source.parent / f"gbm-samples-v{VERSION}-{tag}"
    names = ("x.npy", "y.npy")
    masks_file = Path(masks.filename)
    _build(
        folder,
        names,
        len(images),
        _sample_job,
        lambda a, b: (source, masks_file, a, b, per_image, seed, spec, copies, tuple(kinds), bound),
        workers,
    )
    return np.load(folder / "x.npy", mmap_mode="r"), np.load(folder / "y.npy", mmap_mode="r")


def _sample_job_arrays(
    images, masks, start, per_image, seed, spec, copies=0, kinds=TRAINING_KINDS, bound=None
):
    """The drawn pixels' features and classes of patches ``start``, ``start + 1``, ...: from
    the patches as they are, then from each of ``copies`` changed copies (other pixels), each
    version dark-level corrected onto ``bound`` first if one is given."""
    images = np.asarray(images)
    n = len(images)
    flat_masks = np.asarray(masks).reshape(n, -1)
    size = flat_masks.shape[1]
    rows = np.arange(n)[:, None]
    xs, ys = [], []
    for copy in range(copies + 1):
        version = images if copy == 0 else randomised(images, start + rows[:, 0], seed, copy, kinds)
        if bound is not None:
            version = dark_corrected(version, bound)
        feats = pixel_features(version, 1, spec)
        picks = np.stack([sample_picks(start + i, size, per_image, seed, copy) for i in range(n)])
        xs.append(feats.reshape(n, size, -1)[rows, picks])
        ys.append(flat_masks[rows, picks])
    return np.concatenate(xs, axis=1), np.concatenate(ys, axis=1)
