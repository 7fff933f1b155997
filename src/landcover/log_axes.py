"""Log axes whose labels can be read: plain numbers (``%g``), as many as fit without touching
(``log_scale``)."""

from __future__ import annotations

import math

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axis import Axis
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter


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
