"""The class map's per-pixel probabilities, blended as the proportions are, so that a map and
the proportions of the same window tell one story.

A window's proportions go through the blend (``blend_model.blend``) as a patch's do: each fold
model's mean over the window's valid pixels, scored classes renormalised, each member's
temperature, the weights, the class calibration, the floor. Temperature and calibration act
on the window's mean, not on a pixel (that is what they were tuned on), so a pixel's values
are its members' probabilities carried through the same steps as class ratios of the window:

    t_m(x) = p_m(x) * T_m(P_m) / P_m       member m at its temperature (P_m: its window mean)
    q(x)   = sum_m w_m t_m(x)              the weighted mix, mean Q = sum_m w_m T_m(P_m)
    b(x)   = (1 - f) q(x) * C(Q) / Q + f prior        C: the class calibration

(a class whose mean is 0 is 0 at every pixel, and gets the blend's share evenly), averaged
over the fold models. The mean of b over the window's valid pixels is the window's blended
proportions exactly; a pixel's values sum to about 1, not exactly (the ratios are the
window's). The map's class is the argmax of b, so a class's area on a window differs from its
proportion only as an argmax differs from a mean: per class, by at most the mean over the
pixels of |[class is the pixel's argmax] - b_class(x)|. Clouds and no_data are not mapped:
the proportions drop them too.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .blend_model import N_SCORED, Stack, calibrated
from .constants import N_CLASSES
from .predictor import Predictor


def window_means(probs: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """(n, 10) each window's mean over its valid pixels of (n, 10, S, S) probabilities (an
    image-level member's (n, 10) as they are)."""
    if probs.ndim == 2:
        return probs.astype(np.float64)
    weight = valid[:, None].astype(np.float64)
    total = weight.sum(axis=(2, 3))
    return (probs * weight).sum(axis=(2, 3)) / np.maximum(total, 1.0)


def member_terms(
    means: np.ndarray, temperature: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(scale, offset, tempered), each (n, 8): the member at its temperature is, per pixel,
    ``scale * p_scored(x) + offset``, whose window mean is ``tempered``, its tempered
    proportions."""
    stack = Stack.of(means[None])
    share, tempered = stack.probs[0], stack.tempered(0, float(temperature))
    mass = means[:, N_CLASSES - N_SCORED :].sum(axis=1, keepdims=True)  # scored share of the mean
    spread = (share > 0) & (mass > 0)
    scale = np.where(spread, tempered / np.where(spread, share * mass, 1.0), 0.0)
    return scale, np.where(spread, 0.0, tempered), tempered


class WindowBlend:
    """One fold model of each member on a batch of windows, summed as they come, then blended:
    ``add`` each member's probabilities, ``pixels`` gives b (n, 8, S, S)."""

    def __init__(self, n: int, size: int) -> None:
        self.scaled = np.zeros((n, N_SCORED, size, size), dtype=np.float32)
        self.offset = np.zeros((n, N_SCORED))
        self.mix = np.zeros((n, N_SCORED))

    def add(self, probs: np.ndarray, valid: np.ndarray, weight: float, temperature: float):
        if weight <= 0:  # the blend leaves it out
            return
        scale, offset, tempered = member_terms(window_means(probs, valid), temperature)
        scored = probs[:, N_CLASSES - N_SCORED :]
        if probs.ndim == 2:  # image-level: the same values at every pixel
            self.offset += weight * (scale * scored + offset)
        else:
            self.scaled += (weight * scale[:, :, None, None] * scored).astype(np.float32)
            self.offset += weight * offset
        self.mix += weight * tempered

    def pixels(self, floor: float, prior: np.ndarray, bias, power) -> np.ndarray:
        """(n, 8, S, S) the blended per-pixel values: class calibration as ratios of the
        windows' mixes, then the floor."""
        after = calibrated(self.mix, bias, power)
        moved = self.mix > 0
        ratio = np.where(moved, after / np.where(moved, self.mix, 1.0), 0.0)
        const = np.where(moved, ratio * self.offset, after)
        out = ratio[:, :, None, None].astype(np.float32) * self.scaled
        out += const[:, :, None, None].astype(np.float32)
        out *= 1.0 - floor
        out += (floor * np.asarray(prior, dtype=np.float32))[None, :, None, None]
        return out


def window_values(
    predictor: Predictor,
    images: np.ndarray,
    valid: np.ndarray,
    each: Callable[[int, int, np.ndarray], None] | None = None,
) -> np.ndarray:
    """(n, 8, S, S) the map's values on (n, 4, S, S) windows (``valid``: their ground pixels),
    blended as their proportions are (``map_blend.py``), the mean over the fold models;
    ``each(member, fold, probabilities)`` sees every fold model's raw probabilities."""
    n, size = len(images), images.shape[-1]
    out = np.zeros((n, N_SCORED, size, size), dtype=np.float32)
    params = predictor.params
    for k in range(predictor.n_folds):
        mixed = WindowBlend(n, size)
        for m, member in enumerate(predictor.members):
            fold = k % len(member.folds)
            probs = predictor.pixel_probabilities(member, fold, images, valid)
            if each is not None and k < len(member.folds):
                each(m, fold, probs)
            mixed.add(probs, valid, member.weight, member.temperature)
        out += mixed.pixels(predictor.floor, predictor.prior, params.class_bias, params.class_power)
    out /= predictor.n_folds
    return out
