"""``model.kind: pixel_gbm``: a per-pixel gradient-boosted member (LightGBM), a cheap model of a
very different family from the networks (settings in the config's ``gbm`` section).

Each pixel is described by its four log reflectances, three spectral indices and the local mean
of the log bands at two scales (``gbm_features.py``; ``gbm_stores.py`` keeps them, computed once
per dataset on every core); a multiclass LightGBM learns the mask class from pixels sampled in
the training folds (with ``gbm.radiometric_copies``, also from radiometrically changed copies of
their patches: robustness to new ground's radiometry; with ``train.dark_corrected``, every
training patch and copy first dark-level corrected onto the fold's bound, as the patches it
predicts are under ``predict.dark_level``), on every core when ``run.threads`` is 0. A patch's
proportions are the mean of the per-pixel class probabilities over a regular grid (every
``predict_stride``-th pixel), the soft proportions of the networks computed the same way; with
``predict.mode: hard``, the share of the grid's pixels whose most probable class it is (argmax
counts, as for the networks). With ``gbm.bags`` N > 1, a fold fits N boosters, bag k on the
pixels drawn at seed ``seed + k`` with the booster seed of that seed's fold (bag 0 is the single
model), and predicts the mean of their per-pixel probabilities (seed averaging inside the
member: bag k is the model a run at ``seed + k`` fits for the fold). Fitting is in
``gbm_fit.py``, prediction in ``gbm_predict.py``.
"""

from __future__ import annotations

from pathlib import Path

import lightgbm as lgb
import numpy as np

from ..errors import ConfigError
from ..shift import CHANGES
from .base import FitResult, FoldData, Member, register, require_dark_level
from .gbm_fit import bag_files, fit_fold
from .gbm_predict import GbmFoldModel


@register("pixel_gbm")
class PixelGbmMember(Member):
    @property
    def kept_files(self) -> tuple[str, ...]:  # type: ignore[override]
        """Each bag's model and classes."""
        return tuple(name for k in range(self.n_bags) for name in bag_files(k))

    @property
    def n_bags(self) -> int:
        return int(self.config["gbm"].get("bags", 1))

    @classmethod
    def validate(cls, config: dict) -> None:
        bags = config["gbm"].get("bags", 1)
        if not isinstance(bags, int) or isinstance(bags, bool) or bags < 1:
            raise ConfigError(f"'gbm.bags' must be a whole number of at least 1, got {bags!r}")
        kinds = config["gbm"]["radiometric_kinds"]
        if not kinds or any(k not in CHANGES for k in kinds):
            raise ConfigError(
                f"'gbm.radiometric_kinds' must be some of {list(CHANGES)}, got {kinds}"
            )
        require_dark_level(
            config,
            "train.dark_corrected",
            "pixels dark-level corrected as predicted ones are",
        )

    def fit_fold(self, fold: FoldData, work: Path, device, seed: int) -> FitResult:
        val, history = fit_fold(
            self.config,
            fold.train_images,
            fold.train_masks,
            fold.labels,
            fold.train_rows,
            fold.val_rows,
            work,
            seed,
        )
        return FitResult(history, val=val, extra={"best_round": history[0]["best_round"]})

    def load(self, fold_dir: Path, device=None) -> GbmFoldModel:
        bags = []
        for k in range(self.n_bags):
            model_file, classes_file = bag_files(k)
            booster = lgb.Booster(model_file=str(Path(fold_dir) / model_file))
            bags.append((booster, np.load(Path(fold_dir) / classes_file)))
        cfg = self.config
        hard = cfg["predict"]["mode"] == "hard"
        return GbmFoldModel(bags, cfg["gbm"], cfg["run"]["threads"], hard)
