"""Experiment configs: ``configs/base.yaml`` + a short ``configs/models/<exp>.yaml`` diff,
then the profile's overrides, then command-line ``key.path=value`` overrides.

Every key must exist in the base and keep its type (an int is accepted for a float), so a
typo or a wrong type is an error, not a silent default. A base value of ``{}`` is a free-form
mapping (model parameters passed through to the library).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .provenance import REPO_ROOT

CONFIG_DIR = REPO_ROOT / "configs"


def read_yaml(path: str | os.PathLike[str]) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def merge(base: dict, update: dict, *, where: str, prefix: str = "") -> dict:
    """Deep-merge ``update`` into a copy of ``base``, checking keys and types against it."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        name = f"{prefix}{key}"
        if key not in base:
            close = [k for k in base if k.startswith(str(key)[:3])]
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key '{name}'{hint}")
        ref = base[key]
        if isinstance(ref, dict) and ref:
            if not isinstance(value, dict):
                raise ConfigError(f"{where}: '{name}' must be a mapping, got {_type_name(value)}")
            out[key] = merge(ref, value, where=where, prefix=f"{name}.")
        else:
            out[key] = _check_type(ref, value, name, where)
    return out


_YAML11_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def _check_type(ref: Any, value: Any, name: str, where: str) -> Any:
    if ref is None or value is None:
        return value  # optional settings: None in the base means any type, None disables
    if isinstance(ref, bool) != isinstance(value, bool):
        raise ConfigError(f"{where}: '{name}' must be bool, got {_type_name(value)} {value!r}")
    if isinstance(ref, float) and isinstance(value, int):
        return float(value)
    if isinstance(ref, float) and isinstance(value, str) and _YAML11_EXPONENT.fullmatch(value):
        return float(value)  # YAML 1.1 reads 3e-3 (no dot) as a string
    if not isinstance(value, type(ref)):
        raise ConfigError(
            f"{where}: '{name}' must be {_type_name(ref)}, got {_type_name(value)} {value!r}"
        )
    return value


def parse_overrides(items: list[str] | None) -> dict:
    """``["train.epochs=3", "model.arch=FPN"]`` -> nested dict (values parsed as YAML)."""
    result: dict = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key.path=value")
        path, raw = item.split("=", 1)
        node = result
        *parents, leaf = path.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(raw)
    return result


def model_config_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        return path
    return CONFIG_DIR / "models" / f"{name_or_path}.yaml"


MAP = {"rows": 3, "cols": 3, "overlap": 64}  # notebooks/predict.ipynb's mosaic, by default


def map_settings(given: dict, where: Path) -> dict:
    """The profile's ``map`` over ``MAP``: positive tile counts, an overlap of 0 or more."""
    unknown = set(given) - set(MAP)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) under map: {sorted(unknown)}")
    out = {**MAP, **given}
    for key, value in out.items():
        low = 0 if key == "overlap" else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{where}: map.{key} must be an integer >= {low}, got {value!r}")
    return out


SHIFT_TEST = {  # what src/shift_test.py runs by default (run_all.sh runs it under the profile)
    "tta": 1,  # test-time views
    "gbm_stride": 0,  # LightGBM members' pixels from every N-th one (0: their own)
    "pixel_stride": 8,  # class-mix: the networks' pixels from every N-th one
    "band_rows": 10,  # class-mix: raster rows a region of the label table spans
    "region_min": 200,  # class-mix: the fewest labelled patches a region holds
    "every_region": 1,  # class-mix: every N-th region
}


def shift_test_settings(given: dict, where: Path) -> dict:
    """The profile's ``shift_test`` over ``SHIFT_TEST``: known keys, positive integers."""
    unknown = set(given) - set(SHIFT_TEST)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) under shift_test: {sorted(unknown)}")
    out = {**SHIFT_TEST, **given}
    for key, value in out.items():
        low = 0 if key == "gbm_stride" else 1
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(
                f"{where}: shift_test.{key} must be an integer >= {low}, got {value!r}"
            )
    return out


def load_profile(name: str | None) -> dict:
    """A profile: ``experiments`` (default list), ``overrides`` applied to each of them,
    ``experiment_overrides`` (name -> overrides) applied after those to one experiment, and
    ``map`` (the mosaic ``run_all.sh`` maps: ``rows``, ``cols``, ``overlap``; see ``MAP``)."""
    if not name:
        return {
            "experiments": [],
            "overrides": {},
            "experiment_overrides": {},
            "map": dict(MAP),
            "shift_test": dict(SHIFT_TEST),
        }
    path = (
        Path(name) if name.endswith((".yaml", ".yml")) else CONFIG_DIR / "profiles" / f"{name}.yaml"
    )
    if not path.is_file():
        known = sorted(p.stem for p in (CONFIG_DIR / "profiles").glob("*.yaml"))
        raise ConfigError(f"{path}: unknown profile {name!r} (known: {', '.join(known)})")
    data = read_yaml(path)
    known = {"experiments", "overrides", "experiment_overrides", "description", "map", "shift_test"}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {sorted(unknown)}")
    return {
        "map": map_settings(data.get("map") or {}, path),
        "shift_test": shift_test_settings(data.get("shift_test") or {}, path),
        "experiments": list(data.get("experiments") or []),
        "overrides": data.get("overrides") or {},
        "experiment_overrides": data.get("experiment_overrides") or {},
        "path": str(path),
    }


def data_settings(profile: str | None = None, overrides: list[str] | None = None) -> dict:
    """The ``data`` section (the fold plan) of the base config under a profile and
    ``data.*`` overrides, without a model."""
    config = read_yaml(CONFIG_DIR / "base.yaml")
    prof = load_profile(profile)
    if prof["overrides"]:
        config = merge(config, prof["overrides"], where=prof["path"])
    extra = parse_overrides(overrides)
    if set(extra) - {"data"}:
        raise ConfigError(f"only data.* settings shape the fold plan, got {sorted(extra)}")
    config = merge(config, extra, where="overrides")
    return config["data"]


# Smoke mode (CI, notebook checks): every stage runs, on almost no work. One thread: on a busy
# 2-core machine two spinning threads can be ten times slower than one.
SMOKE_OVERRIDES = {
    "train": {"epochs": 1, "steps_per_epoch": 2},
    "predict": {"tta": 1},
    "gbm": {"n_estimators": 20},
    "run": {"threads": 1},
}


def load_config(
    model: str,
    *,
    profile: str | None = None,
    overrides: list[str] | dict | None = None,
    smoke: bool = False,
) -> dict:
    """Resolve an experiment config: base <- profile <- model file <- the profile's overrides
    for this experiment <- command-line overrides <- smoke.

    What a model file fixes (the benchmark recipe's argmax counting and single view, say)
    survives every profile: a profile changes it only by naming the experiment in
    ``experiment_overrides``."""
    config = read_yaml(CONFIG_DIR / "base.yaml")
    prof = load_profile(profile)
    if prof["overrides"]:
        config = merge(config, prof["overrides"], where=prof["path"])
    model_path = model_config_path(model)
    config = merge(config, read_yaml(model_path), where=str(model_path))
    own = prof["experiment_overrides"].get(model_path.stem)
    if own:
        config = merge(config, own, where=f"{prof['path']} ({model_path.stem})")
    extra = overrides if isinstance(overrides, dict) else parse_overrides(overrides)
    config = merge(config, extra, where="overrides")
    if smoke:
        config = merge(config, SMOKE_OVERRIDES, where="smoke mode")
    config["experiment"] = config.get("experiment") or model_path.stem
    config["profile"] = profile
    validate(config)
    return config


def validate(config: dict) -> None:
    """Checks that need more than a type: allowed names and ranges."""
    from .losses import WEIGHT_POWERS

    choices = {
        ("train", "optimizer"): ("adam", "adamw"),
        ("train", "scheduler"): ("cosine", "none"),
        ("train", "select"): ("last", "best"),
        ("data", "scheme"): ("row_bands", "id_groups"),
        ("loss", "class_weights"): ("none", *WEIGHT_POWERS),
        ("predict", "mode"): ("soft", "hard"),
    }
    for (section, key), allowed in choices.items():
        if config[section][key] not in allowed:
            raise ConfigError(
                f"'{section}.{key}' must be one of {allowed}, got {config[section][key]!r}"
            )
    if config["predict"]["tta"] not in (1, 2, 4, 8):
        raise ConfigError(f"'predict.tta' must be 1, 2, 4 or 8, got {config['predict']['tta']}")
    for section, key in (("train", "epochs"), ("train", "batch_size"), ("data", "n_folds")):
        if config[section][key] < 1:
            raise ConfigError(f"'{section}.{key}' must be >= 1, got {config[section][key]}")
    if config["train"]["early_stopping"] and config["train"]["select"] != "best":
        raise ConfigError(
            "'train.early_stopping' stops on the validation fold, so it needs train.select: best"
        )
    from .members import member_class  # the kinds register there

    member_class(config["model"]["kind"]).validate(config)


NOT_RESULTS = ("run", "profile")  # where and how it ran, not what it computes


def config_differences(
    trained: dict, current: dict, prefix: str = "", base: dict | None = None
) -> list[str]:
    """Key paths whose values differ between a trained experiment's config and ``current``.

    Keys the trained config does not have are settings added to the base since it was trained:
    they count only where ``current`` sets them otherwise than the base's default, so adding a
    setting (with a default that keeps the old behaviour) does not make every finished
    experiment stale, while turning it on does.
    """
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


PREDICTION = "predict"  # how trained fold models predict: a change re-predicts, never retrains
LATER_SWITCHES = {  # keys added later, per section: at their off value they leave hashes as before
    PREDICTION: {"dark_level": False, "class_adjust": 0.0},
    "train": {"corrected_training": False},
    "normalize": {"relative": False},
    "gbm": {
        "relative": False,
        "relative_context": False,
        "dark_relative": False,
        "feature_fraction": 0.8,
        "min_data_in_leaf": 50,
        "lambda_l2": 1.0,
        "corrected_training": False,
        "bags": 1,
    },
}
REVISED = {"dark_level": 2}  # switches whose working changed: on, the revision joins the hash


def _without_later(section: str, settings: object) -> object:
    """A config section less its later switches at their off value (``LATER_SWITCHES``)."""
    later = LATER_SWITCHES.get(section)
    if not later or not isinstance(settings, dict):
        return settings
    return {k: v for k, v in settings.items() if not (k in later and v == later[k])}


def _prediction(config: dict) -> dict:
    """The ``predict`` settings, less the later switches at their off value (experiments made
    before those keys existed keep their hashes, and are not re-predicted for nothing), and,
    for a switch that is on and whose working changed since (``REVISED``; ``dark_level`` 2: it
    comes before the region's alignment), its revision (experiments predicted the old way
    are re-predicted, never retrained)."""
    settings = config[PREDICTION]
    revised = {f"{k}_revision": n for k, n in REVISED.items() if settings.get(k)}
    return {**_without_later(PREDICTION, settings), **revised}


def config_hash(config: dict) -> str:
    """Hash of what determines the results (not where it runs or what folds are shown)."""
    return _hash(
        {
            k: _prediction(config) if k == PREDICTION else _without_later(k, v)
            for k, v in config.items()
            if k not in NOT_RESULTS
        }
    )


def training_hash(config: dict) -> str:
    """Hash of what determines the trained fold models (not how they then predict)."""
    return _hash(
        {k: _without_later(k, v) for k, v in config.items() if k not in (*NOT_RESULTS, PREDICTION)}
    )


def prediction_hash(config: dict) -> str:
    return _hash(_prediction(config))
