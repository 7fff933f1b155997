"""Generated datasets of the real dataset's size: 18,491 train and 5,043 test patches of
256x256 in the official layout (about 13 GB of TIFFs), in minutes, with memory bounded.

The small demo (``demo.py``) draws one coherent scene in memory; at full size that would be
1.5 billion pixels (and ~10 s of drawing per row of 45 tiles), so this draws a pool of
``pool_rows`` raster rows of tiles (``row_width`` tiles, 45 as in the official data) with the
same class fields and measured spectra, in parallel processes, then writes every row of the
dataset from a pool row: shifted by a random number of tiles, each tile turned by a random
flip/rotation and its bands scaled by a random gain of a few percent. Ids are laid out as the
official ones: 1..23,534 in raster order, the test set being the two official blocks
(10,087..13,448 and 16,811..18,491). Rows repeat pool content: this data is for measuring
time and memory at scale, not quality.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from .atomic import atomic_dir
from .constants import ID_COLUMN, N_CLASSES, OFFICIAL_ROW_WIDTH
from .demo import _check_target, _scene
from .tables import write_proportions
from .tiff import write_image, write_mask

OFFICIAL_TEST_BLOCKS = ((10087, 13448), (16811, 18491))
OFFICIAL_LAST_ID = 23534  # 18,491 train + 5,043 test ids


def official_ids(n_train: int, n_test: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test ids laid out as the official ones (the full set), or their first ids."""
    ids = np.arange(1, OFFICIAL_LAST_ID + 1)
    test = np.zeros(len(ids), dtype=bool)
    for first, last in OFFICIAL_TEST_BLOCKS:
        test |= (ids >= first) & (ids <= last)
    return ids[~test][:n_train], ids[test][:n_test]


def _draw_row(args: tuple) -> None:
    """Draw pool row ``row`` into the pool arrays (memory-mapped .npy files)."""
    pool, row, cols, size, seed = args
    rng = np.random.default_rng([seed, row])
    mask, image = _scene(rng, 1, cols, size, cols, cols)
    images = np.load(pool / "images.npy", mmap_mode="r+")
    masks = np.load(pool / "masks.npy", mmap_mode="r+")
    images[row], masks[row] = image, mask
    images.flush(), masks.flush()


def _write_row(args: tuple) -> list[tuple[int, np.ndarray]]:
    """Write one row of the dataset from a pool row; returns (train id, label) pairs."""
    out, pool, row, ids, train, size, seed = args
    rng = np.random.default_rng([seed, 1, row])
    images = np.load(pool / "images.npy", mmap_mode="r")
    masks = np.load(pool / "masks.npy", mmap_mode="r")
    source = int(rng.integers(len(images)))
    cols = images.shape[-1] // size
    shift = int(rng.integers(cols))
    labels = []
    for c, (sample_id, is_train) in enumerate(zip(ids.tolist(), train.tolist(), strict=True)):
        left = ((c + shift) % cols) * size
        k, flip = int(rng.integers(4)), bool(rng.integers(2))
        gain = rng.normal(1.0, 0.03, size=(4, 1, 1))

        def turn(a: np.ndarray, k: int = k, flip: bool = flip) -> np.ndarray:
            a = np.rot90(a, k, axes=(-2, -1))
            return np.ascontiguousarray(a[..., ::-1] if flip else a)

        image = np.asarray(images[source, :, :, left : left + size], dtype=np.float64)
        image = np.clip(np.rint(turn(image) * gain), 1, 24000).astype(np.uint16)
        part = "train" if is_train else "test"
        write_image(out / f"dataset/{part}/images/{sample_id}.tif", image)
        if is_train:
            tile = turn(np.asarray(masks[source, :, left : left + size]))
            write_mask(out / f"dataset/train/masks/{sample_id}.tif", tile)
            labels.append((sample_id, np.bincount(tile.ravel(), minlength=N_CLASSES) / tile.size))
    return labels


def make_large_dataset(
    out_dir: str | os.PathLike[str],
    n_train: int,
    n_test: int,
    size: int = 256,
    *,
    row_width: int = OFFICIAL_ROW_WIDTH,
    seed: int = 0,
    workers: int | None = None,
    pool_rows: int = 24,
    progress=None,
) -> Path:
    """Write the dataset row by row in ``workers`` processes (default: every core)."""
    out_dir = Path(out_dir)
    _check_target(out_dir)
    train_ids, test_ids = official_ids(n_train, n_test)
    if len(train_ids) < n_train or len(test_ids) < n_test:
        raise ValueError(f"at most {len(official_ids(10**9, 10**9)[0])} train ids")
    ids = np.sort(np.concatenate([train_ids, test_ids]))
    is_train = np.isin(ids, train_ids)
    first_row = (ids - 1) // row_width
    workers = workers or len(os.sched_getaffinity(0))
    rows = np.unique(first_row)
    with atomic_dir(out_dir) as tmp:
        for part in ("train/images", "train/masks", "test/images"):
            (tmp / "dataset" / part).mkdir(parents=True)
        pool = tmp / ".pool"
        pool.mkdir()
        n_pool = min(pool_rows, len(rows))
        np.lib.format.open_memmap(
            pool / "images.npy", "w+", np.uint16, (n_pool, 4, size, row_width * size)
        )
        np.lib.format.open_memmap(
            pool / "masks.npy", "w+", np.uint8, (n_pool, size, row_width * size)
        )
        labels: dict[int, np.ndarray] = {}
        with ProcessPoolExecutor(max_workers=workers) as workers_pool:
            draws = [(pool, r, row_width, size, seed) for r in range(n_pool)]
            list(workers_pool.map(_draw_row, draws, chunksize=1))
            jobs = [
                (tmp, pool, r, ids[first_row == r], is_train[first_row == r], size, seed)
                for r in rows
            ]
            for done in workers_pool.map(_write_row, jobs, chunksize=4):
                labels.update(done)
                if progress is not None:
                    progress(len(labels))
        shutil.rmtree(pool)
        for name, part_ids in (("train", train_ids), ("test", test_ids)):
            text = "\n".join([ID_COLUMN, *map(str, part_ids)]) + "\n"
            (tmp / f"{name}_images.csv").write_text(text)
        write_proportions(
            tmp / "train_labels.csv", train_ids, np.stack([labels[i] for i in train_ids])
        )
        (tmp / "grid.json").write_text(json.dumps({"row_width": row_width}) + "\n")
        (tmp / "README.txt").write_text(
            "Synthetic data at the real dataset's size (landcover.demo_large), NOT real "
            f"imagery: n_train={n_train} n_test={n_test} size={size} seed={seed}\n"
        )
    return out_dir
