"""Per-pixel features for the LightGBM member.

Each pixel is described by its four log reflectances, three spectral indices and the local mean
of the log bands at two scales (context a pixel alone lacks); ``gbm.per_image``,
``gbm.texture``, ``gbm.patch_relative``, ``gbm.patch_relative_context`` and
``gbm.above_dark_level`` change the set (``FeatureSpec``). ``gbm_stores`` keeps them on disk
beside a prepared cache, computed once per dataset on every core.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import uniform_filter

from ..radiometry import dark_levels

VERSION = 1  # bump when the features change: stores of another version are not read
CONTEXT_SIZES = (5, 17)  # local-mean windows in pixels
BANDS = ("b", "g", "r", "nir")
WIDE = 51  # texture: the widest local-mean window (a fifth of a 256-pixel patch)


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
