"""A trained experiment's fold models, loaded from ``<oof_dir>/<exp>/folds/fold<k>/``, and what
they predict for anything that needs it beyond the fold loop: the notebooks' mask figures."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import yaml

from .members import member_for
from .runtime import resolve_device


def experiment_config(exp_dir: str | os.PathLike[str]) -> dict:
    return yaml.safe_load((Path(exp_dir) / "config.yaml").read_text())


def load_fold(exp_dir: str | os.PathLike[str], fold: int, device: str = "cpu"):
    """The ``members.FoldModel`` of fold ``fold`` of a complete experiment."""
    config = experiment_config(exp_dir)
    fold_dir = Path(exp_dir) / "folds" / f"fold{fold}"
    return member_for(config).load(fold_dir, resolve_device(device))


def predict_oof_masks(
    exp_dir: str | os.PathLike[str], images: np.ndarray, folds: np.ndarray, *, device: str = "auto"
) -> np.ndarray | None:
    """Masks of ``images`` (n, 4, H, W), each predicted by the model of its own ``folds`` entry,
    i.e. the model that did not train on it; None for a member that predicts no masks."""
    if not member_for(experiment_config(exp_dir)).predicts_masks:
        return None
    folds = np.asarray(folds)
    masks = np.zeros((len(images), *images.shape[-2:]), dtype=np.uint8)
    for fold in np.unique(folds):
        rows = np.flatnonzero(folds == fold)
        model = load_fold(exp_dir, int(fold), device)
        masks[rows] = model.predict_masks(np.asarray(images[rows]))
    return masks
