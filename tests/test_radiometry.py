"""Each patch's dark level (``predict.dark_level``, ``radiometry.py``): the bound from the
training patches, the correction, a scene window's nodata, and the fold loop, predict.py and
re-prediction agreeing on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli

from landcover.config import load_config
from landcover.errors import ArtifactError
from landcover.experiment import run_experiment
from landcover.freshness import experiment_state, prediction_hash
from landcover.predictor import Predictor
from landcover.radiometry import FoldRadiometry, dark_bound, dark_corrected, dark_levels
from landcover.tables import read_proportions

pytestmark = pytest.mark.slow  # trains models or runs commands: tests/run.sh --quick skips it

SETTINGS = {
    "predict": {"tta": 1, "dark_level": True},
    "data": {"n_folds": 2},
    "gbm": {"n_estimators": 10, "pixels_per_image": 64},
    "run": {"threads": 1, "device": "cpu"},
}


def _images(n: int = 24, size: int = 32, seed: int = 0) -> np.ndarray:
    """Skewed, band-correlated reflectances, like fields and woods (x 1e4)."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 500.0, size=(n, 1, size, size))
    return (base * np.array([0.5, 0.8, 0.6, 2.0])[None, :, None, None] + 80).astype(np.uint16)


def test_a_patch_darker_than_the_bound_is_kept_and_one_above_it_is_lowered_onto_it():
    """Dark-object subtraction only beyond the training patches: a patch whose dark level
    (1st percentile per band) exceeds the bound is lowered by the excess, in that band alone;
    one-sided: a band made darker and patches within the bound are untouched."""
    train = _images(n=60, seed=1)
    bound = dark_bound(train, np.arange(60))
    assert bound.shape == (4,)
    levels = dark_levels(train)
    assert (levels <= bound).mean(axis=0).min() >= 0.98  # all but the brightest 1%
    kept = _images(n=8, seed=2)
    assert (dark_levels(kept) < bound).all()
    np.testing.assert_array_equal(dark_corrected(kept, bound), kept)  # byte for byte
    hazy = kept.astype(np.float64)
    hazy[:3, 0] += 300  # residual path radiance in the blue band of three patches
    hazy[:3, 1] *= 0.9  # and a darkening gain in the green band
    hazy = np.rint(hazy).astype(np.uint16)
    out = dark_corrected(hazy, bound)
    np.testing.assert_allclose(dark_levels(out)[:3, 0], bound[0], atol=1.0)  # on the bound
    np.testing.assert_array_equal(out[:, 1:], hazy[:, 1:])  # the other bands as they were
    np.testing.assert_array_equal(out[3:], hazy[3:])  # the other patches too
    lowered = hazy[:3, 0].astype(np.int64) - out[:3, 0]
    assert (lowered.max(axis=(1, 2)) - lowered.min(axis=(1, 2)) <= 1).all()  # one offset each


def test_a_window_dark_level_is_read_from_its_ground_not_its_nodata():
    """A scene window half nodata (zeros) reads its dark level from its valid pixels: lifted by
    residual path radiance, it is lowered as the same ground without nodata would be, where
    its nodata would have hidden the excess; a window with no valid grid pixel reads them all."""
    train = _images(n=60, seed=1)
    bound = dark_bound(train, np.arange(60))
    hazy = np.clip(_images(n=2, seed=4).astype(float) + 300, 1, 65535).astype(np.uint16)
    valid = np.ones((2, 32, 32), dtype=bool)
    valid[:, :, 16:] = False
    windows = hazy.copy()
    windows[:, :, ~valid[0]] = 0  # the scene's nodata
    radiometry = FoldRadiometry(bound=bound)
    whole = radiometry.prepared(hazy)
    assert (dark_levels(hazy) > bound).all()
    np.testing.assert_array_equal(radiometry.prepared(windows), windows)  # the nodata hid it
    ground = radiometry.prepared(windows, valid=valid)
    excess = dark_levels(hazy[:, :, :, :16]) - bound
    np.testing.assert_allclose(
        ground[:, :, :, :16].astype(float), hazy[:, :, :, :16] - excess[:, :, None, None], atol=1
    )
    lowered = (windows[:, :, :, :16].astype(float) - ground[:, :, :, :16]).mean(axis=(2, 3))
    assert (lowered > 20).all(), lowered  # every band of both lowered, as the whole ground is
    assert ((hazy.astype(float) - whole).mean(axis=(2, 3)) > 20).all()
    empty = np.zeros_like(valid)
    np.testing.assert_array_equal(radiometry.prepared(windows, valid=empty), windows)


def test_a_fold_records_its_bound_and_round_trips_it():
    train = _images(n=40, seed=3)
    fold = FoldRadiometry.of_fold(train, np.arange(40), dark_level=True)
    assert fold.changes and fold.record() == {"dark_bound": fold.bound.tolist()}
    again = FoldRadiometry.recorded(json.loads(json.dumps(fold.record())))
    np.testing.assert_array_equal(again.bound, fold.bound)
    off = FoldRadiometry.of_fold(train, np.arange(40), dark_level=False)
    assert not off.changes and off.record() == {}
    np.testing.assert_array_equal(off.prepared(train[:3]), train[:3])


@pytest.fixture(scope="module")
def corrected(demo_data, tmp_path_factory) -> dict:
    """pixel_lightgbm trained on the generated data, its patches dark-level corrected, and the
    same fold models re-predicting without the correction (predict settings only)."""
    tmp = tmp_path_factory.mktemp("dark")
    config = load_config("pixel_lightgbm", profile="demo", overrides=SETTINGS)
    exp = run_experiment(config, demo_data, oof_dir=tmp / "dark", log=lambda _: None)
    plain_cfg = load_config(
        "pixel_lightgbm", profile="demo", overrides={**SETTINGS, "predict": {"tta": 1}}
    )
    shutil.copytree(exp, tmp / "plain" / exp.name)
    logs: list[str] = []
    plain = run_experiment(plain_cfg, demo_data, oof_dir=tmp / "plain", log=logs.append)
    return {"dark": exp, "plain": plain, "logs": logs, "config": config}


def test_folds_record_their_bound_and_predict_py_reproduces_the_test_predictions(
    corrected, demo_dir: Path, tmp_path: Path
):
    """Each fold records its training patches' dark level; predict.py corrects the test patches
    as the pipeline did (each fold model's, on the classes scored, averaged); the same fold
    models re-predicting without it (nothing retrained) record none."""
    exp = corrected["dark"]
    for k in (0, 1):
        record = json.loads((exp / "folds" / f"fold{k}" / "done.json").read_text())
        assert np.asarray(record["dark_bound"]).shape == (4,)
    assert any("re-predicting, no training" in line for line in corrected["logs"])
    plain_done = corrected["plain"] / "folds" / "fold0" / "done.json"
    assert "dark_bound" not in json.loads(plain_done.read_text())
    folds = [
        read_proportions(exp / "test_folds" / f"fold{k}.csv", allow_fold=False) for k in (0, 1)
    ]
    scored = np.mean([f.values[:, 2:] / f.values[:, 2:].sum(1, keepdims=True) for f in folds], 0)
    out = tmp_path / "again.csv"
    result = run_cli(
        "src/predict.py", "--model", str(exp), "--input", str(demo_dir), "--out", str(out),
        "--device", "cpu",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    mine = read_proportions(out, require_sum_to_one=True, allow_fold=False)
    np.testing.assert_allclose(mine.select(folds[0].ids).values[:, 2:], scored, atol=1e-6)


def test_an_experiment_predicted_otherwise_is_re_predicted_and_refused_until_then(
    corrected, demo_data, tmp_path: Path
):
    """A fold whose prediction hash is not the config's: the experiment is re-predicted
    (never retrained), and predict.py refuses it until then."""
    exp, config = corrected["dark"], corrected["config"]
    assert experiment_state(exp.parent, config, demo_data) == "complete"
    shutil.copytree(exp, tmp_path / exp.name)
    done_path = tmp_path / exp.name / "folds" / "fold1" / "done.json"
    done = json.loads(done_path.read_text())
    other = dict(config, predict={**config["predict"], "tta": 2})
    done_path.write_text(json.dumps({**done, "prediction": prediction_hash(other)}))
    assert experiment_state(tmp_path, config, demo_data) == "repredict"
    with pytest.raises(ArtifactError, match=r"folds \[1\] were predicted"):
        Predictor.load(tmp_path / exp.name, device="cpu")
