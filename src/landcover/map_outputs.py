"""What a GIS opens: the class map's palette and class names (in the GeoTIFF, and as a QGIS
style file ``<map>.qml`` beside it, which QGIS applies when it opens the map), and the
proportions of grid cells or sites as polygons (GeoPackage or GeoJSON) besides the CSV.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import rasterio

from .atomic import atomic_path
from .constants import CLASS_COLORS, CLASSES
from .errors import DataError
from .tiff import PALETTE_NODATA, Scene, class_map_profile, finish_cog

VECTOR_DRIVERS = {".gpkg": "GPKG", ".geojson": "GeoJSON", ".json": "GeoJSON"}
TABLE_SUFFIXES = (".csv", *VECTOR_DRIVERS)


def colormap() -> dict[int, tuple[int, int, int, int]]:
    colours = {i: (*bytes.fromhex(c[1:]), 255) for i, c in enumerate(CLASS_COLORS)}
    return {**colours, PALETTE_NODATA: (0, 0, 0, 0)}


def describe_class_band(sink: rasterio.io.DatasetWriter) -> None:
    """Palette, class names (band tags ``"0": "no_data"``, ...) and a band description."""
    sink.write_colormap(1, colormap())
    sink.update_tags(1, **{str(i): name for i, name in enumerate(CLASSES)})
    sink.set_band_description(1, "land cover class (" + ", ".join(CLASSES) + ")")


def qml_path(map_path: str | os.PathLike[str]) -> Path:
    return Path(map_path).with_suffix(".qml")


def write_qml(map_path: str | os.PathLike[str]) -> Path:
    """A QGIS paletted style naming the 10 classes in ``CLASS_COLORS``, beside the map."""
    root = ET.Element("qgis", version="3.28", styleCategories="AllStyleCategories")
    pipe = ET.SubElement(root, "pipe")
    renderer = ET.SubElement(
        pipe, "rasterrenderer", type="paletted", band="1", opacity="1", alphaBand="-1"
    )
    ET.SubElement(renderer, "rasterTransparency")
    palette = ET.SubElement(renderer, "colorPalette")
    for i, (name, colour) in enumerate(zip(CLASSES, CLASS_COLORS, strict=True)):
        ET.SubElement(palette, "paletteEntry", value=str(i), color=colour, label=name, alpha="255")
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root)
    out = qml_path(map_path)
    with atomic_path(out) as tmp:
        tmp.write_text("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n")
        with open(tmp, "ab") as f:
            ET.ElementTree(root).write(f, encoding="utf-8")
    return out


def write_class_map(classes: np.ndarray, scene: Scene, path: str | os.PathLike[str]) -> Path:
    """A (H, W) uint8 class array (255: nodata) with ``scene``'s georeference, as the
    Cloud-Optimized GeoTIFF and style ``predict.py`` writes."""
    path = Path(path)
    work = path.with_name(f".{path.name}.work.tif")
    try:
        with rasterio.open(work, "w", **class_map_profile(scene)) as sink:
            describe_class_band(sink)
            sink.write(np.asarray(classes, dtype=np.uint8)[None])
        finish_cog(work, path)
    finally:
        work.unlink(missing_ok=True)
    write_qml(path)
    return path


def check_table_path(path: str | os.PathLike[str]) -> None:
    if Path(path).suffix.lower() not in TABLE_SUFFIXES:
        raise DataError(
            f"{path}: --proportions is written as .csv, or with the polygons as .gpkg or .geojson"
        )


def write_table(table, geometries: list, crs, path: str | os.PathLike[str]) -> Path:
    """The proportions table as CSV, or as polygons (GeoPackage in the raster's CRS; GeoJSON
    in WGS 84, as RFC 7946 wants), written atomically."""
    path = Path(path)
    check_table_path(path)
    if path.suffix.lower() == ".csv":
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
        return path
    import geopandas as gpd

    frame = gpd.GeoDataFrame(table, geometry=geometries, crs=crs)
    if path.suffix.lower() != ".gpkg" and crs is not None:
        frame = frame.to_crs(4326)
    path.parent.mkdir(parents=True, exist_ok=True)
    driver = VECTOR_DRIVERS[path.suffix.lower()]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    os.unlink(tmp)  # the driver creates the file
    try:
        frame.to_file(tmp, driver=driver, **({"layer": "proportions"} if driver == "GPKG" else {}))
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path
