"""Fitting the LightGBM member on a fold: the training pixels it draws (a cap on how many, and
the validation curve's), LightGBM's settings from the config, and one booster a bag, each
saved in the fold's folder (``bag_files``)."""

from __future__ import annotations

import time
from pathlib import Path

import lightgbm as lgb
import numpy as np

from ..metric import kl_divergence
from ..radiometry import dark_bound
from .gbm_features import FeatureSpec
from .gbm_predict import predict_proportions
from .gbm_stores import cores, training_samples


def bag_files(k: int) -> tuple[str, str]:
    """The files bag ``k`` of a fold is saved in (bag 0: those of a single model)."""
    suffix = f"-bag{k}" if k else ""
    return f"model{suffix}.txt", f"classes{suffix}.npy"


def bag_seeds(config: dict, seed: int, k: int) -> tuple[int, int]:
    """Bag ``k``'s pixel-draw seed and LightGBM seed, for the fold whose seed is ``seed``
    (``experiment.fold_seed``: the config's seed x 1000 + the fold): those of a run at the
    config's seed + k, so bag 0 is the single model."""
    return config["seed"] + k, seed + 1000 * k


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
