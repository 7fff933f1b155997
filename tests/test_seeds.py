"""Seeds as an axis: a run at another seed keeps its own experiment (``<name>_s<seed>``), the
blend averages the runs of one experiment into one member before tuning any weight, and the
sidecar and a bundle predict what was blended (each fold's seeds averaged)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import run_cli

from landcover.artifacts import load_experiment
from landcover.blend_inputs import load_inputs
from landcover.config import load_config
from landcover.errors import ArtifactError
from landcover.experiment import run_experiment
from landcover.tables import read_proportions

pytestmark = pytest.mark.slow  # trains models or runs commands: tests/run.sh --quick skips it

SMALL = {
    "data": {"n_folds": 2},
    "gbm": {"n_estimators": 5, "pixels_per_image": 32},
    "run": {"threads": 1},
}


def test_a_seed_names_its_experiment():
    assert load_config("pixel_lightgbm")["experiment"] == "pixel_lightgbm"
    assert load_config("pixel_lightgbm", overrides=["seed=2"])["experiment"] == "pixel_lightgbm_s2"
    named = load_config("pixel_lightgbm", overrides=["seed=2", "experiment=mine"])
    assert named["experiment"] == "mine"


def test_seeds_are_averaged_into_one_member_and_predict_as_blended(demo_data, demo_dir, tmp_path):
    oof = tmp_path / "oof"
    for seed in (0, 1):
        config = load_config("pixel_lightgbm", profile="demo", overrides={**SMALL, "seed": seed})
        run_experiment(config, demo_data, oof_dir=oof, log=lambda _: None)
    runs = [load_experiment(oof / name) for name in ("pixel_lightgbm", "pixel_lightgbm_s1")]
    assert not np.allclose(runs[0].oof.values, runs[1].oof.values)  # two draws indeed
    inputs = load_inputs(oof)
    assert inputs.names == ["pixel_lightgbm"]
    mean = np.mean([r.oof.select(inputs.ids).values for r in runs], axis=0)
    np.testing.assert_allclose(inputs.oof[0], mean, atol=1e-12)
    assert load_inputs(oof, average_seeds=False).names == ["pixel_lightgbm", "pixel_lightgbm_s1"]

    out = tmp_path / "subs" / "b.csv"
    done = run_cli("src/blend.py", "--artifacts", str(tmp_path), "--trials", "3", "--out", str(out))
    assert done.returncode == 0, done.stderr
    member = json.loads(out.with_suffix(".json").read_text())["experiments"][0]
    assert member["name"] == "pixel_lightgbm" and len(member["seeds"]) == 2
    submitted = read_proportions(out, allow_fold=False)
    for model in (out.with_suffix(".json"), tmp_path / "bundle"):
        if model.name == "bundle":
            exported = run_cli("src/export.py", "--model", str(out.with_suffix(".json")),
                               "--out", str(model))  # fmt: skip
            assert exported.returncode == 0, exported.stderr
        again = tmp_path / f"again-{model.name}.csv"
        result = run_cli(
            "src/predict.py", "--model", str(model), "--input", str(demo_dir), "--out",
            str(again), "--device", "cpu",
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        mine = read_proportions(again, allow_fold=False).select(submitted.ids).values
        np.testing.assert_allclose(mine, submitted.values, atol=1e-6)

    other = load_config(
        "pixel_lightgbm", profile="demo", overrides={**SMALL, "seed": 2, "gbm": {"num_leaves": 7}}
    )
    run_experiment(other, demo_data, oof_dir=oof, log=lambda _: None)
    with pytest.raises(ArtifactError, match=r"is not a seed of .*trained otherwise \(gbm"):
        load_inputs(oof)
