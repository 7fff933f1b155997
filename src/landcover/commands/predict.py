"""Apply a trained model to new imagery, without retraining.

    python src/predict.py --model submissions/<name>.json --input DIR --out sub.csv
    python src/predict.py --model oof/unet_regnety_002 --input scene.tif --out map.tif \\
        [--bands 2,3,4,8] [--probabilities] [--proportions props.csv] [--grid 2560]
    python src/predict.py --model bundles/<name>.tar --input scene.tif --out map.tif \\
        --sites fields.gpkg --proportions fields.gpkg

MODEL is a submission's sidecar (its experiments, weights, temperatures, class calibration
and floor), one experiment directory, or a bundle of either (``src/export.py``: a folder or
a .tar, from any folder on any machine). INPUT is either

- patches in the challenge format (a data folder with test/images, an x_test CSV beside one,
  or a folder of <id>.tif): OUT is a submission CSV, predicted as the pipeline predicts test
  patches;
- a raster of any size (GeoTIFF, VRT, ...; --bands picks B, G, R, NIR, 1-based; surface
  reflectance x 10,000, 10 m pixels): OUT is a georeferenced class map (uint8, class palette
  and names, 255 = nodata, Cloud-Optimized GeoTIFF with overviews) and OUT's .qml, the QGIS
  style naming the classes; --probabilities adds OUT's .probabilities.tif (10 bands, the
  map's values x 255); --proportions writes the proportions of the whole scene, of each
  --grid cell (metres) or of each polygon of --sites (GeoJSON, GeoPackage; reprojected to the
  raster's CRS), as .csv, or with the polygons as .gpkg (raster's CRS) or .geojson (WGS 84).

The map's class is the argmax of the members' probabilities blended per pixel as the
proportions are (each member's temperature, the weights, the class calibration, the floor,
as ratios of each window's means: ``landcover/map_blend.py``), so a window's class areas and
its proportions differ only as an argmax differs from a mean; like the proportions, it has
no clouds or no_data class. Windows default to the patches the members trained on, their
overlap to 64 px clipped to a quarter of the window (the line before the timing says which).

Outputs are written under a temporary name and renamed: an interrupted run leaves none half
written. The last line printed is OUT.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from landcover.cli import Parser
from landcover.constants import CLASSES
from landcover.errors import DataError, cli_errors, positive_int
from landcover.map_outputs import check_table_path, qml_path, write_table
from landcover.patches import find_patches, iter_patches
from landcover.predictor import Predictor
from landcover.scene import check_overlap, predict_scene, proportions_table, window_settings
from landcover.sites import Grid, Polygons, WholeScene
from landcover.tables import write_proportions
from landcover.tiff import open_scene

RASTER_SUFFIXES = {".tif", ".tiff", ".vrt", ".jp2", ".img"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = Parser(__doc__)
    parser.add_argument(
        "--model", required=True, help="submissions/<name>.json, oof/<exp> or a bundle"
    )
    parser.add_argument("--input", required=True, help="patches (folder or CSV) or a raster")
    parser.add_argument("--out", required=True, help="submission CSV, or class map .tif")
    parser.add_argument("--bands", default="1,2,3,4", help="raster bands for B,G,R,NIR (1-based)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--grid", type=float, metavar="METRES", help="proportions per grid cell")
    where.add_argument("--sites", help="proportions per polygon of this vector file")
    parser.add_argument(
        "--proportions", help="proportions of the scene, cells or sites: .csv, .gpkg or .geojson"
    )
    parser.add_argument("--probabilities", action="store_true", help="also per-class bands")
    parser.add_argument(
        "--window", type=positive_int, help="window size in pixels (default: the patches')"
    )
    parser.add_argument(
        "--overlap", type=int, help="window overlap in pixels (default: 64, at most window/4)"
    )
    parser.add_argument("--batch", type=positive_int, default=8, help="windows per batch")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 (default: auto)")
    args = parser.parse_args(argv)
    if (args.grid or args.sites) and not args.proportions:
        parser.error("--grid and --sites need --proportions")
    return args


def _bands(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(b) for b in text.split(","))
    except ValueError:
        raise DataError(f"--bands {text!r}: expected 1-based band numbers, e.g. 1,2,3,4") from None


def predict_patches(predictor: Predictor, source: str, out: Path) -> int:
    """Patches as the pipeline predicts test patches, a chunk at a time."""
    folder, ids = find_patches(source)
    values = np.zeros((len(ids), len(CLASSES)))
    done = 0
    for _, images in iter_patches(folder, ids):
        values[done : done + len(images)] = predictor.patch_proportions(images)
        done += len(images)
    write_proportions(out, ids, values, expected_ids=ids)
    return len(ids)


@cli_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    source, out = Path(args.input), Path(args.out)
    is_raster = source.is_file() and source.suffix.lower() in RASTER_SUFFIXES
    if not is_raster and (args.grid or args.sites or args.proportions or args.probabilities):
        raise DataError(f"{source}: --grid, --sites, --proportions, --probabilities need a raster")
    if is_raster and out.suffix.lower() not in (".tif", ".tiff"):
        raise DataError(f"{out}: a class map is written as a GeoTIFF (.tif)")
    if not is_raster and out.suffix != ".csv":
        raise DataError(f"{out}: predictions of patches are written as a submission CSV (.csv)")
    if args.proportions:
        check_table_path(args.proportions)
    if args.window and args.overlap is not None:
        check_overlap(args.window, args.overlap)
    scene = open_scene(source, _bands(args.bands)) if is_raster else None  # fail before loading
    regions = None
    if scene is not None and args.proportions:
        regions = (
            Grid(scene, args.grid)
            if args.grid
            else Polygons(scene, args.sites)
            if args.sites
            else WholeScene(scene)
        )
    predictor = Predictor.load(args.model, args.device)
    print(predictor.describe())
    started = time.perf_counter()
    if scene is None:
        n = predict_patches(predictor, args.input, out)
        print(f"{n} patches in {time.perf_counter() - started:.1f} s")
        print(out)
        return
    size, overlap, said = window_settings(predictor.patch_size, args.window, args.overlap)
    print(said)
    probs_path = out.with_suffix(".probabilities.tif") if args.probabilities else None
    result = predict_scene(
        predictor,
        scene,
        regions or WholeScene(scene),
        size=size,
        overlap=overlap,
        map_path=out,
        probabilities_path=probs_path,
        batch=args.batch,
    )
    seconds = time.perf_counter() - started
    height, width = scene.shape
    print(
        f"{height}x{width} pixels, {result.windows} windows of {size} px in {seconds:.1f} s "
        f"({height * width / seconds:,.0f} pixels/s)"
    )
    if args.proportions:
        pixel_area = abs(scene.dataset.transform.a * scene.dataset.transform.e)
        table = proportions_table(predictor, regions, result, pixel_area, size)
        as_csv = Path(args.proportions).suffix.lower() == ".csv"
        geometries = [] if as_csv else regions.geometries()
        write_table(table, geometries, scene.dataset.crs, args.proportions)
        print(f"{args.proportions}: {len(table)} row(s)")
    for path in [*result.outputs[1:], qml_path(out)]:
        print(path)
    print(out)


if __name__ == "__main__":
    main()
