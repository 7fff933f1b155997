"""A region's class prior re-estimated from a model's own per-pixel posteriors (label shift,
transductive, no labels): EM (Saerens, Latinne and Decaestecker 2002).

A model trained where classes come in the shares ``source`` gives posteriors p(y | x) that
carry those shares. If a new region holds the same classes with the same appearance but in
other shares, its posteriors are p(y | x) r_y / sum_k p(k | x) r_k with r = target / source,
and the target prior is the fixed point of "the mean of the adjusted posteriors". EM reaches
it from r = 1. Classes the source lacks (prior 0) cannot be re-weighted: each pixel keeps
their share (ratio NaN), and the re-weighting shares out the rest.

EM assumes calibrated posteriors. ``Calibration`` (bias-corrected temperature scaling, fitted on
held-out source pixels) makes them so first; black-box shift estimation (``bbse_ratio``) needs
no calibration, only the argmax's confusion on held-out source pixels. ``adapt_region`` runs
either on one region's pixels, each fold model's with its own ``FoldShift``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize, nnls

MAX_ITER = 200
TOL = 1e-6  # stop when no class's estimated share moves by more than this


def reweighted(probs: np.ndarray, ratio: np.ndarray) -> np.ndarray:
    """(..., C) posteriors with each class multiplied by ``ratio`` and renormalised; a class
    whose ratio is NaN (the source lacks it) keeps its share, the others share the rest."""
    p = np.asarray(probs, dtype=np.float32)
    ratio = np.asarray(ratio, dtype=np.float32)
    kept = np.isnan(ratio)
    adj = p * np.where(kept, 0.0, ratio)
    total = adj.sum(axis=-1, keepdims=True)
    mass = p[..., ~kept].sum(axis=-1, keepdims=True)
    scale = np.divide(mass, total, out=np.ones_like(total), where=total > 0)
    return np.where(kept, p, adj * scale)


def em_prior(
    probs: np.ndarray,
    source: np.ndarray,
    weights: np.ndarray | None = None,
    max_iter: int = MAX_ITER,
    tol: float = TOL,
) -> tuple[np.ndarray, np.ndarray]:
    """(target prior, ratio target / source), both (C,), of a region from its pixels'
    posteriors ``probs`` (..., C) under the ``source`` prior (C,), each pixel counting
    ``weights`` times (one per pixel; 1 by default). A class with source 0 gets ratio NaN: it
    keeps each pixel's share (``reweighted``)."""
    target, ratios = em_prior_groups([(probs, source, weights)], max_iter, tol)
    return target, ratios[0]


def em_prior_groups(
    groups: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]],
    max_iter: int = MAX_ITER,
    tol: float = TOL,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """One region's prior from pixels that several models predicted, each under its own
    source prior: ``groups`` of (posteriors (..., C), source (C,), pixel weights or None).
    Returns the target prior (C,) and each group's ratio target / source."""
    flat = []
    for probs, source, weights in groups:
        p = np.asarray(probs, dtype=np.float32)
        p = p.reshape(-1, p.shape[-1])
        src = np.asarray(source, dtype=np.float64)
        if p.shape[1] != len(src):
            raise ValueError(f"posteriors have {p.shape[1]} classes, the prior {len(src)}")
        w = np.ones(len(p)) if weights is None else np.asarray(weights, np.float64).reshape(-1)
        if len(w) != len(p):
            raise ValueError(f"{len(w)} pixel weights for {len(p)} pixels")
        flat.append((p, src, w))
    total = sum(w.sum() for _, _, w in flat)
    if total <= 0:
        raise ValueError("a region needs pixels of positive weight")
    flat = [(p, src, (w / total).astype(np.float32)) for p, src, w in flat]
    target = sum(float(w.sum()) * src for _, src, w in flat)  # the sources' mix: r = 1 first

    def ratio(src: np.ndarray) -> np.ndarray:
        active = src > 0
        return np.where(active, np.divide(target, src, where=active, out=np.ones_like(src)), np.nan)

    ratios = [np.where(src > 0, 1.0, np.nan) for _, src, _ in flat]
    for _ in range(max_iter):
        new = sum(
            (w @ reweighted(p, r)).astype(np.float64)
            for (p, _, w), r in zip(flat, ratios, strict=True)
        )
        done = np.max(np.abs(new - target)) < tol
        target = new
        ratios = [ratio(src) for _, src, _ in flat]
        if done:
            break
    return target, ratios


@dataclass(frozen=True)
class Calibration:
    """Bias-corrected temperature scaling of a model's posteriors (Alexandari et al. 2020):
    softmax(log p / T + b), fitted on held-out source pixels with labels, which EM then
    starts from (``FoldShift``)."""

    temperature: float
    bias: np.ndarray  # (C,); 0 for a class the fitting pixels lack

    def __call__(self, probs: np.ndarray) -> np.ndarray:
        z = np.log(np.asarray(probs, dtype=np.float32) + 1e-8) / self.temperature + self.bias
        z -= z.max(axis=-1, keepdims=True)
        e = np.exp(z)
        return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)

    @classmethod
    def fit(cls, probs: np.ndarray, labels: np.ndarray) -> Calibration:
        """The T and b that minimise the pixels' negative log-likelihood; ``probs`` (N, C),
        ``labels`` (N,) class indices."""
        logp = np.log(np.asarray(probs, dtype=np.float64) + 1e-8)
        labels = np.asarray(labels)
        n_classes = logp.shape[1]
        present = np.bincount(labels, minlength=n_classes) > 0
        onehot = np.eye(n_classes)[labels]

        def nll(x: np.ndarray) -> tuple[float, np.ndarray]:
            t, b = np.exp(x[0]), np.where(present, x[1:], 0.0)
            z = logp / t + b
            z -= z.max(axis=1, keepdims=True)
            q = np.exp(z)
            q /= q.sum(axis=1, keepdims=True)
            value = -np.mean(np.log(np.sum(q * onehot, axis=1) + 1e-300))
            g = (q - onehot) / len(q)  # d NLL / d z
            grad_t = np.sum(g * logp) * (-1 / t)  # d z / d log t = -log p / t
            return value, np.concatenate([[grad_t], np.where(present, g.sum(axis=0), 0.0)])

        res = minimize(nll, np.zeros(n_classes + 1), jac=True, method="L-BFGS-B")
        return cls(float(np.exp(res.x[0])), np.where(present, res.x[1:], 0.0))


@dataclass(frozen=True)
class FoldShift:
    """What one fold model needs to adapt its posteriors to a region: the prior they carry
    (``source``), and, by method, a calibration fitted on held-out source pixels (EM from
    calibrated posteriors) or the joint confusion matrix of its argmax there (BBSE)."""

    source: np.ndarray  # (C,)
    calibration: Calibration | None = None
    confusion: np.ndarray | None = None  # (C, C): P(predicted i, true j) on source pixels

    def prepared(self, probs: np.ndarray) -> np.ndarray:
        return probs if self.calibration is None else self.calibration(probs)


METHODS = ("em", "em-calibrated", "bbse")


def bbse_ratio(confusion: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Black-box shift estimation (Lipton et al. 2018): the ratio w >= 0 that best solves
    C w = mu, with C the joint confusion on source pixels and mu the region's distribution of
    argmax classes; NaN for a class the source pixels lack."""
    confusion = np.asarray(confusion, dtype=np.float64)
    source = confusion.sum(axis=0)
    active = source > 0
    w = np.full(len(source), np.nan)
    w[active] = nnls(confusion[:, active], np.asarray(predicted, np.float64))[0]
    return w


def adapt_region(
    method: str, groups: list[tuple[np.ndarray, np.ndarray | None, FoldShift]]
) -> tuple[np.ndarray, list[np.ndarray]]:
    """A region's prior by ``method`` (``METHODS``) from the pixels several fold models
    predicted: ``groups`` of (posteriors (..., C), pixel weights or None, their ``FoldShift``);
    returns the prior and each group's posteriors re-weighted to it."""
    if method not in METHODS:
        raise ValueError(f"prior adaptation must be one of {METHODS}, got {method!r}")
    prepared = [(shift.prepared(p), w, shift) for p, w, shift in groups]
    if method != "bbse":
        prior, ratios = em_prior_groups([(p, s.source, w) for p, w, s in prepared])
    else:
        n_classes = np.shape(groups[0][0])[-1]
        ratios, prior = [], np.zeros(n_classes)
        total = sum(np.size(p) // n_classes if w is None else np.sum(w) for p, w, _ in groups)
        for p, w, shift in prepared:
            flat = np.asarray(p).reshape(-1, n_classes)
            weights = np.ones(len(flat)) if w is None else np.asarray(w, np.float64)
            mu = np.bincount(flat.argmax(axis=1), weights=weights, minlength=n_classes)
            ratio = bbse_ratio(shift.confusion, mu / weights.sum())
            ratios.append(ratio)
            prior += weights.sum() / total * np.nan_to_num(ratio * shift.confusion.sum(axis=0))
    return prior, [reweighted(p, r) for (p, _, _), r in zip(prepared, ratios, strict=True)]
