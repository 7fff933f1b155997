"""Each entry point's own table of bad input, tried as a new user would: unknown names,
out-of-range numbers, damaged or partial artifacts. Each answers with one ``error:`` line that
names the file or value and the problem, exit status 2, no traceback, nothing half-written.
(Data and prediction files: test_bad_input.py.)
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, run_cli
from test_bad_input import _experiments, _train

from landcover.constants import CLASSES
from landcover.tables import write_proportions

pytestmark = pytest.mark.slow  # trains models or runs commands: tests/run.sh --quick skips it

Setup = Callable[[Path], list[str]]


def _damage(relative: str, text: str) -> Callable[[Path], list[str]]:
    """Two synthetic experiments, one of their files overwritten with ``text``."""

    def setup(d: Path) -> list[str]:
        argv = _experiments(d)
        (d / "oof" / relative).write_text(text)
        return argv

    return setup


def _named(d: Path, names: str) -> list[str]:
    return [*_experiments(d), "--experiments", names]


def _no_test_csv(d: Path) -> list[str]:
    argv = _named(d, "a,b")
    (d / "oof" / "b" / "test.csv").unlink()
    return argv


BLEND: dict[str, tuple[Setup, str]] = {
    "unknown experiment": (lambda d: _named(d, "a,zz"), "no complete experiment named ['zz']"),
    "named experiment without test.csv": (_no_test_csv, "no complete experiment named ['b']"),
    "corrupt meta.json": (_damage("b/meta.json", "{not json"), "b/meta.json: unreadable"),
    "meta.json not an object": (_damage("a/meta.json", "[1, 2]"), "a/meta.json: expected"),
    "corrupt config.yaml": (_damage("b/config.yaml", "a: [1"), "b/config.yaml: unreadable"),
    "out not a csv": (lambda d: [*_experiments(d)[:-1], str(d / "x.txt")], "must end in .csv"),
}


def _train_folds(d: Path, folds: str) -> list[str]:
    return [*_train(d, "data.n_folds=3", "train.epochs=1"), "--folds", folds, "--smoke"]


def _status_after_damage(d: Path) -> list[str]:
    exp = d / "oof" / "unet_regnety_002"
    exp.mkdir(parents=True)
    for name in ("oof.csv", "test.csv", "config.yaml", "scores.json"):
        (exp / name).write_text("x")
    (exp / "meta.json").write_text("{broken")
    return [*_train(d, "data.n_folds=3"), "--smoke", "--status"]


TRAIN: dict[str, tuple[Setup, str]] = {
    "fold beyond the plan": (lambda d: _train_folds(d, "1,7"), "folds [7] do not exist"),
    "fold not a number": (lambda d: _train_folds(d, "one"), "expected comma-separated fold"),
    "unknown profile": (
        lambda d: ["src/train.py", "--check", "--profile", "nope"],
        "unknown profile 'nope'",
    ),
    "unknown experiment in --check": (
        lambda d: [
            "src/train.py",
            "--check",
            "--experiments",
            "unet_regnety_002,nope",
            "--profile",
            "demo",
        ],
        "nope.yaml: config file not found",
    ),
    "unknown model kind": (lambda d: _train(d, "model.kind=xgboost"), "'model.kind' must be one"),
    "unknown fold scheme": (lambda d: _train(d, "data.scheme=random"), "'data.scheme' must be"),
    "negative buffer": (lambda d: _train(d, "data.buffer_rows=-1"), "'data.buffer_rows' must"),
    "buffer leaves no training": (
        lambda d: _train(d, "data.n_folds=3", "data.buffer_rows=4"),
        "no training patch left after the buffer",
    ),
    "damaged experiment": (_status_after_damage, "meta.json: unreadable"),
}


def _submission(d: Path, change: Callable[[pd.DataFrame], pd.DataFrame]) -> list[str]:
    ids = pd.read_csv(d / "data" / "test_images.csv")["sample_id"].to_numpy()
    values = np.random.default_rng(0).dirichlet(np.ones(10), size=len(ids))
    write_proportions(d / "sub.csv", ids, values)
    change(pd.read_csv(d / "sub.csv")).to_csv(d / "sub.csv", index=False)
    return ["src/score.py", "--check-submission", str(d / "sub.csv"), "--data", str(d / "data")]


SCORE: dict[str, tuple[Setup, str]] = {
    "columns out of order": (
        lambda d: _submission(d, lambda f: f[["sample_id", *reversed(CLASSES)]]),
        "columns must be ['sample_id', 'no_data'",
    ),
    "8 columns only": (
        lambda d: _submission(d, lambda f: f.drop(columns=["no_data", "clouds"])),
        "columns must be",
    ),
    "a test id missing": (lambda d: _submission(d, lambda f: f.iloc[1:]), "missing sample_id"),
    "row not summing to 1": (
        lambda d: _submission(d, lambda f: f.assign(water=f.water + 0.5)),
        "row sums to",
    ),
    "no such data folder": (
        lambda d: [*_submission(d, lambda f: f)[:-1], str(d / "nowhere")],
        "nowhere: data folder not found",
    ),
}


def _raster(d: Path, bands: int = 4, crs: str | None = "EPSG:32631") -> Path:
    import rasterio
    from rasterio.transform import from_origin

    path = d / "scene.tif"
    profile = {"driver": "GTiff", "width": 64, "height": 64, "count": bands, "dtype": "uint16",
               "crs": crs, "transform": from_origin(500_000, 5_000_000, 10, 10)}  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.full((bands, 64, 64), 500, dtype=np.uint16))
    return path


def _sites(d: Path, x: float, crs: bool = True) -> Path:
    """One square field; without a CRS it is a GeoPackage (GeoJSON always has one: WGS 84)."""
    import geopandas as gpd
    from shapely import box

    frame = gpd.GeoDataFrame(
        {"id": ["field"]},
        geometry=[box(x, 4_999_800, x + 100, 4_999_900)],
        crs="EPSG:32631" if crs else None,
    )
    path = d / ("sites.geojson" if crs else "sites.gpkg")
    frame.to_file(path)
    return path


def _predict(d: Path, *extra: str, model: str = "oof/x", raster: Path | None = None):
    scene = raster or _raster(d)
    return ["src/predict.py", "--model", str(d / model), "--input", str(scene),
            "--out", str(d / "map.tif"), *extra]  # fmt: skip


def _not_a_raster(d: Path) -> list[str]:
    (d / "fake.tif").write_text("not an image")
    return _predict(d, raster=d / "fake.tif")


PREDICT: dict[str, tuple[Setup, str]] = {
    "no such model": (lambda d: _predict(d), "not a submission sidecar (<name>.json), a"),
    "no such sidecar": (lambda d: _predict(d, model="s.json"), "s.json: submission sidecar not"),
    "band out of range": (lambda d: _predict(d, "--bands", "1,2,3,7"), "asks for band 7"),
    "three bands": (lambda d: _predict(d, "--bands", "1,2,3"), "must name 4 bands"),
    "too few bands in the raster": (
        lambda d: _predict(d, raster=_raster(d, bands=3)),
        "has 3 band(s)",
    ),
    "not a raster": (_not_a_raster, "fake.tif: not a raster GDAL can read"),
    "polygons without a CRS": (
        lambda d: _predict(
            d, "--sites", str(_sites(d, 500_100, crs=False)), "--proportions", str(d / "p.csv")
        ),
        "the polygons have no CRS",
    ),
    "polygon outside the raster": (
        lambda d: _predict(
            d, "--sites", str(_sites(d, 600_000)), "--proportions", str(d / "p.csv")
        ),
        "polygon field lies outside the raster",
    ),
    "grid on a raster without CRS": (
        lambda d: _predict(
            d, "--grid", "100", "--proportions", str(d / "p.csv"), raster=_raster(d, crs=None)
        ),
        "--grid needs a projected CRS",
    ),
    "map not a GeoTIFF": (
        lambda d: [*_predict(d)[:-2], "--out", str(d / "map.png")],
        "written as a GeoTIFF",
    ),
}

TABLES = {
    **{f"blend.py: {k}": v for k, v in BLEND.items()},
    **{f"train.py: {k}": v for k, v in TRAIN.items()},
    **{f"score.py --check-submission: {k}": v for k, v in SCORE.items()},
    **{f"predict.py: {k}": v for k, v in PREDICT.items()},
}


@pytest.mark.parametrize("name", sorted(TABLES))
def test_entry_point_answers_bad_input_in_one_line(name: str, demo_dir: Path, tmp_path: Path):
    shutil.copytree(demo_dir, tmp_path / "data")
    setup, message = TABLES[name]
    result = run_cli(*setup(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert message in errors[0], errors[0]
    assert not (tmp_path / "sub.json").exists()  # nothing half-written
    assert not (tmp_path / "map.tif").exists() and not (tmp_path / "p.csv").exists()
    assert not list((tmp_path / "oof").glob("unet*/oof.csv")) or "damaged" in name


def test_a_valid_submission_passes_the_check(demo_dir: Path, tmp_path: Path):
    shutil.copytree(demo_dir, tmp_path / "data")
    result = run_cli(*_submission(tmp_path, lambda f: f))
    assert result.returncode == 0, result.stderr
    assert "6 rows, the ids of x_test, rows sum to 1" in result.stdout


def test_blend_names_an_incomplete_experiment_it_leaves_out(tmp_path: Path):
    argv = _experiments(tmp_path)
    (tmp_path / "oof" / "c").mkdir()
    (tmp_path / "oof" / "c" / "oof.csv").write_text("sample_id\n")
    result = run_cli(*argv)
    assert result.returncode == 0, result.stderr
    assert "warning:" in result.stderr and "oof/c is not a complete experiment" in result.stderr
    assert "'test.csv'" in result.stderr
    assert json.loads((tmp_path / "sub.json").read_text())["n_oof"] == 20


RUN_ALL: dict[str, tuple[list[str], str]] = {
    "unknown profile": (["--profile", "nope", "--smoke"], "unknown profile 'nope'"),
    "unknown experiment": (["--experiments", "zz", "--smoke"], "zz.yaml: config file not found"),
    "option without its value": (["--profile"], "option --profile needs a value"),
    "trials not a number": (["--trials", "many"], "--trials must be a positive integer"),
    "unknown option": (["--fast"], "unknown option '--fast'"),
    "config override with an unknown key": (
        ["--smoke", "--set", "train.epoch=2"],
        "unknown key 'train.epoch'",
    ),
}


@pytest.mark.parametrize("name", sorted(RUN_ALL))
def test_run_all_answers_bad_options_in_one_line(name: str):
    args, message = RUN_ALL[name]
    result = subprocess.run(
        [str(REPO / "run_all.sh"), *args], capture_output=True, text=True, timeout=300, cwd=REPO
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr
