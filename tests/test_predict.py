"""predict.py: a trained blend applied to new patches and to a real mosaic of the shared sample
(2x2 neighbouring tiles stitched into one georeferenced scene)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from conftest import run_cli
from rasterio.transform import from_origin

from landcover.blend_inputs import load_inputs
from landcover.blend_model import BlendParams
from landcover.blend_outputs import write_outputs
from landcover.blend_tuning import fit_blend
from landcover.tables import read_proportions
from landcover.tiff import read_image

pytestmark = pytest.mark.slow  # trains models or runs commands: tests/run.sh --quick skips it

pytest_plugins = ("demo_blend",)  # the session's trained demo blend: the ``blend`` fixture


def test_patches_reproduce_the_blends_own_submission(blend: Path, demo_dir: Path, tmp_path):
    out = tmp_path / "again.csv"
    result = run_cli(
        "src/predict.py", "--model", str(blend.with_suffix(".json")), "--input", str(demo_dir),
        "--out", str(out), "--device", "cpu",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == str(out)
    mine = read_proportions(out, require_sum_to_one=True, allow_fold=False)
    theirs = read_proportions(blend, require_sum_to_one=True, allow_fold=False)
    np.testing.assert_allclose(mine.select(theirs.ids).values, theirs.values, rtol=0, atol=1e-6)


def mosaic(sample_dir: Path, path: Path, top_left: int = 1, rows: int = 2) -> list[int]:
    """Tiles top_left, +1 (and below them, +45, +46: the tile below is id + 45) as one
    georeferenced GeoTIFF of 256 * rows x 512 pixels."""
    from demo_blend import ORIGIN

    ids = [top_left + 45 * r + c for r in range(rows) for c in range(2)]
    images = [read_image(sample_dir / "dataset/train/images" / f"{i}.tif", i) for i in ids]
    scene = np.block([[images[2 * r], images[2 * r + 1]] for r in range(rows)])
    profile = {
        "driver": "GTiff", "width": 512, "height": 256 * rows, "count": 4, "dtype": "uint16",
        "crs": "EPSG:32631", "transform": from_origin(*ORIGIN, 10, 10),
    }  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(scene)
    return ids


def run_scene(blend: Path, scene: Path, out: Path, *extra: str) -> Path:
    """predict.py in this process (the CLI itself runs in the patches test)."""
    from predict import main

    main(["--model", str(blend.with_suffix(".json")), "--input", str(scene), "--out", str(out),
          "--device", "cpu", *extra])  # fmt: skip
    return out


@pytest.fixture(scope="module")
def mapped(blend: Path, sample_dir: Path, tmp_path_factory) -> dict:
    """The mosaic mapped with 256 px windows (its tiles' size) overlapping by 64 px, with
    proportions per 2,560 m grid cell (one cell per tile); and its tiles as patches."""
    tmp = tmp_path_factory.mktemp("scene")
    ids = mosaic(sample_dir, tmp / "mosaic.tif")
    cells = ("--window", "256", "--overlap", "64", "--grid", "2560")
    run_scene(
        blend, tmp / "mosaic.tif", tmp / "map.tif", *cells,
        "--proportions", str(tmp / "cells.csv"), "--probabilities",
    )  # fmt: skip
    patches = tmp / "patches"
    (patches / "test/images").mkdir(parents=True)
    for i in ids:
        src = sample_dir / "dataset/train/images" / f"{i}.tif"
        (patches / "test/images" / f"{i}.tif").write_bytes(src.read_bytes())
    run_scene(blend, patches, tmp / "patches.csv")
    return {"tmp": tmp, "ids": ids, "blend": blend, "sample_dir": sample_dir}


def test_the_map_is_georeferenced_complete_and_paletted(mapped: dict):
    with (
        rasterio.open(mapped["tmp"] / "map.tif") as src,
        rasterio.open(mapped["tmp"] / "mosaic.tif") as ref,
    ):
        assert src.crs == ref.crs and src.transform == ref.transform
        assert src.shape == (512, 512) and src.dtypes == ("uint8",)
        classes = src.read(1)
        assert classes.max() <= 9  # every pixel predicted, no nodata in this scene
        assert src.colormap(1)[2][:3] == (0xDB, 0x1E, 0x2A)  # artificial's palette colour
        assert src.tags(1)["2"] == "artificial"
        assert src.profile["compress"].lower() == "deflate"
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"


def column_jumps(path: Path) -> np.ndarray:
    """Mean absolute change of the class probabilities from each column to the next."""
    with rasterio.open(path) as src:
        probs = src.read().astype(np.float64) / 255
    return np.abs(np.diff(probs, axis=2)).mean(axis=(0, 1))


def test_overlapping_windows_leave_no_seams(mapped: dict):
    """192 px windows: abutting ones (no overlap) meet at column 191|192, inside a tile, and
    leave an edge there; tapered ones (64 px overlap) change no faster there than anywhere.
    (Column 255|256 is the tiles' own boundary, an edge in the imagery itself.)"""
    tmp, scene = mapped["tmp"], mapped["tmp"] / "strip.tif"
    mosaic(mapped["sample_dir"], scene, rows=1)
    jumps = {}
    for overlap in ("0", "64"):
        out = tmp / f"seams{overlap}.tif"
        run_scene(mapped["blend"], scene, out, "--window", "192", "--overlap", overlap,
                  "--probabilities")  # fmt: skip
        jumps[overlap] = column_jumps(out.with_suffix(".probabilities.tif"))
    typical = np.median(jumps["64"])
    assert jumps["64"][191] < 1.5 * typical, (jumps["64"][191], typical)
    assert jumps["0"][191] > 2 * jumps["64"][191], (jumps["0"][191], jumps["64"][191])


def test_cells_agree_with_the_patch_predictions(mapped: dict):
    """Each 256 px cell of the mosaic is one sample patch: its proportions from the scene agree
    with the patch prediction, up to what the neighbouring windows change near its edges."""
    cells = pd.read_csv(mapped["tmp"] / "cells.csv").set_index("site")
    patches = read_proportions(mapped["tmp"] / "patches.csv")
    order = ["r0_c0", "r0_c1", "r1_c0", "r1_c1"]
    scene = cells.loc[order, list(patches.to_frame().columns[1:])].to_numpy()
    patch = patches.select(np.array(mapped["ids"])).values
    gap = np.abs(scene - patch).max()
    assert gap < 0.05, gap
    assert (cells["valid_pixels"] == 256 * 256).all()
    assert (cells["covered_m2"] == 256 * 256 * 100).all()


def test_a_polygon_over_one_tile_gives_that_tiles_cell(mapped: dict, blend: Path):
    tmp = mapped["tmp"]
    from demo_blend import ORIGIN

    x0, y0 = ORIGIN
    square = [[x0 + 2560, y0], [x0 + 5120, y0], [x0 + 5120, y0 - 2560], [x0 + 2560, y0 - 2560]]
    site = {"type": "Feature", "properties": {"id": "tile2"}, "geometry": {"type": "Polygon",
            "coordinates": [[*square, square[0]]]}}  # fmt: skip
    geojson = {"type": "FeatureCollection", "features": [site],
               "crs": {"type": "name", "properties": {"name": "EPSG:32631"}}}  # fmt: skip
    (tmp / "site.geojson").write_text(json.dumps(geojson))
    run_scene(
        blend, tmp / "mosaic.tif", tmp / "site_map.tif", "--window", "256", "--overlap", "64",
        "--sites", str(tmp / "site.geojson"), "--proportions", str(tmp / "site.csv"),
    )  # fmt: skip
    site_row = pd.read_csv(tmp / "site.csv").set_index("site").loc["tile2"]
    cell = pd.read_csv(tmp / "cells.csv").set_index("site").loc["r0_c1"]
    classes = [c for c in cell.index if c in site_row.index and c not in ("valid_pixels",)]
    classes = classes[: classes.index("water") + 1]
    np.testing.assert_allclose(
        site_row[classes].astype(float), cell[classes].astype(float), atol=1e-9
    )
    assert site_row["area_m2"] == pytest.approx(2560 * 2560)
    assert site_row["inside_share"] == pytest.approx(1.0)


def test_an_interrupted_map_leaves_no_file(mapped: dict, monkeypatch):
    from landcover.predictor import Predictor

    calls = []
    real = Predictor.pixel_probabilities

    def fail_later(self, member, fold, images, valid=None):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real(self, member, fold, images, valid)

    monkeypatch.setattr(Predictor, "pixel_probabilities", fail_later)
    tmp = mapped["tmp"]
    with pytest.raises(SystemExit):  # cli_errors: "interrupted", exit 130
        run_scene(mapped["blend"], tmp / "mosaic.tif", tmp / "cut.tif", "--window", "256",
                  "--probabilities", "--proportions", str(tmp / "cut.csv"))  # fmt: skip
    assert len(calls) == 4
    assert not [p.name for p in tmp.iterdir() if p.name.startswith(("cut", ".cut"))]


def test_shifts_are_seeded_physical_changes():
    from landcover.shift import SHIFTS, shifted

    images = np.random.default_rng(0).integers(200, 3000, size=(3, 4, 8, 8), dtype=np.uint16)
    ids = np.array([5, 6, 7])
    for kind in SHIFTS:
        a, b = shifted(images, ids, kind), shifted(images, ids, kind)
        assert np.array_equal(a, b) and a.dtype == np.uint16
    assert np.array_equal(shifted(images, ids, "none"), images)
    season = shifted(images, ids, "season").astype(float)
    assert (season[:, 3] < images[:, 3]).all() and (season[:, 2] > images[:, 2]).all()
    haze = shifted(images, ids, "haze").astype(float)
    assert np.abs(haze - 1600).mean() < np.abs(images.astype(float) - 1600).mean()


def test_the_shift_test_scores_every_member_and_the_blend(blend: Path, tmp_path: Path):
    """src/shift_test.py (radiometric) on a blend that leaves one member out: every member is
    scored (its clean column is its own OOF KL, predicted the same way), the blend's clean
    column is the blend's own OOF KL, and each change moves the scores; with ``--dark-level``
    and one draw a fold, the offset column is scored with each patch's dark level corrected."""
    from demo_blend import MEMBERS

    from landcover.metric import kl_divergence
    from landcover.predictor import Predictor

    inputs = load_inputs(blend.parents[1] / "oof")
    fit = fit_blend(inputs.oof, inputs.truth, inputs.folds, trials=2, seed=0)
    params = BlendParams(np.array([0.7, 0.3, 0.0]), np.array([0.9, 1.2, 1.0]), 0.0)
    csv = write_outputs(
        tmp_path / "left_out.csv", inputs, dataclasses.replace(fit, params=params), {}
    )
    sidecar = csv.with_suffix(".json")
    assert len(Predictor.load(sidecar, device="cpu").members) == 2
    every = Predictor.load(sidecar, device="cpu", every_member=True)
    assert [m.weight for m in every.members] == [0.7, 0.3, 0.0]
    out = tmp_path / "shift.json"
    result = run_cli(
        "src/shift_test.py", "--tests", "radiometric", str(sidecar), "--shifts", "none,gain,haze",
        "--threads", "1", "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    table = json.loads(out.read_text())["kl"]
    assert set(table) == {*MEMBERS, "blend"}
    for exp in json.loads(sidecar.read_text())["experiments"]:
        assert table[exp["name"]]["none"] == pytest.approx(exp["oof_kl"], rel=1e-6)
    blended = read_proportions(tmp_path / "left_out.oof.csv", allow_fold=True)
    blended = blended.select(inputs.ids).values
    assert table["blend"]["none"] == pytest.approx(kl_divergence(inputs.truth, blended), rel=1e-6)
    for name, row in table.items():
        assert row["gain"] != row["none"] and row["haze"] != row["none"], name
    hard_out = tmp_path / "hard.json"
    result = run_cli(
        "src/shift_test.py", "--tests", "radiometric", str(sidecar), "--shifts", "none", "--hard",
        "--threads", "1", "--device", "cpu", "--json", str(hard_out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    hard = json.loads(hard_out.read_text())["kl"]
    for name in ("unet_regnety_002", "pixel_lightgbm"):  # argmax counts: another score
        assert hard[name]["none"] != pytest.approx(table[name]["none"], rel=1e-6), name
    # an image-level member has no pixels to count: it stays soft
    assert hard["classifier_resnet18"]["none"] == pytest.approx(
        table["classifier_resnet18"]["none"], rel=1e-6
    )
    dark_out = tmp_path / "dark.json"
    result = run_cli(
        "src/shift_test.py", "--tests", "radiometric", str(sidecar), "--shifts", "none,offset",
        "--dark-level", "--per-region", "1", "--threads", "1", "--json", str(dark_out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    dark = json.loads(dark_out.read_text())
    assert dark["setting"]["dark_level"] == "on" and dark["setting"]["per_region"] == 1
    assert set(dark["kl"]) == set(table)
    for name, row in dark["kl"].items():  # each patch's dark level: an offset mostly undone
        assert row["offset"] < 1.5 * row["none"] + 0.05, name


def test_the_class_mix_test_plays_regions_of_other_mixes(blend: Path, tmp_path: Path):
    """src/shift_test.py (class-mix) on the demo blend: every member and the blend are scored
    in every region; at the experiments' own views, each member's held-out-fold column is its
    own OOF KL, and the blend's a nested CV of the blend re-tuned (fit_blend's nested_oof);
    a region's KL is its drawn patches' KLs, weighted by their draws."""
    from demo_blend import MEMBERS

    from landcover.classmix import regions_from_table
    from landcover.metric import kl_divergence, kl_per_sample, scored_proportions

    inputs = load_inputs(blend.parents[1] / "oof")
    sidecar = blend.with_suffix(".json")
    out = tmp_path / "mix.json"
    common = ("--tests", "class-mix", "--band-rows", "1", "--region-min", "3", "--trials", "3")
    result = run_cli(
        "src/shift_test.py", str(sidecar), *common, "--threads", "1", "--device", "cpu",
        "--json", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    mix = json.loads(out.read_text())["class_mix"]
    assert len(mix["regions"]) >= 2 and set(mix["summary"]) == {*MEMBERS, "blend"}
    for i, name in enumerate(inputs.names):
        own = kl_divergence(inputs.truth, inputs.oof[i])
        assert mix["summary"][name]["folds"] == pytest.approx(own, rel=1e-6), name
    width = int(inputs.experiments[0].meta["fold_scheme"]["row_width"])
    regions = regions_from_table(
        Path(inputs.labels_path), scored_proportions(inputs.truth), width, 1, 3
    )
    assert [r["name"] for r in mix["regions"]] == [r.name for r in regions]
    first = inputs.names[0]
    kls = kl_per_sample(inputs.truth, inputs.oof[0])
    expected = regions[0].counts @ kls / regions[0].counts.sum()
    assert mix["regions"][0]["kl"][first] == pytest.approx(expected, rel=1e-6)
    assert "blend" in result.stdout and "worst 10%" in result.stdout
    none = run_cli("src/shift_test.py", str(sidecar), *common[:2], "--band-rows", "1")
    assert none.returncode == 2 and "--region-min" in none.stderr
