"""Figures for the notebooks: patches, masks, learning curves and OOF scores.

Every function returns its matplotlib Figure and needs no display (works with the Agg backend).
Images are (4, H, W) reflectance arrays whose bands behave as B, G, R, NIR.

Class colours all come from ``constants.CLASS_COLORS`` (the class map GeoTIFF's palette too).
Those too light to see on white (clouds, snow, cultivated: ``is_light``) are drawn with a dark
edge or outline wherever a class colour is used: bars, lines, points and legend entries. Log
axes go through ``log_scale``: plain labels, as many as fit without touching.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import patheffects
from matplotlib.axis import Axis
from matplotlib.colors import BoundaryNorm, ListedColormap, to_rgb, to_rgba
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

from .artifacts import Experiment
from .constants import CLASS_COLORS, CLASSES, N_CLASSES, SCORED_CLASSES
from .metric import kl_divergence, kl_terms, scored_proportions
from .tables import Proportions

MASK_CMAP = ListedColormap(CLASS_COLORS, name="landcover")
MASK_NORM = BoundaryNorm(np.arange(N_CLASSES + 1) - 0.5, N_CLASSES)
SCORED_COLORS = CLASS_COLORS[N_CLASSES - len(SCORED_CLASSES) :]
MASK_EDGE = "#444444"  # the edge or outline of every light class colour, and of every bar
LIGHT_CONTRAST = 1.6  # a colour with less contrast than this against white is light


def contrast_with_white(color) -> float:
    """WCAG contrast ratio of ``color`` against white: 1 (white) to 21 (black)."""
    srgb = np.asarray(to_rgb(color))
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    return 1.05 / (float(linear @ [0.2126, 0.7152, 0.0722]) + 0.05)


def is_light(color) -> bool:
    """Whether ``color`` needs a dark edge to be seen on white (white, snow's lavender, yellow)."""
    return contrast_with_white(color) < LIGHT_CONTRAST


def class_color(cls: int | str) -> str:
    """The palette colour of a class, by index or name."""
    return CLASS_COLORS[cls if isinstance(cls, int | np.integer) else CLASSES.index(cls)]


def outline(color, lw: float = 1.3) -> list:
    """Path effects for a line of width ``lw``: a dark outline if ``color`` is light, else none."""
    if not is_light(color):
        return []
    return [patheffects.Stroke(linewidth=lw + 1.4, foreground=MASK_EDGE), patheffects.Normal()]


def bar_style(colors: Sequence) -> dict:
    """Keyword arguments for bars in ``colors``: a thin dark edge, thicker on light colours."""
    return {
        "color": list(colors),
        "edgecolor": MASK_EDGE,
        "linewidth": [1.0 if is_light(c) else 0.5 for c in colors],
    }


def class_line_handles(
    classes: Sequence[int | str], labels: Sequence[str], lw: float = 1.3
) -> list:
    """Legend entries for lines in the class colours, outlined like the lines they stand for
    (a legend drawn from ``stairs`` would lose the outline)."""
    colors = [class_color(c) for c in classes]
    return [
        Line2D([], [], color=color, lw=lw, path_effects=outline(color, lw), label=label)
        for color, label in zip(colors, labels, strict=True)
    ]


def _plain(value: float, _pos=None) -> str:
    return f"{value:g}"


class ReadableLogLocator(LogLocator):
    """Major ticks of a log axis whose plain labels (``%g``) do not touch.

    The densest of 1-2-5, 1-3 and 1 per decade that has room, every few decades on a long
    range, and plain linear steps (0.8, 0.9, 1, ...) on an axis that spans too little of a
    decade for two of those. Room is measured at draw time on the axis as laid out.
    """

    MANTISSAS = ((1, 2, 5), (1, 3), (1,))

    def __init__(self) -> None:
        super().__init__(base=10.0)

    def __call__(self):
        vmin, vmax = self.axis.get_view_interval()
        return self.tick_values(vmin, vmax)

    def _room(self) -> tuple[float, float, bool]:
        """(axis length in points, tick label font size in points, horizontal axis)."""
        axis: Axis | None = self.axis
        if axis is None or axis.axes is None:
            return 300.0, 10.0, True
        horizontal = axis.axis_name == "x"
        fig = axis.axes.figure
        box = axis.axes.get_position()
        inches = box.width * fig.get_figwidth() if horizontal else box.height * fig.get_figheight()
        size = FontProperties(size=mpl.rcParams[f"{axis.axis_name}tick.labelsize"])
        return inches * 72, size.get_size_in_points(), horizontal

    def _fits(self, ticks: np.ndarray, vmin: float, vmax: float) -> bool:
        """Whether the labels of ``ticks`` inside [vmin, vmax] leave a gap between neighbours."""
        length, font, horizontal = self._room()
        inside = ticks[(ticks >= vmin * (1 - 1e-9)) & (ticks <= vmax * (1 + 1e-9))]
        if len(inside) < 2:
            return False
        if horizontal:  # digits are about 0.6 em wide; a label may spread half its width
            need = 0.62 * font * max(len(_plain(t)) for t in inside) + 0.6 * font
        else:
            need = 1.8 * font
        span = math.log10(vmax / vmin)
        gaps = np.diff(np.log10(inside)) / span * length
        return bool(gaps.min() >= need)

    def tick_values(self, vmin: float, vmax: float) -> np.ndarray:
        vmin, vmax = sorted((float(vmin), float(vmax)))
        if vmax <= 0:
            return np.array([])
        vmin = max(vmin, vmax * 1e-12)
        if vmax / vmin < 1 + 1e-9:
            return np.array([vmin])
        lo, hi = math.floor(math.log10(vmin)), math.ceil(math.log10(vmax))
        decades = np.arange(lo, hi + 1)
        for subs in self.MANTISSAS:
            ticks = np.array([m * 10.0**e for e in decades for m in subs])
            if self._fits(ticks, vmin, vmax):
                return ticks
        for stride in range(2, len(decades) + 1):
            ticks = 10.0 ** np.arange(lo - lo % stride, hi + 1, stride)
            if self._fits(ticks, vmin, vmax):
                return ticks
        for bins in (8, 6, 5, 4, 3, 2, 1):  # too short a span for two of the ticks above
            ticks = MaxNLocator(nbins=bins, steps=[1, 2, 2.5, 5, 10]).tick_values(vmin, vmax)
            ticks = ticks[ticks > 0]
            if self._fits(ticks, vmin, vmax):
                return ticks
        return np.array([vmin, vmax])


def log_scale(ax: plt.Axes, which: str = "x") -> None:
    """Put the ``which`` axes of ``ax`` ("x", "y" or "xy") on a log scale with plain labels
    that do not overlap (``ReadableLogLocator``), minor ticks unlabelled.

    Matplotlib's own log labels (``2x10^-1``) label minor ticks too on an axis spanning less
    than a decade, and those run into each other.
    """
    for name in which:
        axis = {"x": ax.xaxis, "y": ax.yaxis}[name]
        getattr(ax, f"set_{name}scale")("log")
        axis.set_major_locator(ReadableLogLocator())
        axis.set_major_formatter(FuncFormatter(_plain))
        axis.set_minor_formatter(NullFormatter())


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


def class_legend_handles(classes: tuple[str, ...] = CLASSES) -> list[Patch]:
    """Legend entries in the fixed class palette, edged (thicker on the light colours)."""
    return [
        Patch(
            facecolor=class_color(name),
            edgecolor=MASK_EDGE,
            linewidth=1.0 if is_light(class_color(name)) else 0.5,
            label=name,
        )
        for name in classes
    ]


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
