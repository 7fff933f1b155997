"""Patch reading throughput: TIFF decoding (rasterio) against the array cache.

    python src/benchmarks/speed.py read --data ../shared/data/landcover-sample

Reads every train image and mask once from the TIFFs (one thread, then the cache builder's
thread pool) and from the cache (random order, as a shuffled epoch reads it), and prints
patches per second for each.
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from landcover.cache import prepare_data
from landcover.tiff import read_image, read_mask


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="data folder in the official layout")
    parser.add_argument("--workers", type=int, default=4, help="threads of the pooled reading")


def run(args: argparse.Namespace) -> None:
    data = prepare_data(args.data)
    layout, ids = data.layout, data.train_ids.tolist()
    size = tuple(data.manifest["size"])

    def read_pair(i: int) -> None:
        read_mask(layout.mask_path(i), i, read_image(layout.image_path("train", i), i).shape[1:])

    started = time.perf_counter()
    for i in ids:
        read_pair(i)
    one = time.perf_counter() - started
    started = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        list(pool.map(read_pair, ids))
    pooled = time.perf_counter() - started
    order = np.random.default_rng(0).permutation(len(ids))
    started = time.perf_counter()
    for row in order:
        np.asarray(data.train_images[row]).sum()
        np.asarray(data.train_masks[row]).sum()
    cached = time.perf_counter() - started
    n = len(ids)
    print(f"{n} patches of {size[0]}x{size[1]} (image + mask each)")
    print(f"TIFF, 1 thread          {n / one:9.0f} patches/s")
    print(f"TIFF, {args.workers} threads         {n / pooled:9.0f} patches/s")
    print(f"cache (memmap, shuffled){n / cached:9.0f} patches/s")
