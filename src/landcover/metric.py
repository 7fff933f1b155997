"""The challenge metric, implemented once.

Drop no_data and clouds, renormalise truth and prediction over the 8 scored classes, then per
sample KL(y || yhat) = sum_i (y_i + eps) * log((y_i + eps) / (yhat_i + eps)) with eps = 1e-8,
averaged over samples. Float64 throughout; a row whose scored mass is 0 stays all zeros instead
of dividing by zero (for a prediction this costs y * log(y / eps), as it should).
"""

from __future__ import annotations

import numpy as np

from .constants import EPS, N_CLASSES, SCORED_CLASSES


def scored_proportions(values: np.ndarray) -> np.ndarray:
    """Keep the 8 scored classes of an (n, 10) or (n, 8) array and renormalise each row."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2 or values.shape[1] not in (N_CLASSES, len(SCORED_CLASSES)):
        raise ValueError(f"expected shape (n, 10) or (n, 8), got {values.shape}")
    if values.shape[1] == N_CLASSES:
        values = values[:, N_CLASSES - len(SCORED_CLASSES) :]
    scored = values
    total = scored.sum(axis=1, keepdims=True)
    return np.divide(scored, total, out=np.zeros_like(scored), where=total > 0)


def kl_terms(y_true: np.ndarray, y_pred: np.ndarray, eps: float = EPS) -> np.ndarray:
    """Per-sample, per-scored-class KL terms, shape (n, 8); their row sums are the sample scores.

    ``eps`` is the challenge page's 1e-8 unless given (the organisers' eval.py used 1e-7)."""
    y = scored_proportions(y_true)
    p = scored_proportions(y_pred)
    if y.shape != p.shape:
        raise ValueError(f"truth has shape {y.shape}, prediction {p.shape}")
    return (y + eps) * np.log((y + eps) / (p + eps))


def kl_per_sample(y_true: np.ndarray, y_pred: np.ndarray, eps: float = EPS) -> np.ndarray:
    """KL divergence of each sample, shape (n,)."""
    return kl_terms(y_true, y_pred, eps).sum(axis=1)


def kl_divergence(y_true: np.ndarray, y_pred: np.ndarray, eps: float = EPS) -> float:
    """The challenge score: mean per-sample KL (lower is better)."""
    return float(kl_per_sample(y_true, y_pred, eps).mean())
