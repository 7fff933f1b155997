"""Training losses: pixel cross-entropy and the KL term on soft proportions.

The KL term is the challenge metric written in torch so that it can be differentiated (drop
no_data and clouds, renormalise, eps = 1e-8); tests check it equals ``metric.kl_per_sample``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .constants import EPS, N_CLASSES

N_IGNORED = 2  # no_data, clouds
# ``loss.class_weights``: the power of the inverse pixel frequency each mode weighs a class by
WEIGHT_POWERS = {
    "inverse_frequency": 1.0,
    "sqrt_inverse_frequency": 0.5,
    "fourth_root_inverse_frequency": 0.25,
}


def soft_proportions(logits: torch.Tensor) -> torch.Tensor:
    """(B, 10, H, W) pixel logits or (B, 10) image logits -> (B, 10) proportions."""
    probs = logits.float().softmax(dim=1)
    return probs.flatten(2).mean(dim=2) if probs.ndim == 4 else probs


def hard_proportions(logits: torch.Tensor) -> torch.Tensor:
    """Argmax pixel counts (the benchmark recipe): (B, 10, H, W) -> (B, 10)."""
    labels = logits.argmax(dim=1).flatten(1)
    counts = F.one_hot(labels, N_CLASSES).sum(dim=1).float()
    return counts / labels.shape[1]


def kl_loss(target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """Per-sample challenge KL between (B, 10) proportion tensors, shape (B,)."""
    y = target[:, N_IGNORED:].double()
    p = pred[:, N_IGNORED:].double()
    y = y / y.sum(dim=1, keepdim=True).clamp_min(1e-30)
    p = p / p.sum(dim=1, keepdim=True).clamp_min(1e-30)
    return ((y + EPS) * torch.log((y + EPS) / (p + EPS))).sum(dim=1)


def class_weights(masks: np.ndarray, mode: str, rows: np.ndarray | None = None) -> torch.Tensor:
    """Cross-entropy weights: 1, or inverse pixel frequency in ``masks[rows]`` (all rows by
    default), or its square root (``sqrt_inverse_frequency``: rare classes count more without
    the official recipe's 60x swing) or fourth root (``fourth_root_inverse_frequency``); 0 for
    the ignored classes and for classes absent from training; mean 1 over the classes present.
    Masks are read in chunks, and only when needed."""
    weights = np.ones(N_CLASSES)
    if mode in WEIGHT_POWERS:
        rows = np.arange(len(masks)) if rows is None else np.sort(rows)
        counts = np.zeros(N_CLASSES)
        for start in range(0, len(rows), 256):
            chunk = np.asarray(masks[rows[start : start + 256]])
            counts += np.bincount(chunk.ravel(), minlength=N_CLASSES)
        freq = counts / counts.sum()
        weights = np.divide(1.0, freq, out=np.zeros(N_CLASSES), where=freq > 0)
        weights = weights ** WEIGHT_POWERS[mode]
    weights[:N_IGNORED] = 0.0
    present = weights > 0
    weights[present] *= present.sum() / weights[present].sum()  # mean weight 1 over classes
    return torch.tensor(weights, dtype=torch.float32)


def segmentation_ce(
    logits: torch.Tensor,
    masks: torch.Tensor,
    weights: torch.Tensor,
    total_weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """Weighted pixel cross-entropy, averaged over the weight of the pixels in the batch (a batch
    of only cloud pixels gives 0, not NaN); ``total_weight``: of the global batch instead."""
    per_pixel = F.cross_entropy(logits.float(), masks, reduction="none")
    w = weights.to(logits.device)[masks]
    return (per_pixel * w).sum() / (w.sum() if total_weight is None else total_weight).clamp_min(
        1.0
    )


def total_loss(
    logits: torch.Tensor,
    batch: dict,
    loss_cfg: dict,
    weights: torch.Tensor,
    global_batch: dict | None = None,
) -> torch.Tensor:
    """The training loss of a batch. ``global_batch`` (a distributed job: ``batch`` is this
    rank's slice of it): normalise by the whole batch's pixel weight and sample count, so the
    ranks' losses add up to the loss of the whole batch."""
    loss = logits.new_zeros((), dtype=torch.float32)
    if loss_cfg["ce_weight"] and logits.ndim == 4:
        total = None
        if global_batch is not None:
            total = weights.to(logits.device)[global_batch["mask"]].sum()
        loss = loss + loss_cfg["ce_weight"] * segmentation_ce(logits, batch["mask"], weights, total)
    if loss_cfg["kl_weight"]:
        kl = kl_loss(batch["target"], soft_proportions(logits))
        kl = kl.mean() if global_batch is None else kl.sum() / len(global_batch["target"])
        loss = loss + loss_cfg["kl_weight"] * kl.float()
    return loss
