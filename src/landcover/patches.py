"""Challenge-format patches to predict: a data folder (``test/images`` directly or under
``dataset/``, ids from its ``test_images*.csv`` when there is one), an x_test-style CSV beside
such a folder, or a plain folder of ``<id>.tif`` files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .errors import DataError
from .tables import read_ids
from .tiff import read_image, write_scene


def find_patches(source: str | os.PathLike[str]) -> tuple[Path, np.ndarray]:
    """(images folder, sample ids) of a patch source."""
    source = Path(source)
    if source.is_file() and source.suffix == ".csv":
        ids = read_ids(source, "x_test")
        folder = _images_folder(source.parent)
        if folder is None:
            raise DataError(f"{source}: no test/images folder beside it for its patches")
        return folder, ids
    if not source.is_dir():
        raise DataError(f"{source}: neither a folder of patches, an x_test CSV nor a raster")
    folder = _images_folder(source) or source
    csvs = sorted(p for d in (source, source / "dataset") for p in d.glob("test_images*.csv"))
    if len(csvs) > 1:
        raise DataError(f"{source}: several test_images*.csv ({[p.name for p in csvs]})")
    if csvs:
        return folder, read_ids(csvs[0], "x_test")
    stems = sorted(p.stem for p in folder.glob("*.tif"))
    ids = [int(s) for s in stems if s.isdigit()]
    if not ids:
        raise DataError(f"{folder}: no <sample_id>.tif patch found")
    return folder, np.array(sorted(ids), dtype=np.int64)


def _images_folder(root: Path) -> Path | None:
    for candidate in (root / "test" / "images", root / "dataset" / "test" / "images"):
        if candidate.is_dir():
            return candidate
    return None


def iter_patches(
    folder: Path, ids: np.ndarray, chunk: int = 128
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, (n, 4, H, W) uint16 images) in chunks; every patch the size of the first."""
    size = None
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        images = []
        for sample_id in part.tolist():
            image = read_image(folder / f"{sample_id}.tif", sample_id, size)
            size = size or image.shape[1:]
            images.append(image)
        yield part, np.stack(images)


def mosaic_ids(top_left: int, rows: int, cols: int, row_width: int) -> np.ndarray:
    """(rows, cols) ids of neighbouring tiles: id + 1 is the tile to the right, id + row_width
    the tile below (45 in the official data)."""
    return top_left + row_width * np.arange(rows)[:, None] + np.arange(cols)[None, :]


def write_mosaic(
    folder: Path,
    ids: np.ndarray,
    out: str | os.PathLike[str],
    *,
    origin: tuple[float, float] = (500_000.0, 5_000_000.0),
    pixel: float = 10.0,
    crs: str = "EPSG:32631",
) -> Path:
    """Stitch the patches ``ids`` (rows, cols) of ``folder`` into one GeoTIFF with a made-up
    UTM georeference (10 m pixels, like Sentinel-2's bands B2, B3, B4, B8)."""
    from rasterio.transform import from_origin

    grid = [[read_image(folder / f"{i}.tif", int(i)) for i in row] for row in ids.tolist()]
    scene = np.block(grid)
    return write_scene(out, scene, crs, from_origin(*origin, pixel, pixel))
