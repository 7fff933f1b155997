"""predict.align: a region's radiometry mapped onto the training region's by per-band quantiles,
in the fold loop (validation and test regions), in predict.py and on scenes; predict.dark_level:
a patch's dark level brought within the training patches', before the region's quantiles are
read."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from landcover.align import (
    ANCHORS,
    MIN_PATCHES,
    FoldRadiometry,
    RegionSample,
    affine_fit,
    band_quantiles,
    beyond_spread,
    corrections,
    dark_bound,
    dark_corrected,
    dark_levels,
    pixel_quantiles,
    region_map,
    regions,
    training_spread,
)
from landcover.config import _hash, load_config, prediction_hash
from landcover.constants import CLASSES
from landcover.errors import ArtifactError, ConfigError
from landcover.experiment import experiment_state, run_experiment
from landcover.predictor import Member, Predictor
from landcover.shift import SHIFTS, shifted
from landcover.tables import read_proportions
from landcover.tiff import read_image, write_image

SETTINGS = {
    "predict": {"tta": 1, "align": True},
    "data": {"n_folds": 2},
    "gbm": {"n_estimators": 10, "pixels_per_image": 64},
    "run": {"threads": 1, "device": "cpu"},
}


def _images(n: int = 24, size: int = 32, seed: int = 0) -> np.ndarray:
    """Skewed, band-correlated reflectances, like fields and woods (x 1e4)."""
    rng = np.random.default_rng(seed)
    base = rng.gamma(2.0, 500.0, size=(n, 1, size, size))
    return (base * np.array([0.5, 0.8, 0.6, 2.0])[None, :, None, None] + 80).astype(np.uint16)


def test_the_fit_recovers_a_per_band_gain_and_offset():
    x = _images()
    gain, offset = np.array([0.9, 1.1, 1.05, 0.8]), np.array([120.0, -30.0, 0.0, 250.0])
    y = x * gain[:, None, None] + offset[:, None, None]
    g, b = affine_fit(band_quantiles(x), band_quantiles(y))
    np.testing.assert_allclose(g, gain, rtol=2e-3)
    np.testing.assert_allclose(b, offset, atol=3.0)


@pytest.mark.parametrize("kind", [k for k in SHIFTS if k != "none"])
def test_a_change_shared_by_the_region_is_undone(kind: str):
    """Every change of the shift test is per-band affine: drawn once for the region, the
    alignment maps the region back to within a few units of reflectance x 1e4, where the
    change moved it by tens to hundreds."""
    x = _images()
    changed = shifted(x, np.arange(len(x)), kind, region=7)
    back = FoldRadiometry(reference=band_quantiles(x)).prepared(changed)
    moved = np.abs(changed.astype(float) - x).mean()
    assert moved > 25, kind
    assert np.abs(back.astype(float) - x).mean() < 2.0, kind


def test_a_region_draw_is_shared_and_a_patch_draw_is_not():
    x = _images(n=6) + 100  # nothing clipped
    per_region = shifted(x, np.arange(6), "gain", region=3).astype(float) / x
    per_patch = shifted(x, np.arange(6), "gain").astype(float) / x
    band_gain = per_region.mean(axis=(2, 3))  # (n, 4): one gain a band, the same for all
    assert np.ptp(band_gain, axis=0).max() < 2e-3
    assert np.ptp(per_patch.mean(axis=(2, 3)), axis=0).max() > 0.02


def test_regions_are_runs_of_rows_and_small_runs_join_a_neighbour():
    width = 10
    first = np.arange(1, 1 + 3 * width)  # rows 0-2
    second = np.arange(1 + 20 * width, 1 + 22 * width)  # rows 20-21, a gap before
    stray = np.array([1 + 40 * width])  # one patch, far below
    ids = np.concatenate([second, stray, first])
    found = regions(ids, width)
    assert [sorted(ids[r].tolist()) for r in found] == [
        first.tolist(),
        sorted([*second.tolist(), *stray.tolist()]),
    ]
    assert len(stray) < MIN_PATCHES
    small = np.arange(1, 6)  # one small run alone is still one region
    assert [r.tolist() for r in regions(small, width)] == [list(range(5))]


def test_each_region_is_aligned_on_its_own():
    x = np.concatenate([_images(n=20)] * 2)  # the same ground twice: one reference fits both
    ids = np.concatenate([np.arange(1, 21), np.arange(201, 221)])  # two runs, width 10
    changed = x.astype(float)
    changed[:20] *= 1.12
    changed[20:] += 200
    changed = changed.astype(np.uint16)
    radiometry = FoldRadiometry(reference=band_quantiles(x))
    back = radiometry.regions_prepared(changed, ids, 10)
    assert np.abs(back.astype(float) - x).mean() < 3.0
    one = radiometry.prepared(changed)  # the two as one region: not undone
    assert np.abs(one.astype(float) - x).mean() > 3 * np.abs(back.astype(float) - x).mean()


def test_align_is_a_boolean_or_beyond_spread():
    with pytest.raises(ConfigError, match=r"predict\.align"):
        load_config("pixel_lightgbm", profile="demo", overrides={"predict": {"align": "yes"}})
    config = load_config(
        "pixel_lightgbm", profile="demo", overrides=["predict.align=beyond_spread"]
    )
    assert config["predict"]["align"] == "beyond_spread"


def test_beyond_spread_corrects_only_the_excess():
    """A spread of 0 keeps the full map; a spread larger than the correction keeps the region
    as it is; in between, the region is moved until it is exactly the spread away at the
    anchors, in the direction it came from."""
    x = _images()
    reference = band_quantiles(x)
    changed = (x * np.array([0.9, 1.1, 1.05, 0.8])[:, None, None] + 60).astype(np.uint16)
    gain, offset = affine_fit(band_quantiles(changed), reference)
    moved = corrections(gain, offset, reference)
    np.testing.assert_allclose(beyond_spread(gain, offset, reference, 0 * moved), (gain, offset))
    g, b = beyond_spread(gain, offset, reference, np.abs(moved) + 1)
    np.testing.assert_allclose(g, 1, atol=1e-12)
    np.testing.assert_allclose(b, 0, atol=1e-9)
    spread = np.abs(moved) / 3
    g, b = beyond_spread(gain, offset, reference, spread)
    left = corrections(
        *affine_fit(band_quantiles(changed) * g[:, None] + b[:, None], reference), reference
    )
    np.testing.assert_allclose(left, np.sign(moved) * spread, rtol=1e-6, atol=1e-6)
    assert (np.abs(moved) > 20).any()  # the change was worth correcting
    assert region_map(band_quantiles(changed), reference)[0] == pytest.approx(gain)


def test_the_natural_spread_is_what_the_training_rows_differ_by():
    """Training rows whose radiometry differs by up to 4% give a spread of that order; a region
    within it is kept as it is, a region changed far beyond it is brought back to it."""
    width, x = 20, _images(n=100, seed=3)  # five raster rows of 20 patches
    row_gain = np.repeat([0.96, 0.98, 1.0, 1.02, 1.04], width).astype(float)
    rows = (x * row_gain[:, None, None, None]).astype(np.uint16)
    ids = np.arange(1, 101)
    reference = band_quantiles(rows)
    spread = training_spread(rows, np.arange(100), ids, width, reference)
    assert spread.shape == (4, len(ANCHORS))
    top = reference[:, ANCHORS[1]]
    assert (spread[:, 1] > 0.02 * top).all() and (spread[:, 1] < 0.06 * top).all(), spread
    region = _images(n=20, seed=9)
    within = (region * 1.01).astype(np.uint16)
    beyond, ids = FoldRadiometry(reference=reference, spread=spread), np.arange(1, 21)
    kept = beyond.regions_prepared(within, ids, width)
    np.testing.assert_array_equal(kept, within)
    far = (region * 1.3).astype(np.uint16)
    back = beyond.regions_prepared(far, ids, width)
    full = FoldRadiometry(reference=reference).regions_prepared(far, ids, width)
    ratio = back.astype(float).mean() / region.astype(float).mean()
    assert 1.0 < ratio < 1.08 and np.abs(full.astype(float) / region.mean() - 1).mean() < 1.0


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


def test_the_dark_level_switch_off_keeps_earlier_experiments_hashes():
    """predict.dark_level came later: off, an experiment's prediction hash is what it was; on,
    its revision (2: before the region's alignment) is part of it, so that an experiment
    predicted the earlier way is re-predicted."""
    config = load_config("pixel_lightgbm", profile="demo", overrides=SETTINGS)
    assert config["predict"]["dark_level"] is False
    before = dict(config, predict={k: v for k, v in config["predict"].items() if k != "dark_level"})
    assert prediction_hash(config) == prediction_hash(before)
    on = dict(config, predict={**config["predict"], "dark_level": True})
    assert prediction_hash(on) != prediction_hash(config)
    assert prediction_hash(on) != _hash(on["predict"])  # the hash before the revision


def _shifted_region(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """A region of 20 patches (two raster rows of 10) as it is, and with residual path
    radiance that differs from patch to patch: 0 to 400 in every band."""
    clean = _images(n=20, seed=seed)
    offsets = np.linspace(0, 400, 20)[:, None, None, None]
    return clean, np.clip(clean + offsets, 1, 65535).astype(np.uint16)


def test_a_region_is_read_after_each_patch_dark_level_and_predictor_matches_the_fold_loop():
    """The fold loop's order (each patch's dark level first, then the region's map from the
    corrected patches' quantiles) is what ``Predictor.inputs`` gives, from the images at hand
    or from a ``RegionSample`` read in chunks; and under offsets that differ patch to patch it
    brings the region nearer its clean radiometry than the other order does."""
    train = _images(n=60, seed=1)
    bound, reference = dark_bound(train, np.arange(60)), band_quantiles(train)
    clean, region = _shifted_region()
    ids, where = np.arange(1, 21), np.arange(20)
    np.testing.assert_array_equal(  # the region's quantiles after the correction, read raw
        RegionSample.of_images(region).quantiles(bound),
        band_quantiles(dark_corrected(region, bound)),
    )
    aligning = FoldRadiometry(reference=reference)
    first = aligning.regions_prepared(dark_corrected(region, bound), ids, 10, where)
    radiometry = FoldRadiometry(bound, reference)
    np.testing.assert_array_equal(radiometry.regions_prepared(region, ids, 10), first)
    member = Member("m", Path("m"), {}, {}, 1.0, 1.0, [None], [radiometry])
    predictor = Predictor([member], 0.0, np.zeros(8), Path("m"))
    np.testing.assert_array_equal(predictor.inputs(member, 0, region), first)
    with predictor.region_of(RegionSample.of([region[:7], region[7:]])):
        np.testing.assert_array_equal(predictor.inputs(member, 0, region), first)
    after = dark_corrected(aligning.regions_prepared(region, ids, 10), bound)
    error = {
        n: np.abs(x.astype(float) - clean).mean() for n, x in (("first", first), ("after", after))
    }
    assert error["first"] < 0.8 * error["after"], error


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


def test_a_scene_region_is_cut_into_windows_each_with_its_dark_level():
    """A scene's decimated pixels, cut into cells a window's size: as they are, the quantiles
    of every valid pixel; with a bound, a cell above it lowered by its excess alone."""
    rng = np.random.default_rng(5)
    pixels = (rng.gamma(2.0, 400.0, size=(4, 64, 64)) + 60).astype(np.uint16)
    pixels[:, :32, 32:] += 300  # one window's worth of hazier ground
    valid = np.ones((64, 64), dtype=bool)
    valid[60:, :] = False  # nodata along the bottom
    sample = RegionSample.of_scene(pixels, valid, 32)
    assert len(sample.grids) == 4
    np.testing.assert_array_equal(sample.quantiles(), pixel_quantiles(pixels[:, valid]))
    bound = np.percentile(pixels[:, :32, :32].reshape(4, -1), 1.0, axis=1) + 20
    cells = [pixels[:, y : y + 32, x : x + 32] for y in (0, 32) for x in (0, 32)]
    masks = [valid[y : y + 32, x : x + 32] for y in (0, 32) for x in (0, 32)]
    expected = [c[:, m] for c, m in zip(cells, masks, strict=True)]
    assert (sample.levels[1] > bound).all() and (sample.levels[0] < bound).all()
    excess = sample.levels[1] - bound
    expected[1] = np.clip(np.rint(expected[1] - excess[:, None].astype(np.float32)), 1, 65535)
    np.testing.assert_array_equal(
        sample.quantiles(bound), pixel_quantiles(np.concatenate(expected, axis=1))
    )


@pytest.fixture(scope="module")
def experiments(demo_data, tmp_path_factory) -> dict:
    """pixel_lightgbm trained on the generated data, predicting aligned, and the same fold
    models re-predicting as they are (predict settings only: nothing retrained)."""
    tmp = tmp_path_factory.mktemp("align")
    config = load_config("pixel_lightgbm", profile="demo", overrides=SETTINGS)
    exp = run_experiment(config, demo_data, oof_dir=tmp / "aligned", log=lambda _: None)
    done = [json.loads((exp / "folds" / f"fold{k}" / "done.json").read_text()) for k in (0, 1)]
    plain_cfg = load_config(
        "pixel_lightgbm", profile="demo", overrides={**SETTINGS, "predict": {"tta": 1}}
    )
    plain_dir = tmp / "plain"
    shutil.copytree(exp, plain_dir / exp.name)
    logs: list[str] = []
    plain = run_experiment(plain_cfg, demo_data, oof_dir=plain_dir, log=logs.append)
    return {"aligned": exp, "plain": plain, "done": done, "logs": logs}


@pytest.fixture(scope="module")
def spread_run(tmp_path_factory) -> dict:
    """pixel_lightgbm predicting beyond the spread, then each patch's dark level brought within
    the training patches', on generated data of enough raster rows (150 training patches, 13 a
    row) for a fold's training ground to hold several rows of 16 patches, and the same fold
    models re-predicting aligned all the way."""
    from landcover.cache import prepare_data
    from landcover.demo import make_demo_dataset

    tmp = tmp_path_factory.mktemp("spread")
    source = make_demo_dataset(tmp / "data", n_train=150, n_test=12, size=32)
    data = prepare_data(source, cache_dir=tmp / "cache", workers=2)
    settings = {**SETTINGS, "predict": {"tta": 1, "align": "beyond_spread", "dark_level": True}}
    config = load_config("pixel_lightgbm", profile="demo", overrides=settings)
    exp = run_experiment(config, data, oof_dir=tmp / "spread", log=lambda _: None)
    shutil.copytree(exp, tmp / "full" / exp.name)
    full_cfg = load_config("pixel_lightgbm", profile="demo", overrides=SETTINGS)
    full = run_experiment(full_cfg, data, oof_dir=tmp / "full", log=lambda _: None)
    return {"spread": exp, "full": full, "source": source, "config": config, "data": data}


def test_folds_record_their_training_radiometry_and_predict_aligned(experiments, demo_data):
    for record in experiments["done"]:
        reference = np.asarray(record["align_reference"])
        assert reference.shape == (4, 49) and (np.diff(reference, axis=1) >= 0).all()
    assert any("re-predicting, no training" in line for line in experiments["logs"])
    plain_done = experiments["plain"] / "folds" / "fold0" / "done.json"
    assert "align_reference" not in json.loads(plain_done.read_text())
    aligned_oof = read_proportions(experiments["aligned"] / "oof.csv", allow_fold=True)
    plain_oof = read_proportions(experiments["plain"] / "oof.csv", allow_fold=True)
    assert not np.allclose(aligned_oof.values, plain_oof.values, atol=1e-6)


def test_beyond_spread_folds_record_their_spread_and_predict_py_reproduces_them(
    spread_run, tmp_path: Path
):
    """Re-predicted beyond the spread (nothing retrained), each fold records its training
    rows' natural spread beside its reference, and its training patches' dark level; predict.py
    maps and corrects the test patches as the pipeline did."""
    exp = spread_run["spread"]
    for k in (0, 1):
        record = json.loads((exp / "folds" / f"fold{k}" / "done.json").read_text())
        assert np.asarray(record["align_reference"]).shape == (4, 49)
        spread = np.asarray(record["align_spread"])
        assert spread.shape == (4, len(ANCHORS)) and (spread >= 0).all() and spread.any()
        assert np.asarray(record["dark_bound"]).shape == (4,)
    folds = [
        read_proportions(exp / "test_folds" / f"fold{k}.csv", allow_fold=False) for k in (0, 1)
    ]
    scored = np.mean([f.values[:, 2:] / f.values[:, 2:].sum(1, keepdims=True) for f in folds], 0)
    mine = _predict(exp, spread_run["source"], tmp_path / "again.csv")
    np.testing.assert_allclose(mine.select(folds[0].ids).values[:, 2:], scored, atol=1e-6)
    aligned_oof = read_proportions(spread_run["full"] / "oof.csv", allow_fold=True)
    spread_oof = read_proportions(exp / "oof.csv", allow_fold=True)
    assert not np.allclose(aligned_oof.values, spread_oof.values, atol=1e-6)


def test_an_experiment_predicted_before_a_revision_is_re_predicted(spread_run, tmp_path: Path):
    """Same settings, but a fold whose prediction hash predates the dark level's revision: the
    experiment is re-predicted (never retrained), and predict.py refuses it until then; as
    recorded now, complete."""
    exp, config, data = spread_run["spread"], spread_run["config"], spread_run["data"]
    assert experiment_state(exp.parent, config, data) == "complete"
    shutil.copytree(exp, tmp_path / exp.name)
    done_path = tmp_path / exp.name / "folds" / "fold1" / "done.json"
    done = json.loads(done_path.read_text())
    first_build = dict(config["predict"])  # the hash as the first build made it: no revision
    done_path.write_text(json.dumps({**done, "prediction": _hash(first_build)}))
    assert experiment_state(tmp_path, config, data) == "repredict"
    with pytest.raises(ArtifactError, match=r"folds \[1\] were predicted by an earlier working"):
        Predictor.load(tmp_path / exp.name, device="cpu")  # predict.py: not silently otherwise


def _predict(model: Path, source: Path, out: Path) -> np.ndarray:
    result = run_cli(
        "src/predict.py", "--model", str(model), "--input", str(source), "--out", str(out),
        "--device", "cpu",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return read_proportions(out, require_sum_to_one=True, allow_fold=False)


def test_predict_py_aligns_as_the_pipeline_and_holds_under_a_regional_change(
    experiments, demo_dir: Path, tmp_path: Path
):
    """predict.py reproduces the aligned experiment's test predictions (each fold model's,
    on the classes scored, averaged: an experiment applied alone drops no_data and clouds);
    on the test patches
    under one per-band gain and offset for them all, the aligned member barely moves where
    the same fold models predicting as they are move several times as much."""
    aligned_exp, plain_exp = experiments["aligned"], experiments["plain"]
    folds = [
        read_proportions(aligned_exp / "test_folds" / f"fold{k}.csv", allow_fold=False)
        for k in (0, 1)
    ]
    theirs = folds[0]
    scored = np.mean([f.values[:, 2:] / f.values[:, 2:].sum(1, keepdims=True) for f in folds], 0)
    mine = _predict(aligned_exp, demo_dir, tmp_path / "again.csv")
    np.testing.assert_allclose(mine.select(theirs.ids).values[:, 2:], scored, atol=1e-6)

    changed_dir = tmp_path / "changed"
    gain, offset = np.array([1.12, 0.9, 1.08, 0.88])[:, None, None], 150.0
    for sample_id in theirs.ids.tolist():
        image = read_image(demo_dir / "dataset" / "test" / "images" / f"{sample_id}.tif", sample_id)
        write_image(
            changed_dir / f"{sample_id}.tif",
            np.clip(image * gain + offset, 1, 65535).astype(np.uint16),
        )
    moved = {}
    for name, exp in (("aligned", aligned_exp), ("plain", plain_exp)):
        clean = _predict(exp, demo_dir, tmp_path / f"{name}_clean.csv")
        shift = _predict(exp, changed_dir, tmp_path / f"{name}_changed.csv")
        moved[name] = np.abs(shift.select(clean.ids).values - clean.values).mean()
    assert moved["aligned"] * 3 < moved["plain"], moved


def _scene(path: Path, images: list[np.ndarray]) -> Path:
    import rasterio
    from rasterio.transform import from_origin

    scene = np.concatenate(images, axis=2)
    profile = {
        "driver": "GTiff", "width": scene.shape[2], "height": scene.shape[1], "count": 4,
        "dtype": "uint16", "crs": "EPSG:32631", "transform": from_origin(500_000, 5e6, 10, 10),
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(scene)
    return path


def test_a_scene_is_its_own_region(experiments, demo_dir: Path, tmp_path: Path):
    """On a raster, an aligned member maps the whole scene by its own quantiles: the same
    scene under one per-band gain gives nearly the same proportions, where the same fold
    models predicting as they are move several times as much."""
    folder = demo_dir / "dataset" / "test" / "images"
    tiles = [read_image(p, int(p.stem)) for p in sorted(folder.glob("*.tif"))[:4]]
    gain = np.array([1.1, 0.92, 1.06, 0.9])[:, None, None]
    changed = [np.clip(t * gain, 1, 65535).astype(np.uint16) for t in tiles]
    found = {}
    for exp in ("aligned", "plain"):
        for name, images in (("clean", tiles), ("changed", changed)):
            scene = _scene(tmp_path / f"{name}.tif", images)
            out, table = tmp_path / f"{exp}_{name}_map.tif", tmp_path / f"{exp}_{name}.csv"
            result = run_cli(
                "src/predict.py", "--model", str(experiments[exp]), "--input", str(scene),
                "--out", str(out), "--proportions", str(table), "--device", "cpu",
                "--overlap", "8",
            )  # fmt: skip
            assert result.returncode == 0, result.stderr
            found[exp, name] = pd.read_csv(table)[list(CLASSES[2:])].to_numpy()
    moved = {e: np.abs(found[e, "clean"] - found[e, "changed"]).max() for e in ("aligned", "plain")}
    assert moved["aligned"] < 0.002 and moved["aligned"] * 5 < moved["plain"], moved
