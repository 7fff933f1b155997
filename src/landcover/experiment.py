"""The one fold loop: train every fold of an experiment, assemble OOF and test predictions.

Each fold works in ``<oof_dir>/.work/<exp>/fold<k>/`` and in nothing else: its key (data,
fold plan, training config; ``freshness.fold_key``) says what it belongs to, and a fold whose
key differs is reset on its own, so folds of one experiment can run at once in separate
processes (``--folds``, Ray tasks) and resume where they stopped. Whoever finds every fold done
assembles ``<oof_dir>/<exp>/`` atomically, under a lock. Changing only the ``predict`` settings
of a trained experiment re-predicts it from its fold models, without retraining; a complete
experiment trained otherwise is replaced only with ``force`` (``freshness.staleness``).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .artifacts import is_complete
from .assemble import assemble, repredict
from .atomic import write_json
from .cache import PreparedData
from .errors import ConfigError
from .fold_plan import FoldPlan, plan_for
from .fold_predict import predict_fold
from .freshness import fold_key, folds_done, prediction_hash, staleness
from .members import FoldData, member_for
from .metric import kl_divergence
from .progress import Reporter
from .runtime import resolve_device
from .trainer import write_history


def _fold_dir(work: Path, fold: int, key: dict, force: bool) -> Path:
    """This fold's directory, reset if it holds other work (or ``force``): nobody else's."""
    fold_dir = work / f"fold{fold}"
    key_file = fold_dir / "key.json"
    if distributed.is_writer():
        stale = fold_dir.exists() and (
            force or not key_file.is_file() or json.loads(key_file.read_text()) != key
        )
        if stale:
            shutil.rmtree(fold_dir)
        fold_dir.mkdir(parents=True, exist_ok=True)
        write_json(key_file, key)
    distributed.barrier()
    return fold_dir


def _fail_once(config: dict, fold: int) -> Callable[[dict], None] | None:
    """Fault injection for tests of retry and resume: with LANDCOVER_FAIL_ONCE=<dir>, a fold
    fails after its first epoch (or its training, without epochs), once: a marker file in
    <dir> remembers. LANDCOVER_FAIL_EXPERIMENT=<name> limits it to one experiment."""
    folder = os.environ.get("LANDCOVER_FAIL_ONCE")
    only = os.environ.get("LANDCOVER_FAIL_EXPERIMENT")
    if not folder or (only and only != config["experiment"]):
        return None
    marker = Path(folder) / f"{config['experiment']}.fold{fold}.rank{distributed.rank()}"

    def check(row: dict) -> None:
        if row["epoch"] == 1 and not marker.exists():
            marker.parent.mkdir(parents=True, exist_ok=True)
            marker.write_text("failed once\n")
            raise RuntimeError(f"injected failure after epoch 1 ({marker})")

    return check


def fold_seed(config: dict, fold: int) -> int:
    """The seed fold ``fold``'s model trains with (its draws and, for LightGBM, its bagging)."""
    return config["seed"] * 1000 + fold


def run_fold(
    config: dict,
    data: PreparedData,
    plan: FoldPlan,
    fold: int,
    fold_dir: Path,
    device: torch.device,
    reporter: Reporter | None = None,
) -> dict:
    """Train fold ``fold`` (resuming if possible) unless trained, then predict its validation
    rows and the test set unless done with these ``predict`` settings."""
    done = fold_dir / "done.json"
    wanted = prediction_hash(config)
    if done.is_file() and json.loads(done.read_text()).get("prediction") == wanted:
        return json.loads(done.read_text())
    member = member_for(config)
    fail_once = _fail_once(config, fold)
    hooks = [h for h in (reporter and reporter.epoch, fail_once) if h]
    fold_data = FoldData(
        data.train_images,
        data.train_masks,
        data.labels,
        plan.train_rows(fold),
        plan.val_rows(fold),
        desc=f"fold {fold}",
        on_epoch=(lambda row: [hook(row) for hook in hooks]) if hooks else None,
    )
    if reporter is not None:
        reporter.start_fold(fold)
    started = time.time()
    trained = fold_dir / "trained.json"
    val = None
    if not trained.is_file():
        result = member.fit_fold(fold_data, fold_dir, device, seed=fold_seed(config, fold))
        if fail_once is not None:  # members without epochs fail here
            fail_once({"epoch": 1})
        val = result.val
        if distributed.is_writer():
            write_history(fold_dir / "history.csv", result.history)
            write_json(trained, {"history": result.history, "extra": result.extra})
        distributed.barrier()
    record = json.loads(trained.read_text())
    model = member.load(fold_dir, device)
    val, test, aligned = predict_fold(model, config, data, plan, fold, val)
    history = record["history"]
    summary = {
        "fold": fold,
        "kl": kl_divergence(data.labels[fold_data.val_rows], val),
        "best_epoch": record["extra"].get("best_epoch", history[-1]["epoch"]),  # by its evaluator
        "epochs_run": len(history),
        **record["extra"],
        "train_seconds": round(sum(row["seconds"] for row in history), 1),
        "prediction": wanted,
        "world_size": distributed.world(),
        **aligned,
        "started": started,
        "finished": time.time(),
    }
    if distributed.is_writer():
        np.save(fold_dir / "val.npy", val)
        np.save(fold_dir / "test.npy", test)
        write_json(done, summary)  # last: the fold counts as done only now
    distributed.barrier()
    return summary


@contextmanager
def assembly_lock(oof_dir: Path, name: str) -> Iterator[None]:
    """One assembler at a time per experiment, whichever process gets there."""
    path = Path(oof_dir) / ".work" / f"{name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def run_experiment(
    config: dict,
    data: PreparedData,
    *,
    oof_dir: str | Path = "oof",
    folds_to_run: list[int] | None = None,
    force: bool = False,
    log: Callable[[str], None] = print,
    device: torch.device | None = None,
) -> Path | None:
    """Train the experiment's folds; returns the experiment directory once all folds are done."""
    oof_dir = Path(oof_dir)
    name = config["experiment"]
    exp_dir = oof_dir / name
    state, why = staleness(exp_dir, config, data)
    if state == "complete" and not force:
        log(f"{name}: already complete for this data and config, skipped ({exp_dir})")
        return exp_dir
    if state == "stale" and not force:
        raise ConfigError(
            f"{exp_dir}: holds {name} {why}; --force replaces it, --artifacts DIR keeps both"
        )
    member_for(config).check()  # fail now, not after data work, on a bad model or weights
    if config["run"]["threads"]:
        torch.set_num_threads(config["run"]["threads"])
    device = device or resolve_device(config["run"]["device"])
    if state == "repredict" and not force:
        log(f"{name}: trained; only its predict settings changed: re-predicting, no training")
        if distributed.is_writer():
            with assembly_lock(oof_dir, name):
                repredict(config, data, exp_dir, device)
        distributed.barrier()
        return exp_dir
    plan = plan_for(data, config["data"])
    key, work = fold_key(config, data, plan), oof_dir / ".work" / name
    wanted = list(range(plan.n_folds)) if folds_to_run is None else list(folds_to_run)
    if not set(wanted) <= set(range(plan.n_folds)):
        raise ConfigError(
            f"{name}: folds {sorted(set(wanted) - set(range(plan.n_folds)))} do not exist; "
            f"the fold plan ({plan.path.name}) has folds 0..{plan.n_folds - 1}"
        )
    reporter = Reporter(name, wanted, plan.n_folds, config["train"]["epochs"])
    for fold in wanted:
        fold_dir = _fold_dir(work, fold, key, force)
        log(reporter.fold(run_fold(config, data, plan, fold, fold_dir, device, reporter)))
    return finish(config, data, plan, oof_dir, device, log)


def finish(
    config: dict,
    data: PreparedData,
    plan: FoldPlan,
    oof_dir: Path,
    device: torch.device,
    log: Callable[[str], None] = print,
) -> Path | None:
    """Assemble the experiment if every fold is done (once, whoever calls it first)."""
    name, exp_dir = config["experiment"], Path(oof_dir) / config["experiment"]
    work, key = Path(oof_dir) / ".work" / name, fold_key(config, data, plan)
    done = folds_done(work, plan.n_folds, key, prediction_hash(config))
    missing = sorted(set(range(plan.n_folds)) - set(done))
    if missing:
        log(f"{name}: folds {missing} not trained yet; the experiment is not written")
        return None
    if distributed.is_writer():
        with assembly_lock(oof_dir, name):
            if folds_done(work, plan.n_folds, key, prediction_hash(config)) == done:
                assemble(config, data, plan, work, exp_dir, device)
                shutil.rmtree(work, ignore_errors=True)
    distributed.barrier()
    return exp_dir if is_complete(exp_dir) else None
