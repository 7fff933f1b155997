"""Profiles (``configs/profiles/<name>.yaml``): where and at what scale experiments run.

A profile names its experiments, and may set only their scale and hardware (``SCALE_KEYS``):
the fold plan, epochs, batch size, training crops, boosting rounds and training pixels,
test-time views, device and threads. What a model learns (architecture, inputs, loss,
augmentation, learning rate, prediction mode) lives in its model file, so one experiment name
is one recipe; where a profile's scale differs (more epochs on a GPU), the experiment's config
says so and a run refuses to replace an experiment trained otherwise (``freshness.py``).
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError
from .yaml_files import CONFIG_DIR, read_yaml

SCALE_KEYS = {  # section -> the keys a profile may set (None: the whole section)
    "data": None,
    "run": None,
    "train": {"epochs", "batch_size", "crop", "val_crop", "steps_per_epoch", "warmup_epochs"},
    "predict": {"tta", "batch_size"},
    "gbm": {"n_estimators", "pixels_per_image", "max_train_pixels", "predict_stride"},
}

MAP = {"rows": 3, "cols": 3, "overlap": 64}  # notebooks/predict.ipynb's mosaic, by default

SHIFT_TEST = {  # what src/shift_test.py runs by default (run_all.sh runs it under the profile)
    "tta": 1,  # test-time views
    "gbm_stride": 0,  # LightGBM members' pixels from every N-th one (0: their own)
    "band_rows": 10,  # class-mix: raster rows a region of the label table spans
    "region_min": 200,  # class-mix: the fewest labelled patches a region holds
    "every_region": 1,  # class-mix: every N-th region
}


def learning_keys(overrides: dict) -> list[str]:
    """The key paths of ``overrides`` that change what a model learns (not ``SCALE_KEYS``)."""
    found = []
    for section, value in overrides.items():
        allowed = SCALE_KEYS.get(section, set())
        if allowed is None:
            continue
        if not isinstance(value, dict):
            found.append(section)
            continue
        found += [f"{section}.{key}" for key in value if key not in allowed]
    return found


def _settings(given: dict, defaults: dict, lows: dict, name: str, where: Path) -> dict:
    """``given`` over ``defaults``: known keys, integers of at least their ``lows`` (1)."""
    unknown = set(given) - set(defaults)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) under {name}: {sorted(unknown)}")
    out = {**defaults, **given}
    for key, value in out.items():
        low = lows.get(key, 1)
        if not isinstance(value, int) or isinstance(value, bool) or value < low:
            raise ConfigError(f"{where}: {name}.{key} must be an integer >= {low}, got {value!r}")
    return out


def load_profile(name: str | None) -> dict:
    """A profile: ``experiments`` (default list), ``overrides`` applied to each of them,
    ``experiment_overrides`` (name -> overrides) applied after those to one experiment (both
    scale only: ``SCALE_KEYS``), ``map`` (the mosaic ``run_all.sh`` maps: ``MAP``) and
    ``shift_test`` (what ``src/shift_test.py`` runs under it: ``SHIFT_TEST``)."""
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
    overrides = data.get("overrides") or {}
    own = data.get("experiment_overrides") or {}
    for where, given in [("overrides", overrides), *own.items()]:
        learned = learning_keys(given)
        if learned:
            raise ConfigError(
                f"{path}: {where} sets {', '.join(learned)}: a profile sets scale and hardware "
                "only; what a model learns belongs in its model file (configs/models/)"
            )
    return {
        "map": _settings(data.get("map") or {}, MAP, {"overlap": 0}, "map", path),
        "shift_test": _settings(
            data.get("shift_test") or {}, SHIFT_TEST, {"gbm_stride": 0}, "shift_test", path
        ),
        "experiments": list(data.get("experiments") or []),
        "overrides": overrides,
        "experiment_overrides": own,
        "path": str(path),
    }
