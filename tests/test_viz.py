"""Figures a person can read: every class colour seen on white, log-axis labels that do not
overlap, and the train notebook's config shown as its differences from the base."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib import patheffects
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex, to_rgba
from matplotlib.lines import Line2D
from matplotlib.patches import FancyBboxPatch, Patch, StepPatch

from landcover import eda, viz
from landcover.artifacts import Experiment
from landcover.config import CONFIG_DIR, load_config, read_yaml
from landcover.constants import CLASS_COLORS, CLASSES, N_BANDS, N_CLASSES
from landcover.log_axes import log_scale
from landcover.palette import (
    MASK_CMAP,
    class_color,
    class_legend_handles,
    contrast_with_white,
    is_light,
)
from landcover.tables import Proportions

DARK = 3.0  # an edge or outline at least this contrasted with white is seen


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _proportions(n: int, seed: int = 0) -> np.ndarray:
    """(n, 10) proportions in which every class appears."""
    return np.random.default_rng(seed).dirichlet(np.ones(N_CLASSES), size=n)


def _experiment(n: int = 40) -> tuple[Experiment, Proportions]:
    ids = np.arange(n)
    truth = Proportions(ids, _proportions(n, 0))
    oof = Proportions(ids, _proportions(n, 1), folds=ids % 4)
    return Experiment("toy", Path("."), oof, oof, {}, {}), truth


CLASS_FIGURES = [
    "class distribution",
    "band histograms",
    "patches",
    "proportions",
    "class scores",
    "pred vs true",
]


def _class_figures() -> dict[str, plt.Figure]:
    """Every figure that draws class colours, with every class present."""
    rng = np.random.default_rng(0)
    counts = rng.integers(1, 10_000, size=(20, N_CLASSES))
    pixels = {c: rng.lognormal(6 + c % 3, 0.5, size=(200, N_BANDS)) for c in range(N_CLASSES)}
    masks = rng.integers(0, N_CLASSES, size=(2, 16, 16))
    images = rng.integers(1, 3000, size=(2, 4, 16, 16))
    exp, truth = _experiment()
    return {
        "class distribution": eda.plot_class_distribution(eda.class_distribution(counts)),
        "band histograms": eda.plot_band_histograms(pixels),
        "patches": viz.plot_patches(images, masks, masks),
        "proportions": viz.plot_proportions(truth.values[:3], exp.oof.values[:3]),
        "class scores": viz.plot_class_scores(exp, truth),
        "pred vs true": viz.plot_pred_vs_true(exp.oof, truth),
    }


def _dark_outline(artist) -> bool:
    return any(
        isinstance(effect, patheffects.Stroke)
        and contrast_with_white(effect._gc["foreground"]) >= DARK
        for effect in artist.get_path_effects()
    )


def _unseen(fig: plt.Figure) -> tuple[list[str], set[str]]:
    """(light class-coloured marks with no dark edge or outline, light class colours drawn)."""
    palette = {to_hex(c) for c in CLASS_COLORS}
    unseen, drawn = [], set()

    def light(rgba) -> bool:
        rgba = to_rgba(rgba)
        return rgba[3] > 0 and to_hex(rgba) in palette and is_light(rgba)

    backgrounds = {id(fig.patch), *(id(ax.patch) for ax in fig.axes)}
    for artist in fig.findobj():
        if id(artist) in backgrounds or isinstance(artist, FancyBboxPatch):  # white on purpose
            continue
        if isinstance(artist, StepPatch | Line2D):  # lines: the colour is the stroke
            colour = artist.get_edgecolor() if isinstance(artist, StepPatch) else artist.get_color()
            if light(colour):
                drawn.add(to_hex(colour))
                if not _dark_outline(artist):
                    unseen.append(f"line {artist.get_label()!r} in {to_hex(colour)}")
        elif isinstance(artist, Patch) and artist.get_fill() and light(artist.get_facecolor()):
            drawn.add(to_hex(artist.get_facecolor()))
            edge_ok = contrast_with_white(artist.get_edgecolor()) >= DARK
            if not (edge_ok and artist.get_edgecolor()[3] > 0.9 and artist.get_linewidth() >= 0.8):
                unseen.append(f"patch {artist.get_label()!r} in {to_hex(artist.get_facecolor())}")
        elif isinstance(artist, PathCollection):
            faces, edges = artist.get_facecolors(), artist.get_edgecolors()
            widths = np.broadcast_to(artist.get_linewidths(), len(faces))
            for i, face in enumerate(faces):
                if light(face[:3]):
                    drawn.add(to_hex(face[:3]))
                    edge = edges[i % len(edges)] if len(edges) else (0, 0, 0, 0)
                    if not (
                        contrast_with_white(edge) >= DARK and edge[3] > 0.9 and widths[i] >= 0.6
                    ):
                        unseen.append(f"point in {to_hex(face[:3])}")
    return unseen, drawn


def test_the_light_class_colours_are_the_pale_ones() -> None:
    light = {name for name, c in zip(CLASSES, CLASS_COLORS, strict=True) if is_light(c)}
    assert {"snow", "cultivated"} <= light  # pale ice, yellow: outlined on white
    assert "water" not in light and "no_data" not in light
    for name, color in zip(CLASSES, CLASS_COLORS, strict=True):  # no colour is white on white
        assert contrast_with_white(color) > 1.4, name
    assert contrast_with_white("#ffffff") == pytest.approx(1.0)
    assert contrast_with_white("#000000") == pytest.approx(21.0)


@pytest.mark.parametrize("name", CLASS_FIGURES)
def test_every_class_colour_is_seen_on_white(name: str) -> None:
    """A light class colour (clouds, snow, ...) always comes with a dark edge or outline,
    legends included; the figure's colours are the palette's (one palette everywhere)."""
    fig = _class_figures()[name]
    unseen, drawn = _unseen(fig)
    assert not unseen, f"{name}: {unseen}"
    if name not in ("class scores", "pred vs true", "proportions"):  # scored classes only
        assert to_hex(CLASS_COLORS[8]) in drawn  # snow (light) was drawn, and checked


def test_the_band_histogram_legend_keeps_the_outlines() -> None:
    fig = _class_figures()["band histograms"]
    handles = fig.legends[0].legend_handles
    snow = next(h for h in handles if h.get_label().startswith("snow"))
    assert _dark_outline(snow)


def test_the_mask_palette_is_the_class_palette() -> None:
    """Masks, legends and bars draw ``constants.CLASS_COLORS`` (the GeoTIFF's palette too)."""
    assert [to_hex(MASK_CMAP(i)) for i in range(N_CLASSES)] == list(CLASS_COLORS)
    assert [to_hex(h.get_facecolor()) for h in class_legend_handles()] == list(CLASS_COLORS)
    assert class_color("snow") == class_color(CLASSES.index("snow")) == CLASS_COLORS[8]


# ---- log axes ----


def _drawn_labels(axis) -> list:
    """The tick labels an axis draws: inside the view, visible, with text."""
    lo, hi = sorted(axis.get_view_interval())
    labels = []
    for locs, ticks in (
        (axis.get_majorticklocs(), axis.get_major_ticks),
        (axis.get_minorticklocs(), axis.get_minor_ticks),
    ):
        for loc, tick in zip(locs, ticks(len(locs)), strict=True):
            label = tick.label1
            inside = lo * (1 - 1e-9) <= loc <= hi * (1 + 1e-9)
            if inside and label.get_visible() and label.get_text():
                labels.append(label)
    return labels


def _overlapping(fig: plt.Figure) -> list[str]:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    found = []
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            labels = _drawn_labels(axis)
            boxes = [label.get_window_extent(renderer) for label in labels]
            for i in range(len(boxes)):
                for j in range(i + 1, len(boxes)):
                    if boxes[i].overlaps(boxes[j]):
                        found.append(f"{labels[i].get_text()!r} / {labels[j].get_text()!r}")
    return found


def _log_labels(fig: plt.Figure) -> list[list[str]]:
    fig.canvas.draw()
    return [
        [label.get_text() for label in _drawn_labels(axis)]
        for ax in fig.axes
        for axis in (ax.xaxis, ax.yaxis)
        if axis.get_scale() == "log"
    ]


RANGES = [
    (0.8, 1.3),
    (0.9, 1.1),
    (0.25, 4.0),
    (0.15, 0.3),
    (0.003, 0.4),
    (1e-4, 1.0),
    (1.0, 1e4),
    (50.0, 20000.0),
    (1e-8, 1e3),
]


@pytest.mark.parametrize("width", [2.0, 4.0, 8.0])
@pytest.mark.parametrize("lo, hi", RANGES)
def test_log_axes_labels_do_not_overlap(lo: float, hi: float, width: float) -> None:
    fig, ax = plt.subplots(figsize=(width, width * 0.75))
    ax.plot([lo, hi], [lo, hi])
    log_scale(ax, "xy")
    ax.set(xlim=(lo, hi), ylim=(lo, hi), xlabel="x", ylabel="y")
    fig.tight_layout()
    assert not _overlapping(fig), (lo, hi, width)
    for labels in _log_labels(fig):
        assert len(labels) >= 2, (lo, hi, width, labels)  # enough to read the scale


def test_matplotlib_alone_overlaps_where_log_scale_does_not() -> None:
    """The check above finds the fault it guards against (minor labels on a short log axis)."""
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0.3, 3.0], [1, 2])
    ax.set(xscale="log", xlim=(0.3, 3.0))
    assert _overlapping(fig)


def test_the_package_log_figures_read(tmp_path: Path) -> None:
    """Learning curves over a narrow KL range, band histograms, class distribution."""
    for k in range(2):
        fold = tmp_path / f"folds/fold{k}"
        fold.mkdir(parents=True)
        epochs = np.arange(1, 6)
        kl = 0.3 / (1 + 0.1 * epochs) + 0.01 * k
        pd.DataFrame(
            {"epoch": epochs, "train_loss": 1 / epochs, "val_kl": kl, "val_kl_soft": kl * 0.9}
        ).to_csv(fold / "history.csv", index=False)
    rng = np.random.default_rng(0)
    figures = [
        viz.plot_learning_curves(tmp_path),
        eda.plot_band_histograms(
            {c: rng.lognormal(6, 1.0, size=(200, N_BANDS)) for c in range(N_CLASSES)}
        ),
        eda.plot_class_distribution(
            eda.class_distribution(rng.integers(1, 10_000, size=(20, N_CLASSES)))
        ),
    ]
    for fig in figures:
        assert not _overlapping(fig)
        assert all(len(labels) >= 2 for labels in _log_labels(fig))


def test_one_epoch_learning_curves_tick_whole_epochs(tmp_path: Path) -> None:
    fold = tmp_path / "folds/fold0"
    fold.mkdir(parents=True)
    pd.DataFrame({"epoch": [1], "train_loss": [3.0], "val_kl": [0.9], "val_kl_soft": [0.9]}).to_csv(
        fold / "history.csv", index=False
    )
    fig = viz.plot_learning_curves(tmp_path)
    fig.canvas.draw()
    for ax in fig.axes:
        assert [label.get_text() for label in _drawn_labels(ax.xaxis)] == ["1"]


# ---- config differences ----


def test_config_changes_lists_what_differs_from_the_base() -> None:
    base = {"seed": 0, "train": {"epochs": 30, "lr": 0.001}, "model": {"params": {}}, "x": None}
    config = {
        "seed": 0,
        "train": {"epochs": 2, "lr": 0.001},
        "model": {"params": {"drop": 0.1}},
        "x": "name",
        "profile": "demo",
    }
    table = eda.config_changes(config, base)
    assert list(table.index) == ["train.epochs", "model.params.drop", "x", "profile"]
    assert table.loc["train.epochs"].tolist() == [30, 2]
    assert table.loc["model.params.drop"].tolist() == [eda.ABSENT, 0.1]
    assert table.loc["x"].tolist() == [None, "name"]
    assert table.loc["profile", "base"] == eda.ABSENT
    assert eda.config_changes(base, base).empty


def test_config_changes_of_a_real_experiment() -> None:
    base = read_yaml(CONFIG_DIR / "base.yaml")
    config = load_config("unet_regnety_002", profile="demo", smoke=True)
    table = eda.config_changes(config, base)
    assert {"experiment", "train.epochs", "run.threads", "profile"} <= set(table.index)
    assert "data.n_folds" not in table.index and "seed" not in table.index
    assert table.loc["train.epochs", "experiment"] == 1
    assert len(table) < 30  # a short table, not the whole config
