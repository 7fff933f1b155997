"""A mosaic of training tiles mapped without looking at its own answers: each tile's map and
proportions come from the fold models that did not train on it (its fold's), the way its OOF
prediction did, never from the fold models that learned its mask.

The mosaic is mapped once per fold among its tiles, by that fold's models only
(``Predictor.with_fold``), and each tile is taken from its own fold's run; together that is as
many fold-model passes as one map with every fold model. Windows near a tile's edge still see
its neighbours, which may have trained that fold: they give context, not labels. The blend's
weights, temperatures and calibration were tuned on every tile's OOF predictions, these
included, so a KL on these tiles is the fold models' held out, not the blend's: the blend's
is the sidecar's nested-CV KL.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio

from .map_outputs import write_class_map
from .predictor import Predictor
from .scene import predict_scene, proportions_table
from .sites import Grid
from .tiff import open_scene


@dataclass
class HeldOutMosaic:
    classes: np.ndarray  # (H, W) uint8, the map (255: nodata)
    table: pd.DataFrame  # per tile: tile, fold, site, the 10 classes, ...
    map_path: Path


def held_out_mosaic(
    predictor: Predictor,
    scene_path: str | os.PathLike[str],
    ids: np.ndarray,
    folds: dict[int, int],
    *,
    overlap: int,
    out: str | os.PathLike[str],
) -> HeldOutMosaic:
    """Map the mosaic at ``scene_path`` of tiles ``ids`` (rows, cols; one patch each) tile by
    tile with the fold models of ``folds[id]``; write the map at ``out`` (with its style)."""
    scene = open_scene(scene_path)
    size = scene.shape[0] // ids.shape[0]
    pixel = abs(scene.dataset.transform.a)
    cells = Grid(scene, size * pixel)  # one cell per tile, named r<row>_c<col>
    tile_folds = np.vectorize(folds.__getitem__)(ids)
    classes = np.full(scene.shape, 255, dtype=np.uint8)
    rows: dict[str, pd.Series] = {}
    with tempfile.TemporaryDirectory(prefix="held-out-") as tmp:
        for k in np.unique(tile_folds).tolist():
            held = predictor.with_fold(k)
            map_k = Path(tmp) / f"fold{k}.tif"
            result = predict_scene(held, scene, cells, size=size, overlap=overlap, map_path=map_k)
            table = proportions_table(held, cells, result, pixel * pixel, size).set_index("site")
            with rasterio.open(map_k) as src:
                mapped = src.read(1)
            for r, c in zip(*np.nonzero(tile_folds == k), strict=True):
                at = np.s_[r * size : (r + 1) * size, c * size : (c + 1) * size]
                classes[at] = mapped[at]
                rows[f"r{r}_c{c}"] = table.loc[f"r{r}_c{c}"]
    map_path = write_class_map(classes, scene, out)
    scene.dataset.close()
    frame = pd.DataFrame([rows[name] for name in cells.names]).rename_axis("site").reset_index()
    frame.insert(0, "fold", tile_folds.ravel())
    frame.insert(0, "tile", ids.ravel())
    return HeldOutMosaic(classes, frame, map_path)
