"""``model.kind: pixel_gbm``: a per-pixel gradient-boosted member (LightGBM), a cheap model of a
very different family from the networks (settings in the config's ``gbm`` section).

Each pixel is described by its four log reflectances, three spectral indices and the local mean
of the log bands at two scales (``gbm_features.py``, computed once per dataset on every core); a
multiclass LightGBM learns the mask class from pixels sampled in the training folds (with
``gbm.radiometric_copies``, also from radiometrically changed copies of their patches: robustness
to new ground's radiometry; with ``train.dark_corrected``, every training patch and copy first
dark-level corrected onto the fold's bound, as the patches it predicts are under
``predict.dark_level``), on every core when ``run.threads`` is 0. A patch's proportions are
the mean of the per-pixel class probabilities over a regular grid (every ``predict_stride``-th
pixel), the soft proportions of the networks computed the same way; with ``predict.mode:
hard``, the share of the grid's pixels whose most probable class it is (argmax counts, as for
the networks). With ``gbm.bags`` N > 1, a fold fits N boosters, bag k on the pixels drawn at
seed ``seed + k`` with the booster seed of that seed's fold (bag 0 is the single model), and
predicts the mean of their per-pixel probabilities (seed averaging inside the member: bag k is
the model a run at ``seed + k`` fits for the fold).
"""

from __future__ import annotations

import time
from pathlib import Path

import lightgbm as lgb
import numpy as np

from ..constants import N_CLASSES
from ..errors import ConfigError
from ..metric import kl_divergence
from ..radiometry import dark_bound
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

Bag = tuple[lgb.Booster, np.ndarray]  # a booster and the class of each of its outputs


def bag_files(k: int) -> tuple[str, str]:
    """The files bag ``k`` of a fold is saved in (bag 0: those of a single model)."""
    suffix = f"-bag{k}" if k else ""
    return f"model{suffix}.txt", f"classes{suffix}.npy"


def bag_seeds(config: dict, seed: int, k: int) -> tuple[int, int]:
    """Bag ``k``'s pixel-draw seed and LightGBM seed, for the fold whose seed is ``seed``
    (``experiment.fold_seed``: the config's seed x 1000 + the fold): those of a run at the
    config's seed + k, so bag 0 is the single model."""
    return config["seed"] + k, seed + 1000 * k


def pixel_probabilities(
    bags: list[Bag], flat: np.ndarray, num_iteration: int | None, threads: int
) -> np.ndarray:
    """(pixels, 10) per-pixel class probabilities, the mean over ``bags``."""
    probs = np.zeros((len(flat), N_CLASSES))
    for booster, classes in bags:
        probs[:, classes] += booster.predict(flat, num_iteration=num_iteration, num_threads=threads)
    return probs / len(bags)


def predict_proportions(
    bags: list[Bag],
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
    every ``stride``-th pixel, from the first ``num_iteration`` rounds (all by default) of
    every bag (their per-pixel probabilities averaged), on ``threads`` cores (0: all)."""
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
        probs = pixel_probabilities(bags, flat, num_iteration, threads)
        if hard:
            probs = np.eye(N_CLASSES)[probs.argmax(axis=1)]
        probs = probs.reshape(n, h * w, -1).mean(axis=1)
        order = np.searchsorted(ordered, wanted)
        out[start : start + len(wanted)] = probs[order]
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
    seed: int | None = None,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """(features, classes) of the pixels a fold fits on, and of those its validation curve
    scores (every 4th drawn pixel of each validation patch, as it is), one row a pixel; drawn
    at ``seed`` (the config's by default)."""
    gcfg = config["gbm"]
    spec = FeatureSpec.from_config(gcfg)
    per_image, copies = gcfg["pixels_per_image"], gcfg["radiometric_copies"]
    kinds = tuple(gcfg["radiometric_kinds"])
    # trained as predicted: the fold's bound, as predict_fold computes it (align.FoldRadiometry)
    bound = dark_bound(images, train_rows) if config["train"]["dark_corrected"] else None
    x_all, y_all = training_samples(
        images,
        masks,
        per_image,
        config["seed"] if seed is None else seed,
        threads,
        spec,
        copies,
        kinds,
        bound,
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


def fit_bag(
    config: dict,
    images: np.ndarray,
    masks: np.ndarray,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    sample_seed: int,
    seed: int,
    threads: int,
) -> tuple[lgb.Booster, np.ndarray, list[float]]:
    """One booster: fitted on the pixels drawn at ``sample_seed``, with LightGBM's ``seed``;
    with the class of each output and its validation curve (multiclass log loss a round)."""
    gcfg = config["gbm"]
    (x_train, y_train), (x_val, y_val) = fold_pixels(
        config, images, masks, train_rows, val_rows, threads, sample_seed
    )
    classes = np.unique(y_train)  # sorted: searchsorted maps a label to its output index
    keep = np.isin(y_val, classes)  # a class absent from training cannot be scored
    params = booster_params(gcfg, len(classes), seed, threads)
    names = list(FeatureSpec.from_config(gcfg).names)
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
    return booster, classes, curve["valid_0"]["multi_logloss"]


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
    """Train a fixed number of rounds on pixels of the training rows, once a bag.

    The multiclass log loss on pixels of the validation rows is recorded for every round (the
    bags' mean; its best round goes in the history) but chooses nothing: early stopping on the
    rows the OOF scores would flatter it. Bag k (``gbm.bags``) draws its pixels at the config's
    seed + k and seeds LightGBM with ``seed`` + 1000 k (``experiment.fold_seed`` at the config's
    seed + k), and is saved in ``work`` as ``bag_files(k)``: its model and the class of each
    output. Returns the validation rows' proportions and a one-row history.
    """
    gcfg = config["gbm"]
    threads = config["run"]["threads"] or cores()
    started = time.perf_counter()
    bags, curves = [], []
    work.mkdir(parents=True, exist_ok=True)
    for k in range(int(gcfg.get("bags", 1))):
        booster, classes, curve = fit_bag(
            config,
            images,
            masks,
            train_rows,
            val_rows,
            *bag_seeds(config, seed, k),
            threads,
        )
        model_file, classes_file = bag_files(k)
        booster.save_model(str(work / model_file))
        np.save(work / classes_file, classes)
        bags.append((booster, classes))
        curves.append(curve)
    val = predict_proportions(
        bags,
        images,
        val_rows,
        gcfg["predict_stride"],
        threads=threads,
        spec=FeatureSpec.from_config(gcfg),
        hard=config["predict"]["mode"] == "hard",
    )
    val_kl = kl_divergence(labels[val_rows], val)
    val_loss = np.mean(curves, axis=0)
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
    def __init__(self, bags: list[Bag], gcfg: dict, threads: int = 0, hard: bool = False):
        self.bags, self.threads, self.hard = bags, threads, hard
        self.stride, self.spec = gcfg["predict_stride"], FeatureSpec.from_config(gcfg)

    @property
    def rounds(self) -> int:
        """Boosting rounds of each bag."""
        return self.bags[0][0].current_iteration()

    def predict_proportions(
        self,
        images: np.ndarray,
        rows: np.ndarray,
        *,
        desc: str | None = None,
        num_iteration: int | None = None,
    ) -> np.ndarray:
        """Proportions (soft, or argmax counts if ``hard``) from all rounds, or the first
        ``num_iteration``, of every bag."""
        return predict_proportions(
            self.bags,
            images,
            rows,
            self.stride,
            num_iteration=num_iteration,
            threads=self.threads,
            spec=self.spec,
            hard=self.hard,
        )

    def predict_probabilities(self, images: np.ndarray) -> np.ndarray:
        """(n, 10, H, W) per-pixel probabilities at full resolution (the bags' mean)."""
        feats = pixel_features(images, 1, self.spec)
        n, h, w, f = feats.shape
        flat = feats.reshape(-1, f)
        probs = pixel_probabilities(self.bags, flat, None, self.threads or cores())
        return probs.astype(np.float32).reshape(n, h, w, N_CLASSES).transpose(0, 3, 1, 2)

    def predict_masks(self, images: np.ndarray) -> np.ndarray:
        """(n, H, W) uint8 argmax masks at full resolution."""
        return self.predict_probabilities(images).argmax(axis=1).astype(np.uint8)


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
