"""Refactoring keeps results: each kind of member, trained on the same generated data with the
same config and seed, gives the OOF and test predictions pinned in tests/data/pinned/, bit for
bit on the CPU. Re-pin deliberately (a change meant to alter results) with
``LANDCOVER_REPIN=1 python -m pytest tests/test_pinned_oof.py``.
"""

import os
import shutil
from pathlib import Path

import pytest

from landcover.config import load_config
from landcover.experiment import run_experiment

PINNED = Path(__file__).parent / "data" / "pinned"
SETTINGS = {
    "train": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 8},
    "predict": {"tta": 2},
    "data": {"n_folds": 3},
    "gbm": {"n_estimators": 15, "pixels_per_image": 64},
    "run": {"threads": 1, "device": "cpu"},
}


@pytest.mark.parametrize(
    ("name", "pin", "extra"),
    [
        ("unet_regnety_002", "unet_regnety_002", {}),
        ("benchmark_unet", "benchmark_unet", {}),
        ("classifier_resnet18", "classifier_resnet18", {}),
        # the basic feature set, pinned before gbm.texture existed, and the texture set
        ("pixel_lightgbm", "pixel_lightgbm", {"texture": False}),
        ("pixel_lightgbm", "pixel_lightgbm-texture", {"texture": True}),
        # trained for new ground: the networks' augment.shift, LightGBM's shifted copies
        ("unet_regnety_002_shifted", "unet_regnety_002_shifted", {}),
        ("pixel_lightgbm_shifted", "pixel_lightgbm_shifted", {}),
    ],
)
def test_oof_and_test_predictions_are_pinned(
    name: str, pin: str, extra: dict, demo_data, tmp_path: Path
):
    settings = {**SETTINGS, "gbm": {**SETTINGS["gbm"], **extra}}
    config = load_config(name, profile="demo", overrides=settings)
    exp_dir = run_experiment(config, demo_data, oof_dir=tmp_path, log=lambda _: None)
    for file in ("oof.csv", "test.csv"):
        pinned = PINNED / pin / file
        if os.environ.get("LANDCOVER_REPIN"):
            pinned.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(exp_dir / file, pinned)
        assert (exp_dir / file).read_bytes() == pinned.read_bytes(), f"{pin}/{file} changed"
