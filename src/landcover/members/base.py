"""The member interface: everything the fold loop, the notebooks and prediction need from a kind
of model, so none of them asks which kind it holds.

A kind is one module with a ``Member`` subclass registered under its ``model.kind`` name::

    @register("my_kind")
    class MyMember(Member):
        def fit_fold(self, fold: FoldData, work: Path, device, seed: int) -> FitResult: ...
        def load(self, fold_dir: Path, device) -> FoldModel: ...

``fit_fold`` trains on ``fold.train_rows`` and saves whatever ``load`` needs under ``work``
(the fold's directory); the experiment keeps every file ``kept_files`` names.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch

from ..errors import ConfigError


@dataclass(frozen=True)
class FoldData:
    """One fold's data: the cached arrays and the rows the fold plan gives it."""

    train_images: np.ndarray  # (n, 4, H, W) uint16, memory-mapped
    train_masks: np.ndarray  # (n, H, W) uint8
    labels: np.ndarray  # (n, 10) proportions
    train_rows: np.ndarray
    val_rows: np.ndarray
    desc: str = ""  # for progress bars, e.g. "fold 2"
    on_epoch: Callable[[dict], None] | None = None  # called with each epoch's history row


@dataclass
class FitResult:
    """``history``: one row per epoch (or one row): epoch, lr, train_loss, the validation
    columns (``val_*``, the member's metric first), seconds. ``extra`` is recorded in the
    fold's ``done.json``; ``best_epoch`` there is the epoch the weights come from (the last
    row's when a member does not say)."""

    history: list[dict]
    val: np.ndarray | None = None  # (len(val_rows), 10) if training already predicted them
    extra: dict = field(default_factory=dict)


class FoldModel(ABC):
    """One trained fold model."""

    @abstractmethod
    def predict_proportions(
        self, images: np.ndarray, rows: np.ndarray, *, desc: str | None = None
    ) -> np.ndarray:
        """(len(rows), 10) class proportions of ``images[rows]``, rows summing to 1."""

    def predict_masks(self, images: np.ndarray) -> np.ndarray | None:
        """(n, H, W) uint8 class masks of (n, 4, H, W) images; None if the kind has no pixels."""
        return None

    def predict_probabilities(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities of (n, 4, H, W) images: (n, 10, H, W) per pixel, or (n, 10) per
        image (the default: a kind without pixels contributes one vector per image)."""
        return self.predict_proportions(images, np.arange(len(images)))


class SeedAverage(FoldModel):
    """One fold of an experiment run at several seeds: its models' predictions averaged (what
    the blend averaged: ``blend_inputs.averaged``)."""

    def __init__(self, models: list[FoldModel]) -> None:
        self.models = models

    def predict_proportions(
        self, images: np.ndarray, rows: np.ndarray, *, desc: str | None = None
    ) -> np.ndarray:
        return np.mean([m.predict_proportions(images, rows, desc=desc) for m in self.models], 0)

    def predict_probabilities(self, images: np.ndarray) -> np.ndarray:
        return np.mean([m.predict_probabilities(images) for m in self.models], axis=0)

    def predict_masks(self, images: np.ndarray) -> np.ndarray | None:
        probs = self.predict_probabilities(images)
        return None if np.ndim(probs) != 4 else probs.argmax(axis=1).astype(np.uint8)


class Member(ABC):
    """A kind of model, configured by an experiment's resolved config."""

    kind: ClassVar[str] = ""
    predicts_masks: ClassVar[bool] = True  # False: image-level, no per-pixel output
    is_network: ClassVar[bool] = False  # a torch network (benchmarks time these)
    kept_files: ClassVar[tuple[str, ...]] = ()  # from the fold's work dir into the experiment

    def __init__(self, config: dict) -> None:
        self.config = config

    @classmethod
    def validate(cls, config: dict) -> None:
        """Config checks specific to the kind (raise ConfigError)."""
        return None

    def check(self) -> None:
        """Fail early, before any data work, on a model that cannot be built."""
        return None

    @abstractmethod
    def fit_fold(
        self, fold: FoldData, work: Path, device: torch.device, seed: int
    ) -> FitResult: ...

    @abstractmethod
    def load(self, fold_dir: Path, device: torch.device) -> FoldModel: ...


REGISTRY: dict[str, type[Member]] = {}


def require_dark_level(config: dict, key: str, trains_on: str) -> None:
    """A training switch ``key`` ("section.name") that trains on ``trains_on`` (inputs corrected
    as ``predict.dark_level`` corrects predicted patches) needs that setting: one line if not."""
    section, name = key.split(".")
    if config[section].get(name) and not config["predict"]["dark_level"]:
        raise ConfigError(f"'{key}' trains on {trains_on}: it needs 'predict.dark_level: true'")


def register(kind: str):
    """Class decorator: make ``cls`` the member for ``model.kind: <kind>``."""

    def add(cls: type[Member]) -> type[Member]:
        if kind in REGISTRY and REGISTRY[kind] is not cls:
            raise ValueError(f"model.kind {kind!r} is registered twice")
        cls.kind = kind
        REGISTRY[kind] = cls
        return cls

    return add


def member_class(kind: str) -> type[Member]:
    if kind not in REGISTRY:
        raise ConfigError(f"'model.kind' must be one of {sorted(REGISTRY)}, got {kind!r}")
    return REGISTRY[kind]


def member_for(config: dict) -> Member:
    """The member for a resolved config (its ``model.kind``)."""
    return member_class(config["model"]["kind"])(config)
