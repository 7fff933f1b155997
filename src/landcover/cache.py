"""Validate a data folder once and cache it as uint16 arrays, so epochs never decode TIFFs.

A cache directory holds ``train_images.npy`` (N, 4, H, W) uint16, ``train_masks.npy``
(N, H, W) uint8, ``test_images.npy``, the ids, the labels aligned to the train ids, and
``manifest.json``. It is rebuilt when the inputs change (file names, sizes, modification
times, CSV contents, reader version) and written atomically (complete or absent).

``data_fingerprint`` hashes the decoded content (ids, labels, pixels, masks), so the same data
compressed differently has the same fingerprint and experiments can be compared across copies.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_dir
from .constants import N_BANDS, N_CLASSES
from .errors import DataError
from .layout import DataLayout, locate
from .progress import bar
from .provenance import REPO_ROOT
from .tables import Proportions, read_ids, read_proportions
from .tiff import read_image, read_mask

CACHE_VERSION = 1
LABEL_TOLERANCE = 1e-6  # labels are exact pixel fractions of the masks in the official data


@dataclass
class PreparedData:
    """A validated, cached dataset. Image arrays are memory-mapped, read-only."""

    cache_dir: Path
    layout: DataLayout
    train_ids: np.ndarray
    test_ids: np.ndarray
    labels: np.ndarray  # (n_train, 10) float64, rows aligned with train_ids
    train_images: np.ndarray
    train_masks: np.ndarray
    test_images: np.ndarray
    manifest: dict

    @property
    def fingerprint(self) -> str:
        return self.manifest["data_fingerprint"]

    @property
    def row_width(self) -> int | None:
        """Tiles per raster row if the dataset records it (generated data), else None."""
        return self.layout.row_width

    @property
    def size(self) -> int:
        return int(self.train_images.shape[-1])


def default_cache_dir(data_dir: str | os.PathLike[str]) -> Path:
    root = Path(data_dir).expanduser().resolve()
    tag = hashlib.sha1(str(root).encode()).hexdigest()[:8]
    return REPO_ROOT / "cache" / f"{root.name}-{tag}"


def _inputs_key(layout: DataLayout, train_ids: np.ndarray, test_ids: np.ndarray) -> str:
    """Cheap key over everything the cache is built from (stats, not contents, of the TIFFs)."""
    digest = hashlib.sha256(f"cache-v{CACHE_VERSION}".encode())
    for csv in (layout.x_train, layout.y_train, layout.x_test):
        digest.update(csv.read_bytes())
    paths = [layout.image_path("train", i) for i in train_ids]
    paths += [layout.mask_path(i) for i in train_ids]
    paths += [layout.image_path("test", i) for i in test_ids]
    for path in paths:
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue  # reported with the sample id by _check_files
        digest.update(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()


def _check_files(layout: DataLayout, train_ids: np.ndarray, test_ids: np.ndarray) -> None:
    """Fail fast, before any long work, on an id without its TIFF."""
    listed = {
        "train image": (layout.train_images, train_ids),
        "train mask": (layout.train_masks, train_ids),
        "test image": (layout.test_images, test_ids),
    }
    for what, (folder, ids) in listed.items():
        present = {p.name for p in os.scandir(folder)}
        for sample_id in ids:
            if f"{sample_id}.tif" not in present:
                path = folder / f"{sample_id}.tif"
                raise DataError(f"{path}: sample_id {sample_id}: {what} file not found")


def _read_split(
    ids: np.ndarray,
    path: Path,
    dtype: type,
    shape: tuple[int, ...],
    read_one: Callable[[int], np.ndarray],
    hasher: Any,
    desc: str,
    workers: int,
    check: Callable[[int, np.ndarray], None] | None = None,
) -> None:
    """Read every id's array (threads: GDAL releases the GIL while decoding) and append it to
    an .npy file, in order. A bounded number of reads is in flight and the file is written,
    not memory-mapped, so memory stays at a few chunks whatever the dataset's size."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False,
              "shape": (len(ids), *shape)}  # fmt: skip
    chunk = 32 * workers
    with path.open("wb") as out, ThreadPoolExecutor(max_workers=workers) as pool:
        np.lib.format.write_array_header_1_0(out, header)
        progress = bar(total=len(ids), desc=desc, unit="patch")
        for start in range(0, len(ids), chunk):
            part = ids[start : start + chunk].tolist()
            for sample_id, array in zip(part, pool.map(read_one, part), strict=True):
                data = np.ascontiguousarray(array, dtype=dtype).tobytes()
                out.write(data)
                hasher.update(data)
                if check is not None:
                    check(sample_id, array)
            progress.update(len(part))
        progress.close()


def build_cache(
    layout: DataLayout, cache_dir: Path, *, workers: int = 4, force: bool = False
) -> PreparedData:
    train_ids = read_ids(layout.x_train, "x_train")
    test_ids = read_ids(layout.x_test, "x_test")
    overlap = np.intersect1d(train_ids, test_ids)
    if len(overlap):
        raise DataError(f"{layout.x_test}: sample_id {overlap[0]} is also in x_train")
    labels_table = read_proportions(layout.y_train, what="y_train", require_sum_to_one=True)
    missing = np.setdiff1d(train_ids, labels_table.ids)
    if len(missing):
        raise DataError(f"{layout.y_train}: sample_id {missing[0]} of x_train has no label row")
    labels = _rows_for(labels_table, train_ids)  # y_train may list more ids than x_train
    _check_files(layout, train_ids, test_ids)
    key = _inputs_key(layout, train_ids, test_ids)
    manifest_path = cache_dir / "manifest.json"
    if not force and manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("inputs_key") == key:
            return load_cache(cache_dir, layout)

    first = read_image(layout.image_path("train", int(train_ids[0])), int(train_ids[0]))
    size = first.shape[1:]
    started = time.perf_counter()
    hasher = hashlib.blake2b(digest_size=16)
    hasher.update(train_ids.tobytes() + test_ids.tobytes() + labels.tobytes())
    with atomic_dir(cache_dir) as tmp:
        _read_split(
            train_ids,
            tmp / "train_images.npy",
            np.uint16,
            (N_BANDS, *size),
            lambda i: read_image(layout.image_path("train", i), i, size),
            hasher,
            "train images",
            workers,
        )
        mismatched: list[int] = []
        label_of = dict(zip(train_ids.tolist(), labels, strict=True))

        def check_mask(sample_id: int, mask: np.ndarray) -> None:
            counts = np.bincount(mask.ravel(), minlength=N_CLASSES) / mask.size
            if np.abs(counts - label_of[sample_id]).max() > LABEL_TOLERANCE:
                mismatched.append(sample_id)

        _read_split(
            train_ids,
            tmp / "train_masks.npy",
            np.uint8,
            tuple(size),
            lambda i: read_mask(layout.mask_path(i), i, size),
            hasher,
            "train masks",
            workers,
            check_mask,
        )
        _read_split(
            test_ids,
            tmp / "test_images.npy",
            np.uint16,
            (N_BANDS, *size),
            lambda i: read_image(layout.image_path("test", i), i, size),
            hasher,
            "test images",
            workers,
        )
        np.save(tmp / "train_ids.npy", train_ids)
        np.save(tmp / "test_ids.npy", test_ids)
        np.save(tmp / "labels.npy", labels)
        manifest = {
            "cache_version": CACHE_VERSION,
            "inputs_key": key,
            "data_fingerprint": hasher.hexdigest(),
            "data_dir": str(layout.root),
            "x_train": str(layout.x_train),
            "y_train": str(layout.y_train),
            "x_test": str(layout.x_test),
            "n_train": len(train_ids),
            "n_test": len(test_ids),
            "size": [int(s) for s in size],
            "labels_disagreeing_with_masks": mismatched,
            "build_seconds": round(time.perf_counter() - started, 2),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return load_cache(cache_dir, layout)


def _rows_for(table: Proportions, ids: np.ndarray) -> np.ndarray:
    index = {sample_id: row for row, sample_id in enumerate(table.ids.tolist())}
    return table.values[[index[i] for i in ids.tolist()]]


def load_cache(cache_dir: str | os.PathLike[str], layout: DataLayout) -> PreparedData:
    cache_dir = Path(cache_dir)
    manifest = json.loads((cache_dir / "manifest.json").read_text())
    return PreparedData(
        cache_dir=cache_dir,
        layout=layout,
        train_ids=np.load(cache_dir / "train_ids.npy"),
        test_ids=np.load(cache_dir / "test_ids.npy"),
        labels=np.load(cache_dir / "labels.npy"),
        train_images=np.load(cache_dir / "train_images.npy", mmap_mode="r"),
        train_masks=np.load(cache_dir / "train_masks.npy", mmap_mode="r"),
        test_images=np.load(cache_dir / "test_images.npy", mmap_mode="r"),
        manifest=manifest,
    )


def prepare_data(
    data_dir: str | os.PathLike[str],
    *,
    cache_dir: str | os.PathLike[str] | None = None,
    x_train: str | os.PathLike[str] | None = None,
    y_train: str | os.PathLike[str] | None = None,
    x_test: str | os.PathLike[str] | None = None,
    workers: int = 4,
    force: bool = False,
) -> PreparedData:
    """Locate, validate and cache a data folder (reusing an up-to-date cache)."""
    layout = locate(data_dir, x_train=x_train, y_train=y_train, x_test=x_test)
    cache = Path(cache_dir) if cache_dir else default_cache_dir(layout.root)
    return build_cache(layout, cache, workers=workers, force=force)
