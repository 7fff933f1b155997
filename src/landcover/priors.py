"""A region's class prior re-estimated from a model's own per-pixel posteriors (label shift,
transductive, no labels): EM (Saerens, Latinne and Decaestecker 2002).

A model trained where classes come in the shares ``source`` gives posteriors p(y | x) that
carry those shares. If a new region holds the same classes with the same appearance but in
other shares, its posteriors are p(y | x) r_y / sum_k p(k | x) r_k with r = target / source,
and the target prior is the fixed point of "the mean of the adjusted posteriors". EM reaches
it from r = 1. Classes the source lacks (prior 0) cannot be re-weighted: each pixel keeps
their share (ratio NaN), and the re-weighting shares out the rest.
"""

from __future__ import annotations

import numpy as np

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
