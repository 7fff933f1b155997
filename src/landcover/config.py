"""Experiment configs: ``configs/base.yaml`` + a short ``configs/models/<exp>.yaml`` diff,
then the profile's scale settings (``profiles.py``), then command-line ``key.path=value``
overrides. Whether a trained experiment still matches its config: ``freshness.py``.

Every key must exist in the base and keep its type (an int is accepted for a float), so a
typo or a wrong type is an error, not a silent default. A base value of ``{}`` is a free-form
mapping (model parameters passed through to the library).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError
from .losses import WEIGHT_POWERS
from .members import member_class
from .profiles import load_profile
from .yaml_files import CONFIG_DIR, read_yaml

__all__ = ["CONFIG_DIR", "load_config", "read_yaml"]


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


def seeded_name(name: str, seed: int) -> str:
    """An experiment's name at ``seed``: the model file's name, with ``_s<seed>`` for a seed other
    than 0, so that runs at several seeds keep their own ``oof/<experiment>/`` (the blend can
    average them: ``blend_inputs.seed_groups``)."""
    return name if seed == 0 else f"{name}_s{seed}"


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
    config["experiment"] = config.get("experiment") or seeded_name(model_path.stem, config["seed"])
    config["profile"] = profile
    validate(config)
    return config


def validate(config: dict) -> None:
    """Checks that need more than a type: allowed names and ranges."""
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
    member_class(config["model"]["kind"]).validate(config)
