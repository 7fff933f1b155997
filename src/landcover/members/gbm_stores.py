"""The LightGBM member's per-pixel features on disk, computed once per dataset on every core.

Two stores are kept beside a prepared cache's arrays (``cache/<data>/gbm-*``), built on first
use in parallel processes and then memory-mapped by every fold, experiment and re-run:

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
from pathlib import Path

import numpy as np

from ..radiometry import dark_corrected
from ..shift import TRAINING_KINDS, randomised
from .gbm_features import BASIC, VERSION, FeatureSpec, pixel_features

CHUNK = 32  # patches per parallel job


def cores() -> int:
    return len(os.sched_getaffinity(0))


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
