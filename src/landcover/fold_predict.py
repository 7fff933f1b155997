"""How a trained fold model predicts its validation rows and the test set: shared out between
the ranks of a distributed job; under ``predict.dark_level`` each patch's dark level first
brought within the fold's training patches' (``radiometry.FoldRadiometry``)."""

from __future__ import annotations

import numpy as np

from . import distributed
from .cache import PreparedData
from .fold_plan import FoldPlan
from .radiometry import FoldRadiometry


def fold_radiometry(config: dict, data: PreparedData, plan: FoldPlan, fold: int) -> FoldRadiometry:
    """How fold ``fold`` prepares the patches it predicts (``predict.dark_level``), from its
    training rows."""
    rows = plan.train_rows(fold)
    return FoldRadiometry.of_fold(data.train_images, rows, config["predict"]["dark_level"])


def predict_fold(
    model,
    config: dict,
    data: PreparedData,
    plan: FoldPlan,
    fold: int,
    val: np.ndarray | None = None,
    shared: bool = True,
) -> tuple[np.ndarray, np.ndarray, dict]:
    """(validation, test) proportions of fold model ``fold`` and what its ``done.json``
    records of them; ``val``: the validation predictions training made, if any (kept unless
    the fold corrects its inputs, which training did not); ``shared``: every rank of a
    distributed job takes part (else this process predicts every row)."""
    val_images, val_rows = data.train_images, plan.val_rows(fold)
    test_images, test_rows = data.test_images, np.arange(len(data.test_ids))
    record = {}
    radiometry = fold_radiometry(config, data, plan, fold)
    if radiometry.changes:
        val_images = radiometry.prepared(val_images, val_rows)
        test_images = radiometry.prepared(test_images, test_rows)
        val, val_rows, test_rows = None, np.arange(len(val_rows)), np.arange(len(test_rows))
        record.update(radiometry.record())
    if val is None:
        val = _predict(model, val_images, val_rows, "val", shared)
    return val, _predict(model, test_images, test_rows, "test", shared), record


def _predict(model, images: np.ndarray, rows: np.ndarray, desc: str, shared: bool) -> np.ndarray:
    """Predictions of ``rows``, shared out between the ranks of a distributed job."""
    if not shared:
        return model.predict_proportions(images, rows, desc=desc)
    mine = model.predict_proportions(images, distributed.my_rows(rows), desc=desc)
    return distributed.gather_rows(mine, len(rows))
