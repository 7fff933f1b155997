"""The class palette in figures: ``constants.CLASS_COLORS`` (the class map GeoTIFF's palette
too), with the colours too light to see on white (clouds, snow, cultivated: ``is_light``)
given a dark edge or outline wherever a class colour is used: bars, lines, points and legend
entries."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib import patheffects
from matplotlib.colors import BoundaryNorm, ListedColormap, to_rgb
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .constants import CLASS_COLORS, CLASSES, N_CLASSES, SCORED_CLASSES

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
