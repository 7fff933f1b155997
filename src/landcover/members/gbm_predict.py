"""The LightGBM member's predictions: per-pixel class probabilities from its boosters (the
mean over a fold's bags), a patch's proportions from them on a regular grid of pixels, and
the fold model predict.py and the blend call (``GbmFoldModel``)."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np

from ..constants import N_CLASSES
from .base import FoldModel
from .gbm_features import BASIC, FeatureSpec, pixel_features
from .gbm_stores import cores, strided_features

Bag = tuple[lgb.Booster, np.ndarray]  # a booster and the class of each of its outputs


def pixel_probabilities(
    bags: list[Bag], flat: np.ndarray, num_iteration: int | None, threads: int
) -> np.ndarray:
    """(pixels, 10) per-pixel class probabilities, the mean over ``bags``."""
    probs = np.zeros((len(flat), N_CLASSES))
    for booster, classes in bags:
        probs[:, classes] += booster.predict(flat, num_iteration=num_iteration, num_threads=threads)
    return probs / len(bags)


def predict_proportions(
    bags: list[Bag],
    images: np.ndarray,
    rows: np.ndarray,
    stride: int,
    chunk: int = 64,
    num_iteration: int | None = None,
    threads: int = 0,
    spec: FeatureSpec = BASIC,
    hard: bool = False,
) -> np.ndarray:
    """(len(rows), 10) mean per-pixel probabilities (``hard``: argmax counts) on a grid of
    every ``stride``-th pixel, from the first ``num_iteration`` rounds (all by default) of
    every bag (their per-pixel probabilities averaged), on ``threads`` cores (0: all)."""
    threads = threads or cores()
    store = strided_features(images, stride, threads, spec)
    out = np.zeros((len(rows), N_CLASSES))
    for start in range(0, len(rows), chunk):
        wanted = rows[start : start + chunk]
        ordered = np.sort(wanted)  # sorted reads are faster on a memmap
        if store is not None:
            feats = np.asarray(store[ordered])
        else:
            feats = pixel_features(images[ordered], stride, spec)
        n, h, w, f = feats.shape
        flat = feats.reshape(-1, f)
        probs = pixel_probabilities(bags, flat, num_iteration, threads)
        if hard:
            probs = np.eye(N_CLASSES)[probs.argmax(axis=1)]
        probs = probs.reshape(n, h * w, -1).mean(axis=1)
        order = np.searchsorted(ordered, wanted)
        out[start : start + len(wanted)] = probs[order]
    return out


class GbmFoldModel(FoldModel):
    def __init__(self, bags: list[Bag], gcfg: dict, threads: int = 0, hard: bool = False):
        self.bags, self.threads, self.hard = bags, threads, hard
        self.stride, self.spec = gcfg["predict_stride"], FeatureSpec.from_config(gcfg)

    @property
    def rounds(self) -> int:
        """Boosting rounds of each bag."""
        return self.bags[0][0].current_iteration()

    def predict_proportions(
        self,
        images: np.ndarray,
        rows: np.ndarray,
        *,
        desc: str | None = None,
        num_iteration: int | None = None,
    ) -> np.ndarray:
        """Proportions (soft, or argmax counts if ``hard``) from all rounds, or the first
        ``num_iteration``, of every bag."""
        return predict_proportions(
            self.bags,
            images,
            rows,
            self.stride,
            num_iteration=num_iteration,
            threads=self.threads,
            spec=self.spec,
            hard=self.hard,
        )

    def predict_probabilities(self, images: np.ndarray) -> np.ndarray:
        """(n, 10, H, W) per-pixel probabilities at full resolution (the bags' mean)."""
        feats = pixel_features(images, 1, self.spec)
        n, h, w, f = feats.shape
        flat = feats.reshape(-1, f)
        probs = pixel_probabilities(self.bags, flat, None, self.threads or cores())
        return probs.astype(np.float32).reshape(n, h, w, N_CLASSES).transpose(0, 3, 1, 2)

    def predict_masks(self, images: np.ndarray) -> np.ndarray:
        """(n, H, W) uint8 argmax masks at full resolution."""
        return self.predict_probabilities(images).argmax(axis=1).astype(np.uint8)
