"""``model.kind: pixel_gbm``: a per-pixel gradient-boosted member (LightGBM), a cheap model of a
very different family from the networks (settings in the config's ``gbm`` section).

Each pixel is described by its four log reflectances, three spectral indices and the local mean
of the log bands at two scales (``gbm_features.py``, computed once per dataset on every core); a
multiclass LightGBM learns the mask class from pixels sampled in the training folds (with
``gbm.shifted_copies``, also from radiometrically changed copies of their patches: robustness to
new ground's radiometry; with ``gbm.corrected_training``, every training patch and copy first
dark-level corrected onto the fold's bound, as the patches it predicts are under
``predict.dark_level``), on every core when ``run.threads`` is 0. A patch's proportions are
the mean of the per-pixel class probabilities over a regular grid (every ``predict_stride``-th
pixel), the soft proportions of the networks computed the same way; with ``predict.mode:
hard``, the share of the grid's pixels whose most probable class it is (argmax counts, as for
the networks).
"""

from __future__ import annotations

import time
from pathlib import Path

import lightgbm as lgb
import numpy as np

from ..align import dark_bound
from ..constants import N_CLASSES
from ..errors import ConfigError
from ..metric import kl_divergence
from ..shift import CHANGES
from .base import FitResult, FoldData, FoldModel, Member, register, require_dark_level
from .gbm_features import (
    BASIC,
    FeatureSpec,
    cores,
    pixel_features,
    strided_features,
    training_samples,
)


def predict_proportions(
    booster: lgb.Booster,
    classes: np.ndarray,
    images: np.ndarray,
    rows: np.ndarray,
    stride: int,
    chunk: int = 64,
    num_iteration: int | None = None,
    threads: int = 0,
    spec: FeatureSpec = BASIC,
    hard: bool = False,
) -> np.ndarray:
    """(len(rows), 10) mean per-pixel probabilities (``hard``: argmax counts) on a grid of
    every ``stride``-th pixel, from the first ``num_iteration`` rounds (all by default), on
    ``threads`` cores (0: all)."""
    threads = threads or cores()
    store = strided_features(images, stride, threads, spec)
    out = np.zeros((len(rows), N_CLASSES))
    for start in range(0, len(rows), chunk):
        wanted = rows[start : start + chunk]
        ordered = np.sort(wanted)  # sorted reads are faster on a memmap
        if store is not None:
            feats = np.asarray(store[ordered])
        else:
            feats = pixel_features(images[ordered], stride, spec)
        n, h, w, f = feats.shape
        flat = feats.reshape(-1, f)
        probs = booster.predict(flat, num_iteration=num_iteration, num_threads=threads)
        if hard:
            probs = np.eye(probs.shape[1])[probs.argmax(axis=1)]
        probs = probs.reshape(n, h * w, -1).mean(axis=1)
        order = np.searchsorted(ordered, wanted)
        out[start : start + len(wanted), classes] = probs[order]
    return out


def patch_share(n_patches: int, per_image: int, cap: int) -> int:
    """Training pixels a fold takes from each of its ``n_patches`` patches: all ``per_image``
    sampled ones, or fewer when that would pass ``cap`` pixels in all (0: no cap). The samples
    are random draws, so the first ``k`` of each patch are a random subset of them."""
    if cap <= 0 or n_patches * per_image <= cap:
        return per_image
    return max(1, cap // n_patches)


def fold_pixels(
    config: dict,
    images: np.ndarray,
    masks: np.ndarray,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    threads: int,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(features, classes) of the pixels a fold fits on, and of those its validation curve
    scores (every 4th drawn pixel of each validation patch, as it is), one row a pixel."""
    gcfg = config["gbm"]
    spec = FeatureSpec.from_config(gcfg)
    per_image, copies = gcfg["pixels_per_image"], int(gcfg.get("shifted_copies") or 0)
    kinds = tuple(gcfg["shifted_kinds"])
    # trained as predicted: the fold's bound, as predict_fold computes it (align.FoldRadiometry)
    bound = dark_bound(images, train_rows) if gcfg.get("corrected_training") else None
    x_all, y_all = training_samples(
        images, masks, per_image, config["seed"], threads, spec, copies, kinds, bound
    )
    per_patch = patch_share(len(train_rows), per_image * (copies + 1), gcfg["max_train_pixels"])
    x_train, y_train = (np.asarray(a[np.sort(train_rows), :per_patch]) for a in (x_all, y_all))
    x_val, y_val = (np.asarray(a[np.sort(val_rows), :per_image:4]) for a in (x_all, y_all))
    n_features = x_all.shape[-1]
    return (x_train.reshape(-1, n_features), y_train.reshape(-1)), (
        x_val.reshape(-1, n_features),
        y_val.reshape(-1),
    )


def booster_params(gcfg: dict, n_classes: int, seed: int, threads: int) -> dict:
    """LightGBM's settings from the config's ``gbm`` section (keys an older experiment's config
    lacks at the value LightGBM was given before they existed)."""
    return {
        "objective": "multiclass",
        "num_class": n_classes,
        "learning_rate": gcfg["learning_rate"],
        "num_leaves": gcfg["num_leaves"],
        "min_data_in_leaf": gcfg.get("min_data_in_leaf", 50),
        "feature_fraction": gcfg.get("feature_fraction", 0.8),
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": gcfg.get("lambda_l2", 1.0),
        "seed": seed,
        "deterministic": True,
        "num_threads": threads,
        "verbose": -1,
    }


def fit_fold(
    config: dict,
    images: np.ndarray,
    masks: np.ndarray,
    labels: np.ndarray,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    work: Path,
    seed: int,
) -> tuple[np.ndarray, list[dict]]:
    """Train a fixed number of rounds on pixels of the training rows.

    The multiclass log loss on pixels of the validation rows is recorded for every round (its
    best round goes in the history, for ``benchmarks/checkpoint_choice.py``) but chooses
    nothing: early stopping on the rows the OOF scores would flatter it. Saves ``model.txt``
    and ``classes.npy`` (the class of each output) in ``work``; returns the validation rows'
    proportions and a one-row history.
    """
    gcfg = config["gbm"]
    threads = config["run"]["threads"] or cores()
    started = time.perf_counter()
    spec = FeatureSpec.from_config(gcfg)
    (x_train, y_train), (x_val, y_val) = fold_pixels(
        config, images, masks, train_rows, val_rows, threads
    )
    classes = np.unique(y_train)  # sorted: searchsorted maps a label to its output index
    keep = np.isin(y_val, classes)  # a class absent from training cannot be scored
    params = booster_params(gcfg, len(classes), seed, threads)
    names = list(spec.names)
    train_set = lgb.Dataset(x_train, np.searchsorted(classes, y_train), feature_name=names)
    val_set = lgb.Dataset(x_val[keep], np.searchsorted(classes, y_val[keep]), reference=train_set)
    curve: dict = {}
    booster = lgb.train(
        params,
        train_set,
        num_boost_round=gcfg["n_estimators"],
        valid_sets=[val_set],
        callbacks=[lgb.record_evaluation(curve)],
    )
    val_loss = curve["valid_0"]["multi_logloss"]
    work.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(work / "model.txt"))
    np.save(work / "classes.npy", classes)
    val = predict_proportions(
        booster,
        classes,
        images,
        val_rows,
        gcfg["predict_stride"],
        threads=threads,
        spec=spec,
        hard=config["predict"]["mode"] == "hard",
    )
    val_kl = kl_divergence(labels[val_rows], val)
    history = [
        {
            "epoch": 1,
            "lr": gcfg["learning_rate"],
            "train_loss": float(val_loss[-1]),
            "best_round": int(np.argmin(val_loss)) + 1,
            "val_kl": val_kl,
            "val_kl_soft": val_kl,
            "seconds": round(time.perf_counter() - started, 2),
        }
    ]
    return val, history


class GbmFoldModel(FoldModel):
    def __init__(
        self,
        booster: lgb.Booster,
        classes: np.ndarray,
        gcfg: dict,
        threads: int = 0,
        hard: bool = False,
    ):
        self.booster, self.classes, self.threads, self.hard = booster, classes, threads, hard
        self.stride, self.spec = gcfg["predict_stride"], FeatureSpec.from_config(gcfg)

    def predict_proportions(
        self,
        images: np.ndarray,
        rows: np.ndarray,
        *,
        desc: str | None = None,
        num_iteration: int | None = None,
    ) -> np.ndarray:
        """Proportions (soft, or argmax counts if ``hard``) from all rounds, or the first
        ``num_iteration``."""
        return predict_proportions(
            self.booster,
            self.classes,
            images,
            rows,
            self.stride,
            num_iteration=num_iteration,
            threads=self.threads,
            spec=self.spec,
            hard=self.hard,
        )

    def predict_probabilities(self, images: np.ndarray) -> np.ndarray:
        """(n, 10, H, W) per-pixel probabilities at full resolution."""
        feats = pixel_features(images, 1, self.spec)
        n, h, w, f = feats.shape
        probs = np.zeros((n * h * w, N_CLASSES), dtype=np.float32)
        probs[:, self.classes] = self.booster.predict(
            feats.reshape(-1, f), num_threads=self.threads or cores()
        )
        return probs.reshape(n, h, w, N_CLASSES).transpose(0, 3, 1, 2)

    def predict_masks(self, images: np.ndarray) -> np.ndarray:
        """(n, H, W) uint8 argmax masks at full resolution."""
        return self.predict_probabilities(images).argmax(axis=1).astype(np.uint8)


@register("pixel_gbm")
class PixelGbmMember(Member):
    kept_files = ("model.txt", "classes.npy")

    @classmethod
    def validate(cls, config: dict) -> None:
        kinds = config["gbm"]["shifted_kinds"]
        if not kinds or any(k not in CHANGES for k in kinds):
            raise ConfigError(f"'gbm.shifted_kinds' must be some of {list(CHANGES)}, got {kinds}")
        require_dark_level(
            config,
            "gbm.corrected_training",
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
        booster = lgb.Booster(model_file=str(Path(fold_dir) / "model.txt"))
        classes = np.load(Path(fold_dir) / "classes.npy")
        cfg = self.config
        hard = cfg["predict"]["mode"] == "hard"
        return GbmFoldModel(booster, classes, cfg["gbm"], cfg["run"]["threads"], hard)
