"""Is a trained experiment still current? What makes it stale, and what to redo.

An experiment directory (``artifacts.py``) is current for a config and data when its artifact
format is this code's (``artifacts.FORMAT_VERSION``), its data fingerprint and fold plan are
the data's, and its resolved config equals the config asked for. Where only the ``predict``
section differs, its fold models are re-predicted, never retrained; anything else makes it
stale, and ``experiment.run_experiment`` refuses to replace it unless asked (``--force``): two
recipes never share ``oof/<experiment>/`` unnoticed.

Each fold's work directory carries a key (data, fold plan, training hash) and, once predicted,
the prediction hash it was predicted with: a fold is reset only when its key changes, and
re-predicted when only the prediction hash does.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .artifacts import FORMAT_VERSION, is_complete, read_json, read_yaml_mapping
from .cache import PreparedData
from .fold_plan import FoldPlan, plan_for
from .yaml_files import CONFIG_DIR, read_yaml

NOT_RESULTS = ("run", "profile")  # where and how it ran, not what it computes
PREDICTION = "predict"  # how trained fold models predict: a change re-predicts, never retrains


def config_differences(
    trained: dict, current: dict, prefix: str = "", base: dict | None = None
) -> list[str]:
    """Key paths whose values differ between a trained experiment's config and ``current``.

    A key the trained config lacks was added to the base since: it counts only where
    ``current`` sets it otherwise than the base's default, so adding a setting whose default
    keeps the old behaviour does not make every finished experiment stale."""
    if base is None and not prefix:
        base = read_yaml(CONFIG_DIR / "base.yaml")
    base = base if isinstance(base, dict) else {}
    differ = []
    for key, value in trained.items():
        if not prefix and key in NOT_RESULTS:
            continue
        name = f"{prefix}{key}"
        if key not in current:
            differ.append(name)
        elif isinstance(value, dict) and isinstance(current[key], dict) and value:
            differ += config_differences(value, current[key], f"{name}.", base.get(key))
        elif value != current[key]:
            differ.append(name)
    for key, value in current.items():
        if key not in trained and not (not prefix and key in NOT_RESULTS):
            if value != base.get(key, value):  # a key the base lacks: the model file's own
                differ.append(f"{prefix}{key}")
    return differ


def _hash(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def config_hash(config: dict) -> str:
    """Hash of what determines the results (not where it runs)."""
    return _hash({k: v for k, v in config.items() if k not in NOT_RESULTS})


def training_hash(config: dict) -> str:
    """Hash of what determines the trained fold models (not how they then predict)."""
    return _hash({k: v for k, v in config.items() if k not in (*NOT_RESULTS, PREDICTION)})


def prediction_hash(config: dict) -> str:
    """Hash of how the trained fold models predict (``predict``)."""
    return _hash(config[PREDICTION])


def staleness(exp_dir: Path, config: dict, data: PreparedData) -> tuple[str, str]:
    """(state, why) of ``exp_dir`` for this config and data: 'absent'; 'complete' (current);
    'repredict' (only ``predict`` settings differ, or a fold was predicted otherwise:
    re-predicted from the fold models); 'stale' (trained otherwise: ``why`` says how)."""
    exp_dir = Path(exp_dir)
    if not is_complete(exp_dir):
        return "absent", ""
    meta = read_json(exp_dir / "meta.json")
    if meta.get("format_version") != FORMAT_VERSION:
        found = meta.get("format_version", 1)
        return "stale", f"written in artifact format {found}; this code writes {FORMAT_VERSION}"
    if meta.get("data_fingerprint") != data.fingerprint:
        return "stale", "trained on other data"
    if meta.get("fold_plan") != plan_for(data, config["data"]).fingerprint():
        return "stale", "trained under another fold plan"
    differ = config_differences(read_yaml_mapping(exp_dir / "config.yaml"), config)
    trained = [d for d in differ if not d.startswith(f"{PREDICTION}.")]
    if trained:
        return "stale", f"trained otherwise ({', '.join(trained)})"
    if differ or predicted_otherwise(exp_dir, config):
        return "repredict", "predict settings differ"
    return "complete", ""


def experiment_state(oof_dir: Path, config: dict, data: PreparedData) -> str:
    """``staleness``'s state of ``<oof_dir>/<experiment>``."""
    return staleness(Path(oof_dir) / config["experiment"], config, data)[0]


def fold_key(config: dict, data: PreparedData, plan: FoldPlan) -> dict:
    """What a fold's work belongs to: the data, the fold plan, the training settings."""
    return {
        "data_fingerprint": data.fingerprint,
        "fold_plan": plan.fingerprint(),
        "training": training_hash(config),
    }


def folds_done(work: Path, n_folds: int, key: dict, prediction: str) -> list[int]:
    """The folds whose work is done for this key and these ``predict`` settings."""
    ok = []
    for k in range(n_folds):
        fold_dir = work / f"fold{k}"
        key_file, done = fold_dir / "key.json", fold_dir / "done.json"
        if key_file.is_file() and done.is_file() and json.loads(key_file.read_text()) == key:
            if json.loads(done.read_text()).get("prediction") == prediction:
                ok.append(k)
    return ok


def predicted_otherwise(path: Path, config: dict) -> list[int]:
    """The folds of experiment ``path`` whose recorded prediction hash is not ``config``'s."""
    wanted, stale = prediction_hash(config), []
    for done in sorted((Path(path) / "folds").glob("fold*/done.json")):
        if json.loads(done.read_text()).get("prediction") != wanted:
            stale.append(int(done.parent.name.removeprefix("fold")))
    return stale
