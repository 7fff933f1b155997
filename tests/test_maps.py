"""Scene maps from the demo blend: defaults that fit the model, a map whose class areas agree
with its proportions, and outputs a GIS opens with the class names."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from landcover.constants import CLASS_COLORS, CLASSES
from landcover.map_blend import window_values
from landcover.predictor import Predictor
from landcover.tiff import open_scene

pytestmark = pytest.mark.slow  # trains models or runs commands: tests/run.sh --quick skips it

pytest_plugins = ("demo_blend",)  # the session's trained demo blend: the ``blend`` fixture


def demo_scene(demo_data, path: Path, tiles: int) -> Path:
    from demo_blend import demo_scene  # imported once pytest has loaded the plugin

    return demo_scene(demo_data, path, tiles)


def predict(blend: Path, *args: str) -> None:
    """predict.py in this process, the blend's sidecar as the model."""
    from predict import main

    main(["--model", str(blend.with_suffix(".json")), "--device", "cpu", *args])


def test_every_kind_maps_a_512_scene_with_default_flags(blend, demo_data, tmp_path, capsys):
    """The blend's network, LightGBM and image-level members on a 512 x 512 scene, windows and
    overlap left to their defaults (the 32 px patches; 64 px clipped to 8); the map is a
    tiled COG with overviews, class names in its metadata and a QGIS style naming them; the
    scene's proportions are a GeoPackage layer with its polygon."""
    scene = demo_scene(demo_data, tmp_path / "scene.tif", 16)
    out, layer = tmp_path / "map.tif", tmp_path / "scene.gpkg"
    predict(blend, "--input", str(scene), "--out", str(out), "--proportions", str(layer),
            "--batch", "32")  # fmt: skip
    printed = capsys.readouterr().out.splitlines()
    said = "windows of 32 px (the members' training patches), overlap 8 px (default 64 clipped"
    assert any(line.startswith(said) for line in printed), printed
    assert printed[-2:] == [str(out.with_suffix(".qml")), str(out)]
    with rasterio.open(out) as src:
        classes = src.read(1)
        assert src.shape == (512, 512) and classes.max() <= 9 and classes.min() >= 2
        assert [src.tags(1)[str(i)] for i in range(10)] == list(CLASSES)
        assert src.colormap(1)[4][:3] == tuple(bytes.fromhex(CLASS_COLORS[4][1:]))
        assert src.block_shapes == [(256, 256)] and src.overviews(1) == [2]
        assert src.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
    style = ET.parse(out.with_suffix(".qml")).getroot()
    entries = style.findall("./pipe/rasterrenderer[@type='paletted']/colorPalette/paletteEntry")
    assert [(e.get("value"), e.get("label"), e.get("color")) for e in entries] == [
        (str(i), name, colour)
        for i, (name, colour) in enumerate(zip(CLASSES, CLASS_COLORS, strict=True))
    ]
    import geopandas as gpd

    sites = gpd.read_file(layer)
    assert len(sites) == 1 and sites.crs.to_epsg() == 32631
    assert sites.geometry.iloc[0].area == pytest.approx(5120 * 5120)
    assert sites[list(CLASSES)].sum(axis=1).iloc[0] == pytest.approx(1.0)


def test_an_impossible_overlap_is_one_error_line(blend, demo_data, tmp_path, capsys):
    scene = demo_scene(demo_data, tmp_path / "scene.tif", 2)
    for flags, words in (
        (("--overlap", "64"), "error: --overlap 64: windows of 32 px allow 0 to 16 px"),
        (("--window", "20", "--overlap", "11"), "error: --overlap 11: windows of 20 px allow"),
    ):
        with pytest.raises(SystemExit) as stop:
            predict(blend, "--input", str(scene), "--out", str(tmp_path / "m.tif"), *flags)
        assert stop.value.code == 2
        errors = capsys.readouterr().err.strip().splitlines()
        assert len(errors) == 1 and errors[0].startswith(words), errors
    assert not (tmp_path / "m.tif").exists()


def test_map_areas_and_proportions_differ_only_as_argmax_and_mean(blend, demo_data, tmp_path):
    """4 x 4 demo tiles, 32 px windows that do not overlap, a grid cell per window. The map's
    values b (``map_blend.window_values``, the members blended per pixel as the proportions
    are) average over a cell to the cell's proportions P; the map is their argmax. So a
    class's area share A and its proportion differ only as an argmax differs from a mean:
    |A_c - P_c| = |mean(1[argmax = c] - b_c)| <= mean |1[argmax = c] - b_c| for every class,
    and summed over classes by at most mean(|1 - b_top| + sum b - b_top), which is
    2 (1 - mean b_top) where values stay under 1: the mean doubt of the top class."""
    scene_path = demo_scene(demo_data, tmp_path / "scene.tif", 4)
    out, cells = tmp_path / "map.tif", tmp_path / "cells.csv"
    predict(blend, "--input", str(scene_path), "--out", str(out), "--window", "32",
            "--overlap", "0", "--grid", "320", "--proportions", str(cells))  # fmt: skip
    table = pd.read_csv(cells).set_index("site")
    with rasterio.open(out) as src:
        mapped = src.read(1)
    predictor = Predictor.load(blend.with_suffix(".json"), device="cpu")
    scene = open_scene(scene_path)
    pixels, valid = scene.read_rows(0, 128)
    gaps = []
    for r in range(4):
        for c in range(4):
            at = np.s_[32 * r : 32 * (r + 1), 32 * c : 32 * (c + 1)]
            b = window_values(predictor, pixels[:, at[0], at[1]][None], valid[at][None])[0]
            b = b.reshape(8, -1).astype(np.float64)
            proportions = table.loc[f"r{r}_c{c}", list(CLASSES[2:])].to_numpy(dtype=float)
            np.testing.assert_allclose(b.mean(axis=1), proportions, rtol=0, atol=1e-5)
            top = b.argmax(axis=0)
            assert np.array_equal(mapped[at].ravel(), top + 2)  # the map is their argmax
            areas = np.bincount(top, minlength=8) / top.size
            onehot = np.eye(8)[top].T
            per_class = np.abs(onehot - b).mean(axis=1)
            assert (np.abs(areas - proportions) <= per_class + 1e-5).all()
            best = b.max(axis=0)
            total = (np.abs(1 - best) + b.sum(axis=0) - best).mean()
            assert np.abs(areas - proportions).sum() <= total + 1e-5
            gaps.append(np.abs(areas - proportions).max())
    assert max(gaps) > 0.01  # the demo's flat members: areas and proportions do differ


def test_a_held_out_mosaic_maps_each_tile_by_its_own_folds_models(blend, demo_data, tmp_path):
    """The predict notebook's mosaic of training tiles: a tile's fold models alone
    (``Predictor.with_fold``) give exactly its OOF prediction in the sidecar's .oof.csv, and
    the mosaic's tiles, mapped by them, come close to it (windows there see neighbours)."""
    from landcover.held_out_map import held_out_mosaic
    from landcover.patches import mosaic_ids, write_mosaic
    from landcover.tables import read_proportions

    oof = read_proportions(blend.with_suffix(".oof.csv"))
    folds = dict(zip(oof.ids.tolist(), oof.folds.tolist(), strict=True))
    ids = mosaic_ids(1, 5, 2, demo_data.row_width)  # every row: both folds' bands
    assert {folds[i] for i in ids.ravel()} == {0, 1}
    predictor = Predictor.load(blend.with_suffix(".json"), device="cpu")
    images = np.asarray(demo_data.train_images)
    for k in (0, 1):
        tiles = np.array([i for i in ids.ravel() if folds[i] == k])
        alone = predictor.with_fold(k).patch_proportions(
            images[np.searchsorted(demo_data.train_ids, tiles)]
        )
        np.testing.assert_allclose(alone, oof.select(tiles).values, rtol=0, atol=1e-6)
    scene = write_mosaic(demo_data.layout.train_images, ids, tmp_path / "mosaic.tif")
    mosaic = held_out_mosaic(predictor, scene, ids, folds, overlap=0, out=tmp_path / "map.tif")
    assert mosaic.table["tile"].tolist() == ids.ravel().tolist()
    assert mosaic.table["fold"].tolist() == [folds[i] for i in ids.ravel()]
    gap = np.abs(mosaic.table[list(CLASSES)].to_numpy() - oof.select(ids.ravel()).values)
    assert gap.max() < 0.05, gap.max()
    assert mosaic.classes.max() <= 9 and (tmp_path / "map.qml").is_file()
