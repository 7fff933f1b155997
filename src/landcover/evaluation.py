"""What the trainer asks of a kind of network, so it never knows the metric nor the files a
kind keeps (``trainer.fit`` takes both from the member):

- an ``Evaluator`` scores the model on the validation rows after each epoch and says whether
  a score is better; it alone decides ``best.pt`` (``train.select: best``), early stopping and
  the best epoch;
- ``Callback`` objects say what to save beside the weights and hear about every epoch.

A kind with another metric is a new ``Evaluator`` subclass returned by its member.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

import torch


class Evaluator(ABC):
    """Scores a model on one fold's validation rows (which it holds, prepared as it likes)."""

    metric: ClassVar[str]  # the history column that selects, e.g. "val_kl"
    lower_is_better: ClassVar[bool] = True

    def prepare(self, data_on_device: bool) -> None:
        """Called once before the first epoch: ``data_on_device`` says the training patches sit
        on the device, so the validation patches may too (no host work per epoch)."""
        return None

    @abstractmethod
    def score(self, model: torch.nn.Module) -> dict[str, float]:
        """The epoch's validation columns (``val_*``), ``metric`` first. Under torchrun every
        rank calls it and gets the same scores."""

    def better(self, score: float, than: float) -> bool:
        """Strictly better (a NaN score never is)."""
        return score < than if self.lower_is_better else score > than

    @property
    def worst(self) -> float:
        """The best score before any epoch: any real score improves on it."""
        return math.inf if self.lower_is_better else -math.inf

    def best_score(self, history: list[dict]) -> float:
        best = self.worst
        for row in history:
            if self.better(row[self.metric], best):
                best = row[self.metric]
        return best

    def best_row(self, history: list[dict]) -> dict:
        """The first row with the best score (the epoch ``best.pt`` holds); the first row if
        none improves on ``worst``."""
        best = self.best_score(history)
        return next((row for row in history if row[self.metric] == best), history[0])

    def stale_epochs(self, history: list[dict]) -> int:
        """Epochs since the best score (``train.early_stopping`` counts these)."""
        best = self.best_score(history)
        for back, row in enumerate(reversed(history)):
            if row[self.metric] == best:
                return back
        return len(history)


class Callback:
    """Hooks the trainer calls; each optional."""

    def files_to_save(self) -> dict[str, Any]:
        """JSON files (name: content) written beside the weights when training starts, by
        the writing rank."""
        return {}

    def on_epoch_end(self, row: dict) -> None:
        """After each epoch is saved (``last.pt``, ``history.csv``), on every rank, with its
        history row."""
        return None


class SaveJson(Callback):
    """Keeps ``content`` in ``name`` beside the fold's weights."""

    def __init__(self, name: str, content: Any) -> None:
        self.name, self.content = name, content

    def files_to_save(self) -> dict[str, Any]:
        return {self.name: self.content}


class EpochHook(Callback):
    """Calls ``hook`` with each epoch's history row (progress lines, fault injection)."""

    def __init__(self, hook: Callable[[dict], None]) -> None:
        self.hook = hook

    def on_epoch_end(self, row: dict) -> None:
        self.hook(row)
