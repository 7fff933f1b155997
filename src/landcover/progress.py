"""Progress a person can follow in the terminal, kept out of executed notebooks.

Inside a papermill kernel ``sys.stderr`` is the notebook's output, so step bars written there
end up stored as hundreds of lines; the kernel process's own stderr (``sys.__stderr__``) is the
terminal that runs ``run_all.sh``. Step bars go there and only on a terminal (tqdm disables them
on a pipe or file); one line per epoch and per fold goes there always, so a log shows where a
run is: fold, epoch, loss, validation KL, elapsed time and what is left.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import TextIO

from tqdm import tqdm

from . import distributed


def terminal() -> TextIO:
    """The process's own stderr (the terminal, even inside a notebook kernel)."""
    return sys.__stderr__ or sys.stderr


def bar(
    iterable: Iterable | None = None,
    *,
    desc: str | None,
    total: int | None = None,
    unit: str = "it",
):
    """A step bar on the terminal, shown only when it is one (and when ``desc`` is given)."""
    return tqdm(
        iterable,
        total=total,
        desc=desc,
        unit=unit,
        leave=False,
        file=terminal(),
        disable=None if desc is not None else True,
    )


def duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class Reporter:
    """One experiment's progress lines: ``epoch`` after each epoch, ``fold`` after each fold."""

    def __init__(self, name: str, folds: list[int], n_folds: int, epochs: int) -> None:
        self.name, self.folds, self.n_folds, self.epochs = name, folds, n_folds, epochs
        self.started = time.perf_counter()
        self.done_folds = 0
        self.fold_started = self.started

    def _write(self, text: str) -> None:
        if not distributed.is_writer():  # one line per epoch, not one per process
            return
        stream = terminal()
        stream.write(text + "\n")
        stream.flush()

    def start_fold(self, fold: int) -> None:
        self.fold_started = time.perf_counter()
        self.current = fold

    def epoch(self, row: dict) -> None:
        """After an epoch of fold ``current``: ``row`` is its history row."""
        now = time.perf_counter()
        per_epoch = (now - self.fold_started) / max(1, row["epoch"] - self._resumed_from(row))
        left_fold = per_epoch * (self.epochs - row["epoch"])
        left = left_fold + per_epoch * self.epochs * (len(self.folds) - self.done_folds - 1)
        name, score = next((k, v) for k, v in row.items() if k.startswith("val_"))  # the metric
        self._write(
            f"{self.name} | fold {self.current + 1}/{self.n_folds} | epoch "
            f"{row['epoch']}/{self.epochs} | loss {row['train_loss']:.4f} | {name} "
            f"{score:.5f} | {row['seconds']:.0f}s/epoch | elapsed "
            f"{duration(now - self.started)} | left ~{duration(left)}"
        )

    def _resumed_from(self, row: dict) -> int:
        """Epochs already done when this fold (re)started: the first row this run saw - 1."""
        if not hasattr(self, "_first") or self._first[0] != self.current:
            self._first = (self.current, row["epoch"] - 1)
        return self._first[1]

    def fold(self, summary: dict) -> str:
        """After a fold: the line (also returned, for the notebook)."""
        self.done_folds += 1
        line = (
            f"{self.name} fold {summary['fold']}: val KL {summary['kl']:.5f} (best epoch "
            f"{summary['best_epoch']} of {summary['epochs_run']}, "
            f"{summary['train_seconds']} s training) | elapsed "
            f"{duration(time.perf_counter() - self.started)}"
        )
        if sys.stderr is not terminal():  # in a notebook: the terminal gets it too
            self._write(line)
        return line
