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

from .artifacts import is_complete, read_json, read_yaml_mapping, write_experiment
from .atomic import write_json
from .cache import PreparedData
from .config import config_differences, config_hash
from .errors import ConfigError
from .fold_plan import FoldPlan, plan_for
from .members import FoldData, member_for
from .metric import kl_divergence
from .progress import Reporter
from .provenance import provenance
from .runtime import resolve_device
from .tables import Proportions
from .trainer import write_history


def experiment_state(oof_dir: Path, config: dict, data: PreparedData) -> str:
    """'complete' (same data, fold plan and config), 'stale' (complete but different) or
    'absent'."""
    exp_dir = Path(oof_dir) / config["experiment"]
    if not is_complete(exp_dir):
        return "absent"
    meta = read_json(exp_dir / "meta.json")
    trained = read_yaml_mapping(exp_dir / "config.yaml")
    same = (
        meta.get("data_fingerprint") == data.fingerprint
        and meta.get("fold_plan") == plan_for(data, config["data"]).fingerprint()
    )
    return "complete" if same and not config_differences(trained, config) else "stale"


def _work_dir(oof_dir: Path, config: dict, data: PreparedData, plan: FoldPlan) -> Path:
    """A work directory for this exact data, plan and config; other work is discarded."""
    work = Path(oof_dir) / ".work" / config["experiment"]
    key = {
        "data_fingerprint": data.fingerprint,
        "fold_plan": plan.fingerprint(),
        "config_hash": config_hash(config),
    }
    key_file = work / "key.json"
    if work.exists() and (not key_file.is_file() or json.loads(key_file.read_text()) != key):
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    write_json(key_file, key)
    return work


def run_fold(
    config: dict,
    data: PreparedData,
    plan: FoldPlan,
    fold: int,
    work: Path,
    device: torch.device,
    reporter: Reporter | None = None,
) -> dict:
    """Train fold ``fold`` (resuming if possible) and save its val and test predictions."""
    fold_dir = work / f"fold{fold}"
    done = fold_dir / "done.json"
    if done.is_file():
        return json.loads(done.read_text())
    fold_dir.mkdir(parents=True, exist_ok=True)
    member = member_for(config)
    fold_data = FoldData(
        data.train_images,
        data.train_masks,
        data.labels,
        plan.train_rows(fold),
        plan.val_rows(fold),
        desc=f"fold {fold}",
        on_epoch=None if reporter is None else reporter.epoch,
    )
    if reporter is not None:
        reporter.start_fold(fold)
    result = member.fit_fold(fold_data, fold_dir, device, seed=config["seed"] * 1000 + fold)
    write_history(fold_dir / "history.csv", result.history)
    model = member.load(fold_dir, device)
    val = result.val
    if val is None:
        val = model.predict_proportions(data.train_images, fold_data.val_rows, desc="val")
    test_rows = np.arange(len(data.test_ids))
    test = model.predict_proportions(data.test_images, test_rows, desc="test")
    np.save(fold_dir / "val.npy", val)
    np.save(fold_dir / "test.npy", test)
    history = result.history
    best = min(history, key=lambda row: row["val_kl"])
    summary = {
        "fold": fold,
        "kl": kl_divergence(data.labels[fold_data.val_rows], val),
        "best_epoch": best["epoch"],
        "epochs_run": len(history),
        **result.extra,
        "train_seconds": round(sum(row["seconds"] for row in history), 1),
    }
    write_json(done, summary)  # last: the fold counts as done only now
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
    member_for(config).check()  # fail now, not after data work, on a bad model or weights
    plan = plan_for(data, config["data"])
    if config["run"]["threads"]:
        torch.set_num_threads(config["run"]["threads"])
    device = resolve_device(config["run"]["device"])
    work = _work_dir(oof_dir, config, data, plan)
    n_folds = plan.n_folds
    wanted = list(range(n_folds)) if folds_to_run is None else list(folds_to_run)
    if not set(wanted) <= set(range(n_folds)):
        raise ConfigError(
            f"{name}: folds {sorted(set(wanted) - set(range(n_folds)))} do not exist; the fold "
            f"plan ({plan.path.name}) has folds 0..{n_folds - 1}"
        )
    reporter = Reporter(name, wanted, n_folds, config["train"]["epochs"])
    for fold in wanted:
        log(reporter.fold(run_fold(config, data, plan, fold, work, device, reporter)))
    missing = [k for k in range(n_folds) if not (work / f"fold{k}" / "done.json").is_file()]
    if missing:
        log(f"{name}: folds {missing} not trained yet; the experiment is not written")
        return None
    return _assemble(config, data, plan, work, exp_dir, device)


def _assemble(
    config: dict,
    data: PreparedData,
    plan: FoldPlan,
    work: Path,
    exp_dir: Path,
    device: torch.device,
) -> Path:
    n_folds, member = plan.n_folds, member_for(config)
    oof = np.zeros_like(data.labels)
    test_folds = np.stack([np.load(work / f"fold{k}" / "test.npy") for k in range(n_folds)])
    fold_kl, extra = {}, {}
    for k in range(n_folds):
        fold_dir = work / f"fold{k}"
        rows = plan.val_rows(k)
        oof[rows] = np.load(fold_dir / "val.npy")
        fold_kl[str(k)] = kl_divergence(data.labels[rows], oof[rows])
        for name in ("history.csv", "done.json", *member.kept_files):
            if (fold_dir / name).is_file():
                extra[f"folds/fold{k}/{name}"] = fold_dir / name
    scores = {"oof_kl": kl_divergence(data.labels, oof), "fold_kl": fold_kl}
    meta = {
        "name": config["experiment"],
        "data_fingerprint": data.fingerprint,
        "config_hash": config_hash(config),
        "seed": config["seed"],
        "labels_path": data.manifest["y_train"],
        "data_dir": data.manifest["data_dir"],
        "patch_size": data.size,
        "folds_file": str(plan.path),
        "fold_plan": plan.fingerprint(),
        "fold_scheme": plan.scheme,
        "device": str(device),
        **provenance(),
    }
    write_experiment(
        exp_dir,
        oof=Proportions(data.train_ids, oof, plan.folds),
        test=Proportions(data.test_ids, test_folds.mean(axis=0)),
        test_folds=test_folds,
        meta=meta,
        config=config,
        scores=scores,
        extra=extra,
    )
    shutil.rmtree(work, ignore_errors=True)
    return exp_dir
