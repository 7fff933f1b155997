"""Pixels to network inputs: the per-band normaliser and the D4 views used for test-time
augmentation. Training batches (crops, flips, jitter) are built in ``batches.py``.

Reflectances are uint16; they travel to the device as int16 tensors holding the same bits
(torch supports uint16 only partly; int16 indexing and arithmetic work on every device), and
``Normalizer`` reads them back as unsigned on the device, so the host never makes a float copy.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from .constants import N_CLASSES


def pixels_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint16 reflectance array -> int16 tensor with the same bits (no copy when the array is
    contiguous and writable)."""
    if images.dtype != np.uint16:
        raise TypeError(f"expected uint16 reflectance, got {images.dtype}")
    images = np.require(images, requirements=["C", "W"])  # torch wants writable memory
    return torch.from_numpy(images.view(np.int16))


@dataclass
class Normalizer:
    """Per-band standardisation (optionally of log1p reflectance): with the statistics fitted
    on the training folds, or (``per_image``) with each image's own, which takes out a scene's
    overall brightness and contrast per band (haze, season, calibration) and keeps its texture.
    ``patch_relative``: four more channels after the standardised bands, each band less the image's
    own mean of it (in the training folds' units): a per-band gain of the whole image, in log
    space a constant, is gone from them, while the first four keep the absolute level.
    """

    mean: list[float]
    std: list[float]
    log: bool
    per_image: bool = False
    patch_relative: bool = False
    _on: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __call__(
        self,
        pixels: torch.Tensor,
        reflectance: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """(B, 4, H, W) int16 tensor from ``pixels_to_tensor`` -> float32, standardised per
        band, on the tensor's device and in its memory format. ``reflectance`` (training
        augmentation) transforms the float reflectances first."""
        x = (pixels.to(torch.int32) & 0xFFFF).float()
        if reflectance is not None:
            x = reflectance(x).clamp_min(0)
        if self.log:
            x = torch.log1p(x)
        if self.per_image:
            mean = x.mean(dim=(2, 3), keepdim=True)
            return (x - mean) / x.std(dim=(2, 3), keepdim=True).clamp_min(1e-3)
        mean, std = self._stats(x.device)
        if self.patch_relative:
            own = x.mean(dim=(2, 3), keepdim=True)
            return torch.cat([(x - mean) / std, (x - own) / std], dim=1)
        return (x - mean) / std

    def _stats(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std on ``device``, copied there once (a copy per batch would make the host
        wait for the GPU every step)."""
        if device not in self._on:
            stats = torch.tensor([self.mean, self.std], dtype=torch.float32)
            self._on[device] = tuple(stats.to(device).view(2, -1, 1, 1))
        return self._on[device]

    def to_dict(self) -> dict:
        return {
            "mean": self.mean,
            "std": self.std,
            "log": self.log,
            "per_image": self.per_image,
            "patch_relative": self.patch_relative,
        }


def fit_normalizer(
    images: np.ndarray,
    indices: np.ndarray,
    *,
    log: bool,
    max_images: int = 512,
    seed: int = 0,
    per_image: bool = False,
    patch_relative: bool = False,
) -> Normalizer:
    """Band mean and std over (a seeded subsample of) the training images."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(indices, size=min(max_images, len(indices)), replace=False))
    x = images[chosen][:, :, ::4, ::4].astype(np.float64)  # every 4th pixel is plenty
    if log:
        x = np.log1p(x)
    mean = x.mean(axis=(0, 2, 3))
    std = x.std(axis=(0, 2, 3)) + 1e-6
    return Normalizer(
        mean=mean.tolist(),
        std=std.tolist(),
        log=log,
        per_image=per_image,
        patch_relative=patch_relative,
    )


def mask_proportions(mask: np.ndarray) -> np.ndarray:
    return np.bincount(mask.ravel(), minlength=N_CLASSES).astype(np.float32) / mask.size


def batch_proportions(masks: torch.Tensor) -> torch.Tensor:
    """(B, H, W) integer masks -> (B, 10) float32 pixel fractions, on the masks' device."""
    flat = masks.reshape(len(masks), -1).long()
    counts = torch.zeros(len(masks), N_CLASSES, device=masks.device)
    counts.scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float32))
    return counts / flat.shape[1]


# Which of the 8 views (rotation k, then optional horizontal flip) each TTA level uses.
TTA_VIEWS = {1: (0,), 2: (0, 1), 4: (0, 1, 4, 5), 8: tuple(range(8))}


def d4_views(x: torch.Tensor, n: int) -> list[torch.Tensor]:
    """The first ``n`` of the 8 flips/rotations of a (B, C, H, W) batch (1, 2, 4 or 8)."""
    views = []
    for k in range(4):
        rotated = torch.rot90(x, k, dims=(2, 3))
        views += [rotated, torch.flip(rotated, dims=(3,))]
    return [views[i] for i in TTA_VIEWS[n]]


def d4_invert(y: torch.Tensor, view: int) -> torch.Tensor:
    """Undo view ``view`` (index in the 8-view order of ``d4_views``) on a (B, C, H, W) map."""
    k, flipped = divmod(view, 2)
    if flipped:
        y = torch.flip(y, dims=(3,))
    return torch.rot90(y, -k, dims=(2, 3))
