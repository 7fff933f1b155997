"""Figures for the notebooks: patches, masks, learning curves and OOF scores.

Every function returns its matplotlib Figure and needs no display (works with the Agg backend).
Images are (4, H, W) reflectance arrays whose bands behave as B, G, R, NIR. Class colours, and
the edges of the light ones, come from ``palette``; log axes go through ``log_axes.log_scale``.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from .artifacts import Experiment
from .constants import SCORED_CLASSES
from .log_axes import log_scale
from .metric import kl_divergence, kl_terms, scored_proportions
from .palette import (
    MASK_CMAP,
    MASK_EDGE,
    MASK_NORM,
    SCORED_COLORS,
    bar_style,
    class_legend_handles,
    is_light,
)
from .tables import Proportions


def stretch(image: np.ndarray, bands: tuple[int, int, int], low: float = 2, high: float = 98):
    """Three bands of a (4, H, W) image as an (H, W, 3) float array in [0, 1].

    Each band is stretched between its own ``low`` and ``high`` percentiles, so that dark
    scenes and bright ones both show their detail.
    """
    rgb = np.asarray(image, dtype=np.float64)[list(bands)]
    lo = np.percentile(rgb, low, axis=(1, 2), keepdims=True)
    hi = np.percentile(rgb, high, axis=(1, 2), keepdims=True)
    out = (rgb - lo) / np.maximum(hi - lo, 1e-9)
    return np.clip(out, 0, 1).transpose(1, 2, 0)


def true_colour(image: np.ndarray) -> np.ndarray:
    """Red, green, blue (bands 2, 1, 0) as an (H, W, 3) float array."""
    return stretch(image, (2, 1, 0))


def false_colour(image: np.ndarray) -> np.ndarray:
    """NIR, red, green (bands 3, 2, 1): vegetation shows red, water black."""
    return stretch(image, (3, 2, 1))


def show_mask(ax: plt.Axes, mask: np.ndarray) -> None:
    """Draw an (H, W) class mask in the fixed palette."""
    ax.imshow(mask, cmap=MASK_CMAP, norm=MASK_NORM, interpolation="nearest")


def _grid(nrows: int, ncols: int, panel: float = 2.0, **kwargs) -> tuple[Figure, np.ndarray]:
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(panel * ncols, panel * nrows), squeeze=False, **kwargs
    )
    return fig, axes


def plot_patches(
    images: np.ndarray,
    true_masks: np.ndarray | None = None,
    pred_masks: np.ndarray | None = None,
    ids: list | np.ndarray | None = None,
    titles: list[str] | None = None,
) -> Figure:
    """One column per patch; rows: true colour, NIR false colour, true mask, predicted mask."""
    rows = [("true colour", true_colour, images), ("NIR false colour", false_colour, images)]
    if true_masks is not None:
        rows.append(("true mask", None, true_masks))
    if pred_masks is not None:
        rows.append(("predicted mask", None, pred_masks))
    n = len(images)
    fig, axes = _grid(len(rows), n, panel=1.9)
    for r, (label, colour, arrays) in enumerate(rows):
        for c in range(n):
            ax = axes[r, c]
            if colour is None:
                show_mask(ax, arrays[c])
            else:
                ax.imshow(colour(arrays[c]))
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(label, fontsize=9)
    for c in range(n):
        head = titles[c] if titles is not None else (f"id {ids[c]}" if ids is not None else "")
        axes[0, c].set_title(head, fontsize=8)
    if true_masks is not None or pred_masks is not None:
        fig.legend(
            handles=class_legend_handles(),
            loc="lower center",
            ncol=5,
            fontsize=8,
            frameon=False,
            bbox_to_anchor=(0.5, 0.0),
        )
        height = fig.get_figheight()  # room for two legend rows, whatever the grid's height
        fig.subplots_adjust(bottom=0.55 / height, top=1 - 0.4 / height, wspace=0.05, hspace=0.08)
    else:
        fig.subplots_adjust(top=1 - 0.4 / fig.get_figheight(), wspace=0.05, hspace=0.08)
    return fig


def plot_proportions(
    truth: np.ndarray, pred: np.ndarray | None = None, titles: list[str] | None = None
) -> Figure:
    """Bars of the scored proportions of each sample: true (left) and predicted (right)."""
    truth = scored_proportions(np.atleast_2d(truth))
    pred = None if pred is None else scored_proportions(np.atleast_2d(pred))
    fig, axes = plt.subplots(1, len(truth), figsize=(2.3 * len(truth), 3.2), sharey=True)
    axes = np.atleast_1d(axes)
    x = np.arange(len(SCORED_CLASSES))
    width = 0.4 if pred is not None else 0.8
    style = bar_style(SCORED_COLORS)
    for i, ax in enumerate(axes):
        ax.bar(x - width / 2 if pred is not None else x, truth[i], width, **style)
        if pred is not None:
            ax.bar(x + width / 2, pred[i], width, hatch="////", **style)
        ax.set_xticks(x, SCORED_CLASSES, rotation=90, fontsize=7)
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    axes[0].set_ylabel("share of scored pixels")
    if pred is not None:
        axes[0].legend(
            handles=[
                Patch(facecolor="#bbbbbb", edgecolor=MASK_EDGE, label="true"),
                Patch(facecolor="#bbbbbb", edgecolor=MASK_EDGE, hatch="////", label="predicted"),
            ],
            loc="upper right",
            fontsize=7,
        )
    fig.tight_layout()
    return fig


def read_histories(exp_dir: str | os.PathLike[str]) -> pd.DataFrame:
    """Every ``folds/fold<k>/history.csv`` of an experiment, with a ``fold`` column."""
    paths = sorted(Path(exp_dir).glob("folds/fold*/history.csv"))
    if not paths:
        raise FileNotFoundError(f"{exp_dir}: no folds/fold*/history.csv")
    frames = [pd.read_csv(p).assign(fold=int(p.parent.name.removeprefix("fold"))) for p in paths]
    return pd.concat(frames, ignore_index=True)


def plot_learning_curves(exp_dir: str | os.PathLike[str]) -> Figure:
    """Training loss and validation KL per epoch, one line per fold (dashed: soft KL)."""
    history = read_histories(exp_dir)
    fig, (ax_loss, ax_kl) = plt.subplots(1, 2, figsize=(10, 3.5))
    for fold, rows in history.groupby("fold"):
        (line,) = ax_loss.plot(rows["epoch"], rows["train_loss"], marker=".", label=f"fold {fold}")
        ax_kl.plot(rows["epoch"], rows["val_kl"], marker=".", color=line.get_color())
        if not np.allclose(rows["val_kl"], rows["val_kl_soft"]):
            ax_kl.plot(rows["epoch"], rows["val_kl_soft"], ls="--", color=line.get_color())
    ax_loss.set(xlabel="epoch", ylabel="training loss", title="training loss")
    ax_kl.set(xlabel="epoch", ylabel="KL", title="validation KL (dashed: soft)")
    log_scale(ax_kl, "y")
    for ax in (ax_loss, ax_kl):  # whole epochs, even with only one
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax_loss.legend(fontsize=8)
    fig.tight_layout()
    return fig


def _aligned(predictions: Proportions, truth: Proportions) -> tuple[np.ndarray, np.ndarray]:
    """(truth values, prediction values) row-aligned on the predictions' sample ids."""
    return truth.select(predictions.ids, what="truth").values, predictions.values


def plot_fold_scores(experiment: Experiment, truth: Proportions) -> Figure:
    """OOF KL of each fold's validation samples, with the overall OOF KL as a line."""
    y, p = _aligned(experiment.oof, truth)
    folds = experiment.oof.folds
    ks = np.unique(folds)
    scores = [kl_divergence(y[folds == k], p[folds == k]) for k in ks]
    fig, ax = plt.subplots(figsize=(1.2 * len(ks) + 2, 3))
    bars = ax.bar([f"fold {k}" for k in ks], scores, color="#4c72b0")
    ax.bar_label(bars, fmt="%.4f", fontsize=8)
    overall = kl_divergence(y, p)
    ax.axhline(overall, color="k", ls="--", lw=1, label=f"all OOF: {overall:.4f}")
    ax.set(ylabel="KL", title=f"{experiment.name}: OOF KL per fold")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def plot_class_scores(experiment: Experiment, truth: Proportions) -> Figure:
    """Mean KL contribution of each scored class (the bars add up to the OOF KL)."""
    y, p = _aligned(experiment.oof, truth)
    terms = kl_terms(y, p).mean(axis=0)
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.barh(SCORED_CLASSES, terms, **bar_style(SCORED_COLORS))
    ax.axvline(0, color="k", lw=0.8)
    ax.invert_yaxis()
    ax.set(xlabel="mean KL term", title=f"{experiment.name}: KL by class (sum {terms.sum():.4f})")
    fig.tight_layout()
    return fig


def plot_pred_vs_true(predictions: Proportions, truth: Proportions) -> Figure:
    """Predicted against true share of each scored class, one panel per class."""
    y, p = _aligned(predictions, truth)
    y, p = scored_proportions(y), scored_proportions(p)
    fig, axes = plt.subplots(2, 4, figsize=(11, 5.5), sharex=True, sharey=True)
    for j, ax in enumerate(axes.ravel()):
        light = is_light(SCORED_COLORS[j])  # an opaque dark edge, or the point is not seen
        ax.scatter(
            y[:, j],
            p[:, j],
            s=10 if light else 8,
            facecolors=to_rgba(SCORED_COLORS[j], 0.6),
            edgecolors=MASK_EDGE if light else to_rgba(MASK_EDGE, 0.6),
            linewidths=0.7 if light else 0.3,
        )
        ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
        ax.set_title(SCORED_CLASSES[j], fontsize=9)
        ax.set(xlim=(-0.02, 1.02), ylim=(-0.02, 1.02), aspect="equal")
    for ax in axes[1]:
        ax.set_xlabel("true share")
    for ax in axes[:, 0]:
        ax.set_ylabel("predicted share")
    fig.tight_layout()
    return fig


def best_and_worst(ids: np.ndarray, kl: np.ndarray, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Ids of the ``k`` lowest-KL and ``k`` highest-KL samples (worst first)."""
    order = np.argsort(kl, kind="stable")
    k = min(k, len(order) // 2) if len(order) > 1 else len(order)
    return np.asarray(ids)[order[:k]], np.asarray(ids)[order[::-1][:k]]
