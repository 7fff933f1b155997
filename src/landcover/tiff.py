"""The one place that reads and writes TIFFs (through rasterio): challenge patches, and scenes
(any GeoTIFF, read and written window by window).

Reads both the organisers' plain uncompressed TIFFs (no georeferencing) and compressed
GeoTIFFs such as the shared sample's; every problem becomes a DataError naming the file and
the sample id.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rasterio
from rasterio.enums import Resampling
from rasterio.errors import NotGeoreferencedWarning, RasterioError
from rasterio.shutil import copy as rio_copy
from rasterio.windows import Window

from .atomic import atomic_path
from .constants import N_BANDS, N_CLASSES
from .errors import DataError


def _read(path: Path, sample_id: int, what: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: sample_id {sample_id}: {what} file not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as src:
                return src.read()
    except RasterioError as err:
        raise DataError(f"{path}: sample_id {sample_id}: not a readable TIFF ({err})") from None


def read_image(
    path: str | os.PathLike[str], sample_id: int, size: tuple[int, int] | None = None
) -> np.ndarray:
    """A (4, H, W) uint16 patch; ``size`` (H, W), when given, must match."""
    path = Path(path)
    data = _read(path, sample_id, "image")
    if data.shape[0] != N_BANDS:
        raise DataError(
            f"{path}: sample_id {sample_id}: expected {N_BANDS} bands, got {data.shape[0]}"
        )
    if data.dtype != np.uint16:
        raise DataError(f"{path}: sample_id {sample_id}: expected uint16 pixels, got {data.dtype}")
    if size is not None and data.shape[1:] != tuple(size):
        raise DataError(
            f"{path}: sample_id {sample_id}: expected size {size[0]}x{size[1]}, "
            f"got {data.shape[1]}x{data.shape[2]}"
        )
    return data


def read_mask(path: str | os.PathLike[str], sample_id: int, size: tuple[int, int]) -> np.ndarray:
    """A (H, W) uint8 mask of class indices 0..9, the same size as its image."""
    path = Path(path)
    data = _read(path, sample_id, "mask")
    if data.shape[0] != 1:
        raise DataError(f"{path}: sample_id {sample_id}: a mask has 1 band, got {data.shape[0]}")
    if data.dtype != np.uint8:
        raise DataError(f"{path}: sample_id {sample_id}: expected uint8 mask, got {data.dtype}")
    if data.shape[1:] != tuple(size):
        raise DataError(
            f"{path}: sample_id {sample_id}: mask is {data.shape[1]}x{data.shape[2]}, "
            f"image is {size[0]}x{size[1]}"
        )
    top = int(data.max())
    if top >= N_CLASSES:
        raise DataError(
            f"{path}: sample_id {sample_id}: mask value {top} outside 0..{N_CLASSES - 1}"
        )
    return data[0]


def write_image(path: str | os.PathLike[str], image: np.ndarray, *, compress: bool = False) -> None:
    """Write a (4, H, W) uint16 patch as the organisers do (plain TIFF, or DEFLATE if asked)."""
    _write(path, np.asarray(image, dtype=np.uint16), compress)


def write_mask(path: str | os.PathLike[str], mask: np.ndarray, *, compress: bool = False) -> None:
    """Write a (H, W) uint8 mask."""
    _write(path, np.asarray(mask, dtype=np.uint8)[None], compress)


def _write(path: str | os.PathLike[str], data: np.ndarray, compress: bool) -> None:
    profile = {
        "driver": "GTiff",
        "width": data.shape[2],
        "height": data.shape[1],
        "count": data.shape[0],
        "dtype": data.dtype.name,
    }
    if compress:
        profile.update(compress="deflate", predictor=2)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)


# --- scenes: any GeoTIFF, read and written window by window ------------------------------

PALETTE_NODATA = 255  # class maps: 0..9 are the classes, 255 is nodata


@dataclass
class Scene:
    """An open raster with its four bands chosen (1-based, in B, G, R, NIR order)."""

    path: Path
    dataset: rasterio.io.DatasetReader
    bands: tuple[int, int, int, int]

    @property
    def shape(self) -> tuple[int, int]:
        return self.dataset.height, self.dataset.width

    def read_rows(self, top: int, rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Rows ``top .. top + rows`` as (4, rows, W) uint16 and a (rows, W) validity mask
        (False: nodata in every chosen band, or 0 everywhere when the file declares none)."""
        window = Window(0, top, self.dataset.width, rows)
        pixels = self.dataset.read(list(self.bands), window=window)
        nodata = self.dataset.nodata
        empty = (pixels == (0 if nodata is None else nodata)).all(axis=0)
        return np.clip(pixels, 0, 65535).astype(np.uint16), ~empty

    def sample_grid(self, max_pixels: int = 4_000_000) -> tuple[np.ndarray, np.ndarray, int]:
        """The scene's radiometry: (4, h, w) uint16 pixels on a regular grid of every
        ``step``-th pixel over the whole scene (one decimated read, overviews used where the
        file has them), their (h, w) validity mask, and ``step``."""
        height, width = self.shape
        step = max(1, int(np.ceil(np.sqrt(height * width / max_pixels))))
        shape = (len(self.bands), -(-height // step), -(-width // step))
        pixels = self.dataset.read(list(self.bands), out_shape=shape, resampling=Resampling.nearest)
        nodata = self.dataset.nodata
        empty = (pixels == (0 if nodata is None else nodata)).all(axis=0)
        if empty.all():
            raise DataError(f"{self.path}: no valid pixel in bands {list(self.bands)}")
        return np.clip(pixels, 0, 65535).astype(np.uint16), ~empty, step


def open_scene(path: str | os.PathLike[str], bands: tuple[int, ...] = (1, 2, 3, 4)) -> Scene:
    """Open a GeoTIFF (or any raster GDAL reads) for windowed reading; bad input is one
    DataError naming the file and the problem."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: raster not found")
    try:
        dataset = rasterio.open(path)
    except RasterioError as err:
        raise DataError(f"{path}: not a raster GDAL can read ({err})") from None
    if len(bands) != N_BANDS:
        dataset.close()
        raise DataError(f"--bands must name {N_BANDS} bands (B, G, R, NIR), got {list(bands)}")
    outside = [b for b in bands if not 1 <= b <= dataset.count]
    if outside:
        dataset.close()
        raise DataError(
            f"{path}: has {dataset.count} band(s); --bands {','.join(map(str, bands))} asks "
            f"for band {outside[0]} (bands are 1-based, in B, G, R, NIR order)"
        )
    kinds = {np.dtype(dataset.dtypes[b - 1]).kind for b in bands}
    if kinds - {"u", "i"}:
        dataset.close()
        raise DataError(
            f"{path}: bands {list(bands)} are {dataset.dtypes[bands[0] - 1]}; expected integer "
            "surface reflectance x 10,000 (as the challenge patches)"
        )
    return Scene(path, dataset, tuple(bands))


def class_map_profile(scene: Scene, count: int = 1, dtype: str = "uint8") -> dict:
    """A tiled, uncompressed working GeoTIFF with the scene's georeference (``finish_cog``
    compresses it into a Cloud-Optimized GeoTIFF)."""
    src = scene.dataset
    return {
        "driver": "GTiff",
        "width": src.width,
        "height": src.height,
        "count": count,
        "dtype": dtype,
        "crs": src.crs,
        "transform": src.transform,
        "nodata": PALETTE_NODATA if dtype == "uint8" else None,
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "BIGTIFF": "IF_SAFER",
    }


def finish_cog(work: Path, out: Path) -> None:
    """Compress ``work`` into a Cloud-Optimized GeoTIFF at ``out`` (atomically): 256 px tiles
    and overviews (nearest: class values stay classes) down to one tile, so a GIS shows any
    zoom of it fast."""
    with atomic_path(out) as tmp:
        rio_copy(
            str(work),
            str(tmp),
            driver="COG",
            COMPRESS="DEFLATE",
            BLOCKSIZE=256,
            OVERVIEW_RESAMPLING="NEAREST",
        )


def write_scene(path: str | os.PathLike[str], array: np.ndarray, crs: str, transform) -> Path:
    """A (bands, H, W) array as a georeferenced, compressed GeoTIFF (atomically)."""
    profile = {
        "driver": "GTiff",
        "width": array.shape[2],
        "height": array.shape[1],
        "count": array.shape[0],
        "dtype": array.dtype.name,
        "crs": crs,
        "transform": transform,
        "compress": "deflate",
        "tiled": True,
    }
    with atomic_path(path) as tmp, rasterio.open(tmp, "w", **profile) as dst:
        dst.write(array)
    return Path(path)
