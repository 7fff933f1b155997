"""The one place that reads and writes patch TIFFs (through rasterio).

Reads both the organisers' plain uncompressed TIFFs (no georeferencing) and compressed
GeoTIFFs such as the shared sample's; every problem becomes a DataError naming the file and
the sample id.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning, RasterioError

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
