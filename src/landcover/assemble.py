"""From finished folds to ``<oof_dir>/<exp>/``: OOF and test predictions, scores, metadata and
each fold's model files, written atomically; and re-prediction of a complete experiment from
its fold models when only its ``predict`` settings changed.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from . import distributed
from .artifacts import write_experiment
from .cache import PreparedData
from .fold_plan import FoldPlan, plan_for
from .fold_predict import predict_fold
from .freshness import config_hash, prediction_hash
from .members import member_for
from .metric import kl_divergence
from .provenance import provenance
from .tables import Proportions


def assemble(
    config: dict,
    data: PreparedData,
    plan: FoldPlan,
    work: Path,
    exp_dir: Path,
    device: torch.device,
) -> Path:
    """Write the experiment from the fold directories under ``work``."""
    n_folds, member = plan.n_folds, member_for(config)
    oof = np.zeros_like(data.labels)
    test_folds = np.stack([np.load(work / f"fold{k}" / "test.npy") for k in range(n_folds)])
    extra = {}
    for k in range(n_folds):
        fold_dir = work / f"fold{k}"
        oof[plan.val_rows(k)] = np.load(fold_dir / "val.npy")
        kept = ("history.csv", "done.json", "trained.json", "attempts.jsonl", *member.kept_files)
        for name in kept:
            if (fold_dir / name).is_file():
                extra[f"folds/fold{k}/{name}"] = fold_dir / name
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
        "world_size": distributed.world(),
        "assembled_by": {"pid": os.getpid(), "host": platform.node()},
        **provenance(),
    }
    return write_experiment(
        exp_dir,
        oof=Proportions(data.train_ids, oof, plan.folds),
        test=Proportions(data.test_ids, test_folds.mean(axis=0)),
        test_folds=test_folds,
        meta=meta,
        config=config,
        scores=scores(data, plan, oof),
        extra=extra,
    )


def scores(data: PreparedData, plan: FoldPlan, oof: np.ndarray) -> dict:
    fold_kl = {
        str(k): kl_divergence(data.labels[plan.val_rows(k)], oof[plan.val_rows(k)])
        for k in range(plan.n_folds)
    }
    return {"oof_kl": kl_divergence(data.labels, oof), "fold_kl": fold_kl}


def repredict(config: dict, data: PreparedData, exp_dir: Path, device: torch.device) -> Path:
    """Predict OOF and test again from a complete experiment's fold models with the config's
    ``predict`` settings, and rewrite the experiment (atomically); nothing is trained."""
    member, plan = member_for(config), plan_for(data, config["data"])
    with tempfile.TemporaryDirectory(dir=exp_dir.parent, prefix=f".{exp_dir.name}.") as tmp:
        work = Path(tmp)
        for k in range(plan.n_folds):
            fold_dir = work / f"fold{k}"
            shutil.copytree(exp_dir / "folds" / f"fold{k}", fold_dir)
            model = member.load(fold_dir, device)
            val, test, aligned = predict_fold(model, config, data, plan, k, shared=False)
            np.save(fold_dir / "val.npy", val)
            np.save(fold_dir / "test.npy", test)
            done = fold_dir / "done.json"
            if done.is_file():
                record = {**json.loads(done.read_text()), "prediction": prediction_hash(config)}
                record.pop("align_reference", None)
                record.pop("align_spread", None)
                record.pop("dark_bound", None)
                record.update(aligned, kl=kl_divergence(data.labels[plan.val_rows(k)], val))
                done.write_text(json.dumps(record, indent=2))
        assemble(config, data, plan, work, exp_dir, device)
    return exp_dir
