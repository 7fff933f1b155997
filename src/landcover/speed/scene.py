"""Throughput and peak memory of mapping a scene: pixels/s and the process's peak resident
memory for a generated scene of N x N pixels (default 10,980, a Sentinel-2 tile at 10 m).

    python src/benchmarks/speed.py scene --model oof/unet_regnety_002 \\
        --data ../shared/data/landcover-sample [--size 10980] [--folds 1] [--keep]

The scene is tiled from the data's real training patches (written strip by strip, so making
it holds no more than one strip either) in a scratch folder that is deleted afterwards unless
``--keep``. ``--folds 1`` keeps only the first fold model of each member: the cost per pixel
scales with the number of fold models, memory does not.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin
from rasterio.windows import Window

from landcover.cache import prepare_data
from landcover.predictor import Predictor
from landcover.scene import predict_scene, window_settings
from landcover.sites import Grid
from landcover.tiff import open_scene


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def write_scene(path: Path, size: int, images: np.ndarray) -> None:
    """An N x N scene tiled with real patches, written one row of patches at a time."""
    tile = images.shape[-1]
    profile = {
        "driver": "GTiff", "width": size, "height": size, "count": 4, "dtype": "uint16",
        "crs": "EPSG:32631", "transform": from_origin(500_000, 5_000_000, 10, 10),
        "tiled": True, "blockxsize": 512, "blockysize": 512, "BIGTIFF": "YES",
    }  # fmt: skip
    rng = np.random.default_rng(0)
    with rasterio.open(path, "w", **profile) as dst:
        for top in range(0, size, tile):
            rows = min(tile, size - top)
            picks = rng.integers(0, len(images), size=-(-size // tile))
            strip = np.concatenate([images[p] for p in picks], axis=2)[:, :rows, :size]
            dst.write(strip, window=Window(0, top, size, rows))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="submissions/<name>.json or oof/<exp>")
    parser.add_argument("--data", required=True, help="data whose patches tile the scene")
    parser.add_argument("--size", type=int, default=10980, help="scene width and height, pixels")
    parser.add_argument("--folds", type=int, default=0, help="fold models per member (0: all)")
    parser.add_argument("--overlap", type=int, help="window overlap (default: the members')")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")


def run(args: argparse.Namespace) -> None:
    data = prepare_data(args.data)
    images = np.asarray(data.train_images[: min(64, len(data.train_ids))])
    scratch = Path(tempfile.mkdtemp(prefix="scene-speed-"))
    try:
        started = time.perf_counter()
        write_scene(scratch / "scene.tif", args.size, images)
        made = time.perf_counter() - started
        print(f"scene {args.size}x{args.size} written in {made:.0f} s ({scratch})")
        predictor = Predictor.load(args.model, args.device)
        if args.folds:
            for member in predictor.members:
                member.folds = member.folds[: args.folds]
        print(predictor.describe())
        size, overlap, said = window_settings(predictor.patch_size, None, args.overlap)
        print(said)
        base = peak_rss_mib()
        scene = open_scene(scratch / "scene.tif")
        started = time.perf_counter()
        result = predict_scene(
            predictor,
            scene,
            Grid(scene, 2560.0),
            size=size,
            overlap=overlap,
            map_path=scratch / "map.tif",
            batch=args.batch,
        )
        seconds = time.perf_counter() - started
        n_models = sum(len(m.folds) for m in predictor.members)
        pixels = args.size**2
        print(
            f"{result.windows} windows x {n_models} fold models in {seconds:.0f} s: "
            f"{pixels / seconds:,.0f} pixels/s ({pixels * n_models / seconds:,.0f} pixel-models/s)"
        )
        print(f"peak resident memory {peak_rss_mib():,.0f} MiB (after loading: {base:,.0f} MiB)")
    finally:
        if not args.keep:
            shutil.rmtree(scratch)
