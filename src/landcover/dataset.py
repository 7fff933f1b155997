"""Torch datasets over the cached arrays: normalisation, augmentation, crops.

Training targets come from the (possibly cropped) mask: the pixel fractions of the crop, which
equal the label row for a whole patch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import albumentations as A
import numpy as np
import torch
from torch.utils.data import Dataset

from .constants import N_CLASSES


@dataclass
class Normalizer:
    """Per-band standardisation (optionally of log1p reflectance), fitted on training folds."""

    mean: list[float]
    std: list[float]
    log: bool

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """(..., 4, H, W) uint16 -> float32, standardised per band."""
        x = images.astype(np.float32)
        if self.log:
            x = np.log1p(x)
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        return (x - mean) / std

    def to_dict(self) -> dict:
        return asdict(self)


def fit_normalizer(
    images: np.ndarray, indices: np.ndarray, *, log: bool, max_images: int = 512, seed: int = 0
) -> Normalizer:
    """Band mean and std over (a seeded subsample of) the training images."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(indices, size=min(max_images, len(indices)), replace=False))
    x = images[chosen][:, :, ::4, ::4].astype(np.float64)  # every 4th pixel is plenty
    if log:
        x = np.log1p(x)
    mean = x.mean(axis=(0, 2, 3))
    std = x.std(axis=(0, 2, 3)) + 1e-6
    return Normalizer(mean=mean.tolist(), std=std.tolist(), log=log)


def mask_proportions(mask: np.ndarray) -> np.ndarray:
    return np.bincount(mask.ravel(), minlength=N_CLASSES).astype(np.float32) / mask.size


class PatchDataset(Dataset):
    """Training or validation patches from the cache.

    Returns dicts with ``image`` (4, h, w) float32, ``mask`` (h, w) int64 and ``target``
    (10,) float32 proportions when masks are given, and ``index`` (row in the cache).
    """

    def __init__(
        self,
        images: np.ndarray,
        indices: np.ndarray,
        normalizer: Normalizer,
        *,
        masks: np.ndarray | None = None,
        augment: dict | None = None,
        crop: int = 0,
        seed: int = 0,
    ) -> None:
        self.images = images
        self.masks = masks
        self.indices = np.asarray(indices)
        self.normalizer = normalizer
        self.augment = augment or {}
        transforms = []
        if crop:
            transforms.append(A.RandomCrop(crop, crop))
        if self.augment.get("d4"):
            transforms.append(A.D4(p=1.0))
        self.spatial = A.Compose(transforms, seed=seed) if transforms else None
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.indices)

    def rng_state(self) -> dict:
        """Every random state of the augmentation, so a resumed run draws the same numbers."""
        spatial = [
            (t.random_generator.bit_generator.state, t.py_random.getstate())
            for t in self._random_parts()
        ]
        return {"jitter": self.rng.bit_generator.state, "spatial": spatial}

    def set_rng_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["jitter"]
        for part, (numpy_state, python_state) in zip(
            self._random_parts(), state["spatial"], strict=True
        ):
            part.random_generator.bit_generator.state = numpy_state
            part.py_random.setstate(python_state)

    def _random_parts(self) -> list:
        # albumentations gives the Compose and each transform generators of their own
        return [] if self.spatial is None else [self.spatial, *self.spatial.transforms]

    def __getitem__(self, i: int) -> dict:
        row = int(self.indices[i])
        image = self.normalizer(self.images[row])
        mask = None if self.masks is None else np.asarray(self.masks[row])
        if self.spatial is not None:
            out = self.spatial(
                image=image.transpose(1, 2, 0), **({"mask": mask} if mask is not None else {})
            )
            image = np.ascontiguousarray(out["image"].transpose(2, 0, 1))
            mask = out.get("mask", mask)
        gain, offset = self.augment.get("gain", 0.0), self.augment.get("offset", 0.0)
        if gain or offset:
            scale = np.exp(self.rng.normal(0.0, gain, size=(image.shape[0], 1, 1)))
            shift = self.rng.normal(0.0, offset, size=(image.shape[0], 1, 1))
            image = (image * scale + shift).astype(np.float32)
        item = {"image": torch.from_numpy(image), "index": row}
        if mask is not None:
            mask = np.ascontiguousarray(mask)
            item["mask"] = torch.from_numpy(mask.astype(np.int64))
            item["target"] = torch.from_numpy(mask_proportions(mask))
        return item


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
