"""The trained demo blend the prediction tests share (a pytest plugin: ``pytest_plugins =
("demo_blend",)`` in a test module), trained once per session, and demo scenes to map."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from landcover.blend_inputs import load_inputs
from landcover.blend_model import BlendParams
from landcover.blend_outputs import write_outputs
from landcover.blend_tuning import fit_blend
from landcover.config import load_config
from landcover.experiment import run_experiment
from landcover.tiff import write_scene

SETTINGS = {
    "train": {"epochs": 1, "steps_per_epoch": 2, "batch_size": 8},
    "predict": {"tta": 1},
    "data": {"n_folds": 2},
    "gbm": {"n_estimators": 10, "pixels_per_image": 64},
    "run": {"threads": 1, "device": "cpu"},
}
MEMBERS = ("unet_regnety_002", "pixel_lightgbm", "classifier_resnet18")  # each kind of output
ORIGIN = (500_000.0, 5_000_000.0)  # a made-up UTM 31N corner, 10 m pixels


@pytest.fixture(scope="session")
def blend(demo_data, tmp_path_factory) -> Path:
    """A blend of per-pixel, LightGBM and image-level members, trained (smoke) on the
    generated data; returns its submission CSV (the sidecar is its .json)."""
    tmp = tmp_path_factory.mktemp("predict")
    for name in MEMBERS:
        config = load_config(name, profile="demo", overrides=SETTINGS)
        run_experiment(config, demo_data, oof_dir=tmp / "oof", log=lambda _: None)
    inputs = load_inputs(tmp / "oof")
    fit = fit_blend(inputs.oof, inputs.truth, inputs.folds, trials=10, seed=0)
    # every member in the blend (weights spread, T != 1, a floor), so all paths are used
    params = BlendParams(np.array([0.5, 0.3, 0.2]), np.array([0.8, 1.3, 2.0]), 0.01)
    return write_outputs(
        tmp / "subs" / "blend.csv", inputs, dataclasses.replace(fit, params=params), {}
    )


def demo_scene(demo_data, path: Path, tiles: int) -> Path:
    """A georeferenced scene of ``tiles`` x ``tiles`` demo patches (train ones, in id order,
    repeated as needed), 10 m pixels."""
    images = np.asarray(demo_data.train_images)
    n, size = tiles * tiles, images.shape[-1]
    grid = images[np.arange(n) % len(images)].reshape(tiles, tiles, 4, size, size)
    scene = grid.transpose(2, 0, 3, 1, 4).reshape(4, tiles * size, tiles * size)
    return write_scene(path, scene, "EPSG:32631", from_origin(*ORIGIN, 10, 10))
