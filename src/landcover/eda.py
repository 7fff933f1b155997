"""Exploratory statistics of a dataset's masks and bands, and their figures; and the table of an
experiment's settings that differ from the base config, for the train notebook.

Works on the cached arrays: masks (N, H, W) uint8 and images (N, 4, H, W) uint16, memory-mapped
or not; everything is read in chunks so the full train set fits.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .constants import CLASS_COLORS, CLASSES, N_BANDS, N_CLASSES
from .log_axes import log_scale
from .palette import bar_style, class_color, class_line_handles, outline

BAND_NAMES: tuple[str, ...] = ("blue", "green", "red", "near infrared")


def pixel_counts(masks: np.ndarray, chunk: int = 256) -> np.ndarray:
    """(N, 10) int64: pixels of each class in each mask."""
    counts = np.zeros((len(masks), N_CLASSES), dtype=np.int64)
    for start in range(0, len(masks), chunk):
        block = np.asarray(masks[start : start + chunk]).reshape(-1, masks[0].size)
        offsets = np.arange(len(block))[:, None] * N_CLASSES
        flat = np.bincount((block + offsets).ravel(), minlength=len(block) * N_CLASSES)
        counts[start : start + len(block)] = flat.reshape(len(block), N_CLASSES)
    return counts


def class_distribution(counts: np.ndarray) -> pd.DataFrame:
    """Per class: share of all pixels, and share of patches that contain the class."""
    return pd.DataFrame(
        {
            "pixels": counts.sum(axis=0) / counts.sum(),
            "images": (counts > 0).mean(axis=0),
        },
        index=pd.Index(CLASSES, name="class"),
    )


def cooccurrence(counts: np.ndarray) -> pd.DataFrame:
    """(10, 10) number of patches containing both classes (the diagonal: containing the class)."""
    present = (counts > 0).astype(np.int64)
    return pd.DataFrame(present.T @ present, index=list(CLASSES), columns=list(CLASSES))


def sample_band_pixels(
    images: np.ndarray,
    masks: np.ndarray,
    *,
    per_class: int = 5000,
    max_images: int = 200,
    seed: int = 0,
) -> dict[int, np.ndarray]:
    """Up to ``per_class`` random pixels of each present class: class -> (n, 4) reflectances."""
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(images), size=min(max_images, len(images)), replace=False))
    pixels = np.asarray(images[chosen]).transpose(1, 0, 2, 3).reshape(N_BANDS, -1).T
    labels = np.asarray(masks[chosen]).ravel()
    out = {}
    for cls in np.unique(labels):
        rows = np.flatnonzero(labels == cls)
        if len(rows) > per_class:
            rows = rng.choice(rows, size=per_class, replace=False)
        out[int(cls)] = pixels[rows]
    return out


def plot_class_distribution(table: pd.DataFrame) -> Figure:
    """Two bar charts: share of pixels (log scale) and share of patches containing each class."""
    fig, (ax_px, ax_im) = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
    style = bar_style([class_color(name) for name in table.index])
    ax_px.barh(table.index, table["pixels"], **style)
    log_scale(ax_px, "x")
    ax_px.set(xlabel="share of pixels (log)", title="by pixels")
    ax_im.barh(table.index, table["images"], **style)
    ax_im.set(xlim=(0, 1), xlabel="share of patches containing the class", title="by images")
    ax_px.invert_yaxis()
    fig.tight_layout()
    return fig


def plot_cooccurrence(table: pd.DataFrame) -> Figure:
    """Heat map of patch co-occurrence counts, as a share of the row class's patches."""
    counts = table.to_numpy()
    diag = np.diag(counts).astype(np.float64)
    share = np.divide(counts, diag[:, None], out=np.zeros(counts.shape), where=diag[:, None] > 0)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    im = ax.imshow(share, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(N_CLASSES), table.columns, rotation=90)
    ax.set_yticks(range(N_CLASSES), table.index)
    for i in range(N_CLASSES):
        for j in range(N_CLASSES):
            ax.text(
                j,
                i,
                counts[i, j],
                ha="center",
                va="center",
                fontsize=7,
                color="white" if share[i, j] < 0.6 else "black",
            )
    ax.set_title("patches containing both classes\n(colour: share of the row class's patches)")
    fig.colorbar(im, ax=ax, shrink=0.8)
    fig.tight_layout()
    return fig


def plot_band_histograms(
    pixels: dict[int, np.ndarray], bins: int = 60, min_pixels: int = 50
) -> Figure:
    """One panel per band: histogram of reflectance for each class (log x axis, log bins).

    Classes with fewer than ``min_pixels`` sampled pixels are left out (too few to show a shape).
    """
    pixels = {c: rows for c, rows in pixels.items() if len(rows) >= min_pixels}
    values = np.concatenate(list(pixels.values()))
    lo, hi = max(1.0, float(values.min())), max(2.0, float(values.max()))
    edges = np.geomspace(lo, hi, bins + 1)
    fig, axes = plt.subplots(1, N_BANDS, figsize=(13, 3.2), sharey=True)
    for band, ax in enumerate(axes):
        for cls, rows in sorted(pixels.items()):
            hist, _ = np.histogram(np.clip(rows[:, band], lo, hi), bins=edges)
            ax.stairs(
                hist / len(rows),
                edges,
                color=CLASS_COLORS[cls],
                lw=1.3,
                path_effects=outline(CLASS_COLORS[cls], 1.3),
            )
        log_scale(ax, "x")
        ax.set(title=BAND_NAMES[band], xlabel="reflectance x 1e4")
    axes[0].set_ylabel("share of the class's pixels")
    shown = sorted(pixels)
    handles = class_line_handles(shown, [f"{CLASSES[c]} ({len(pixels[c])})" for c in shown])
    fig.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    return fig


ABSENT = "(absent)"  # config_changes: a key one side does not have


def _flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``; an empty mapping stays a value."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def config_changes(config: dict, base: dict) -> pd.DataFrame:
    """The settings of a resolved ``config`` that differ from ``base`` (configs/base.yaml), for
    display: one row per dotted key, columns ``base`` and ``experiment``, in the config's order.

    A key one side lacks (a free-form mapping's entries, ``profile``) shows as ``(absent)``
    there; an empty mapping in the base that the config fills is not a row of its own.
    """
    ours, theirs = _flatten(config), _flatten(base)
    filled = {k for k, v in theirs.items() if v == {} and any(o.startswith(f"{k}.") for o in ours)}
    keys = [*ours, *(k for k in theirs if k not in ours and k not in filled)]
    rows = {
        key: [theirs.get(key, ABSENT), ours.get(key, ABSENT)]
        for key in keys
        if key not in ours or key not in theirs or ours[key] != theirs[key]
    }
    table = pd.DataFrame.from_dict(
        rows, orient="index", columns=["base", "experiment"], dtype=object
    )
    table.index.name = "setting"
    return table
