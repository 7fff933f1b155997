"""The one fold loop: train every fold of an experiment, assemble OOF and test predictions.

Work in progress lives in ``<oof_dir>/.work/<exp>/`` (per-fold checkpoints, histories,
predictions), so an interrupted run resumes where it stopped. When every fold is done the
experiment is written to ``<oof_dir>/<exp>/`` atomically; an experiment already complete for
the same data and config is skipped unless forced.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import yaml

from .artifacts import is_complete, write_experiment
from .atomic import write_json
from .cache import PreparedData
from .config import config_differences, config_hash
from .dataset import Normalizer, fit_normalizer
from .folds import ensure_folds
from .metric import kl_divergence
from .models import check_model
from .provenance import provenance
from .tables import Proportions
from .trainer import fit, load_model, predict_proportions, resolve_device, write_history


def experiment_state(oof_dir: Path, config: dict, data: PreparedData) -> str:
    """'complete' (same data and config), 'stale' (complete but different) or 'absent'."""
    exp_dir = Path(oof_dir) / config["experiment"]
    if not is_complete(exp_dir):
        return "absent"
    meta = json.loads((exp_dir / "meta.json").read_text())
    trained = yaml.safe_load((exp_dir / "config.yaml").read_text()) or {}
    same = meta.get("data_fingerprint") == data.fingerprint
    return "complete" if same and not config_differences(trained, config) else "stale"


def _work_dir(oof_dir: Path, config: dict, data: PreparedData) -> Path:
    """A work directory for this exact data and config; work for anything else is discarded."""
    work = Path(oof_dir) / ".work" / config["experiment"]
    key = {"data_fingerprint": data.fingerprint, "config_hash": config_hash(config)}
    key_file = work / "key.json"
    if work.exists() and (not key_file.is_file() or json.loads(key_file.read_text()) != key):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    write_json(key_file, key)
    return work


def run_fold(
    config: dict,
    data: PreparedData,
    folds: np.ndarray,
    fold: int,
    work: Path,
    device: torch.device,
) -> dict:
    """Train fold ``fold`` (resuming if possible) and save its val and test predictions."""
    fold_dir = work / f"fold{fold}"
    done = fold_dir / "done.json"
    if done.is_file():
        return json.loads(done.read_text())
    train_rows, val_rows = np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)
    seed = config["seed"] * 1000 + fold
    fold_dir.mkdir(parents=True, exist_ok=True)
    test_rows = np.arange(len(data.test_ids))
    if config["model"]["kind"] == "pixel_gbm":
        val, test, history = _gbm_fold(
            config, data, train_rows, val_rows, test_rows, fold_dir, seed
        )
        return _finish_fold(fold_dir, fold, data.labels[val_rows], val, test, history)
    normalizer = fit_normalizer(
        data.train_images, train_rows, log=config["normalize"]["log"], seed=seed
    )
    write_json(fold_dir / "normalizer.json", normalizer.to_dict())
    history = fit(
        config,
        data.train_images,
        data.train_masks,
        train_rows,
        val_rows,
        data.labels[val_rows],
        normalizer,
        fold_dir,
        device,
        seed=seed,
        desc=f"fold {fold}",
    )
    model = load_model(config, fold_dir / "best.pt", device)
    val = predict_proportions(
        model, data.train_images, val_rows, normalizer, config, device, desc=f"fold {fold} val"
    )
    test = predict_proportions(
        model, data.test_images, test_rows, normalizer, config, device, desc=f"fold {fold} test"
    )
    return _finish_fold(fold_dir, fold, data.labels[val_rows], val, test, history)


def _gbm_fold(
    config: dict,
    data: PreparedData,
    train_rows: np.ndarray,
    val_rows: np.ndarray,
    test_rows: np.ndarray,
    fold_dir: Path,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    from . import gbm  # LightGBM is only needed by this member

    booster, classes, val, history = gbm.fit_fold(
        config,
        data.train_images,
        data.train_masks,
        data.labels,
        train_rows,
        val_rows,
        fold_dir,
        seed,
    )
    write_history(fold_dir / "history.csv", history)
    stride = config["gbm"]["predict_stride"]
    test = gbm.predict_proportions(booster, classes, data.test_images, test_rows, stride)
    return val, test, history


def _finish_fold(
    fold_dir: Path,
    fold: int,
    val_labels: np.ndarray,
    val: np.ndarray,
    test: np.ndarray,
    history: list[dict],
) -> dict:
    np.save(fold_dir / "val.npy", val)
    np.save(fold_dir / "test.npy", test)
    best = min(history, key=lambda row: row["val_kl"])
    summary = {
        "fold": fold,
        "kl": kl_divergence(val_labels, val),
        "best_epoch": best["epoch"],
        "epochs_run": len(history),
        "train_seconds": round(sum(row["seconds"] for row in history), 1),
    }
    write_json(fold_dir / "done.json", summary)  # last: the fold counts as done only now
    return summary


def run_experiment(
    config: dict,
    data: PreparedData,
    *,
    oof_dir: str | Path = "oof",
    folds_to_run: list[int] | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
) -> Path | None:
    """Train the experiment's folds; returns the experiment directory once all folds are done."""
    oof_dir = Path(oof_dir)
    name = config["experiment"]
    exp_dir = oof_dir / name
    state = experiment_state(oof_dir, config, data)
    if state == "complete" and not force:
        log(f"{name}: already complete for this data and config, skipped ({exp_dir})")
        return exp_dir
    if force:
        shutil.rmtree(oof_dir / ".work" / name, ignore_errors=True)
    check_model(config["model"])  # fail now, not after data work, on a bad model or weights
    dcfg = config["data"]
    folds_path, folds = ensure_folds(
        data.cache_dir,
        data.train_ids,
        data.labels,
        n_folds=dcfg["n_folds"],
        group_size=dcfg["group_size"],
        seed=dcfg["fold_seed"],
    )
    if config["run"]["threads"]:
        torch.set_num_threads(config["run"]["threads"])
    device = resolve_device(config["run"]["device"])
    work = _work_dir(oof_dir, config, data)
    n_folds = int(folds.max()) + 1
    wanted = list(range(n_folds)) if folds_to_run is None else list(folds_to_run)
    for fold in wanted:
        summary = run_fold(config, data, folds, fold, work, device)
        log(
            f"{name} fold {fold}: val KL {summary['kl']:.5f} (best epoch {summary['best_epoch']}"
            f" of {summary['epochs_run']}, {summary['train_seconds']} s training)"
        )
    missing = [k for k in range(n_folds) if not (work / f"fold{k}" / "done.json").is_file()]
    if missing:
        log(f"{name}: folds {missing} not trained yet; the experiment is not written")
        return None
    return _assemble(config, data, folds, folds_path, work, exp_dir, device)


def _assemble(
    config: dict,
    data: PreparedData,
    folds: np.ndarray,
    folds_path: Path,
    work: Path,
    exp_dir: Path,
    device: torch.device,
) -> Path:
    n_folds = int(folds.max()) + 1
    oof = np.zeros_like(data.labels)
    test = np.zeros((len(data.test_ids), oof.shape[1]))
    fold_kl, extra = {}, {}
    for k in range(n_folds):
        fold_dir = work / f"fold{k}"
        rows = np.flatnonzero(folds == k)
        oof[rows] = np.load(fold_dir / "val.npy")
        test += np.load(fold_dir / "test.npy") / n_folds
        fold_kl[str(k)] = kl_divergence(data.labels[rows], oof[rows])
        for name in ("history.csv", "normalizer.json", "done.json"):
            if (fold_dir / name).is_file():
                extra[f"folds/fold{k}/{name}"] = fold_dir / name
        models = {
            "best.pt": f"checkpoints/fold{k}.pt",
            "model.txt": f"checkpoints/fold{k}.txt",
            "classes.npy": f"checkpoints/fold{k}.classes.npy",
        }
        for name, target in models.items():
            if (fold_dir / name).is_file():
                extra[target] = fold_dir / name
    scores = {"oof_kl": kl_divergence(data.labels, oof), "fold_kl": fold_kl}
    meta = {
        "name": config["experiment"],
        "data_fingerprint": data.fingerprint,
        "config_hash": config_hash(config),
        "seed": config["seed"],
        "labels_path": data.manifest["y_train"],
        "data_dir": data.manifest["data_dir"],
        "folds_file": str(folds_path),
        "device": str(device),
        **provenance(),
    }
    write_experiment(
        exp_dir,
        oof=Proportions(data.train_ids, oof, folds),
        test=Proportions(data.test_ids, test),
        meta=meta,
        config=config,
        scores=scores,
        extra=extra,
    )
    shutil.rmtree(work, ignore_errors=True)
    return exp_dir


def load_fold_model(exp_dir: Path, fold: int, device: str = "cpu") -> tuple:
    """(model, normalizer, config) of one fold of a complete experiment, for inspection."""
    exp_dir = Path(exp_dir)
    config = yaml.safe_load((exp_dir / "config.yaml").read_text())
    norm = json.loads((exp_dir / "folds" / f"fold{fold}" / "normalizer.json").read_text())
    model = load_model(config, exp_dir / "checkpoints" / f"fold{fold}.pt", torch.device(device))
    return model, Normalizer(**norm), config
