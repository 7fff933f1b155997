"""Where proportions are wanted on a scene: the whole scene, the cells of a regular grid, or
the polygons of a vector file (reprojected to the raster's CRS). Each kind of region gives,
for any window of the raster, which of its pixels belong to which region.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from rasterio import features, windows
from rasterio.transform import Affine

from .errors import DataError
from .tiff import Scene


class Regions:
    """Region ids of the pixels of a window; ``table()`` describes the regions for the CSV."""

    names: list[str]

    def __len__(self) -> int:
        return len(self.names)

    def members(self, top: int, left: int, size: int) -> list[tuple[int, np.ndarray]]:
        """(region index, (size, size) bool mask) for each region the window touches."""
        raise NotImplementedError

    def table(self) -> dict[str, list]:
        """Per-region columns for the CSV besides the proportions (area, bounds, notes)."""
        return {}

    def geometries(self) -> list:
        """Each region's polygon (shapely), in the raster's CRS: the proportions as a layer."""
        raise NotImplementedError


def _bounds(scene: Scene):
    from shapely import box

    height, width = scene.shape
    return box(*windows.bounds(windows.Window(0, 0, width, height), scene.dataset.transform))


class WholeScene(Regions):
    def __init__(self, scene: Scene):
        self.names = [scene.path.stem]
        self.scene = scene

    def geometries(self) -> list:
        return [_bounds(self.scene)]

    def members(self, top: int, left: int, size: int) -> list[tuple[int, np.ndarray]]:
        return [(0, np.ones((size, size), dtype=bool))]


class Grid(Regions):
    """Square cells of ``metres`` on a side, from the raster's top-left corner."""

    def __init__(self, scene: Scene, metres: float):
        transform: Affine = scene.dataset.transform
        if metres <= 0:
            raise DataError(f"--grid must be a positive cell size in metres, got {metres}")
        if not scene.dataset.crs or not scene.dataset.crs.is_projected:
            raise DataError(
                f"{scene.path}: --grid needs a projected CRS in metres, got {scene.dataset.crs}"
            )
        self.cell_rows = metres / abs(transform.e)  # cell size in pixel rows and columns
        self.cell_cols = metres / abs(transform.a)
        height, width = scene.shape
        self.n_rows = int(np.ceil(height / self.cell_rows))
        self.n_cols = int(np.ceil(width / self.cell_cols))
        self.names = [f"r{r}_c{c}" for r in range(self.n_rows) for c in range(self.n_cols)]
        self.transform, self.metres, self.shape = transform, metres, (height, width)

    def members(self, top: int, left: int, size: int) -> list[tuple[int, np.ndarray]]:
        rows = ((np.arange(top, top + size) + 0.5) // self.cell_rows).astype(np.int64)
        cols = ((np.arange(left, left + size) + 0.5) // self.cell_cols).astype(np.int64)
        ids = rows[:, None] * self.n_cols + np.minimum(cols, self.n_cols - 1)[None, :]
        return [(int(i), ids == i) for i in np.unique(ids)]

    def table(self) -> dict[str, list]:
        x0, y0 = self.transform.c, self.transform.f
        height, width = self.shape
        out: dict[str, list] = {"x_min": [], "y_max": [], "area_m2": [], "inside_share": []}
        for r in range(self.n_rows):
            for c in range(self.n_cols):
                inside_rows = min(self.cell_rows, height - r * self.cell_rows) / self.cell_rows
                inside_cols = min(self.cell_cols, width - c * self.cell_cols) / self.cell_cols
                out["x_min"].append(x0 + c * self.metres)
                out["y_max"].append(y0 - r * self.metres)
                out["area_m2"].append(self.metres**2)
                out["inside_share"].append(inside_rows * inside_cols)
        return out

    def geometries(self) -> list:
        """Whole cells (a cell along the raster's right or bottom edge reaches past it)."""
        from shapely import box

        table = self.table()
        return [
            box(x, y - self.metres, x + self.metres, y)
            for x, y in zip(table["x_min"], table["y_max"], strict=True)
        ]


class Polygons(Regions):
    """The polygons of a GeoJSON or GeoPackage file, in the raster's CRS; each pixel whose
    centre lies in a polygon belongs to it (polygons may overlap)."""

    def __init__(self, scene: Scene, path: str | os.PathLike[str]):
        import geopandas as gpd
        from shapely import STRtree

        path = Path(path)
        try:
            frame = gpd.read_file(path)
        except Exception as err:  # pyogrio raises several kinds for unreadable files
            raise DataError(f"{path}: not a vector file GDAL can read ({err})") from None
        frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
        frame = frame[frame.geom_type.isin(["Polygon", "MultiPolygon"])]
        if frame.empty:
            raise DataError(f"{path}: no polygon found")
        crs = scene.dataset.crs
        if frame.crs is None and crs is not None:
            raise DataError(
                f"{path}: the polygons have no CRS and the raster is in {crs}; set the file's "
                "CRS (e.g. GeoJSON coordinates are WGS 84 longitude/latitude)"
            )
        if frame.crs is not None and crs is not None and frame.crs != crs:
            frame = frame.to_crs(crs)
        self.transform = scene.dataset.transform
        bounds = _bounds(scene)
        inside = frame.geometry.intersection(bounds).area / frame.geometry.area
        label = next((c for c in ("id", "name", "site") if c in frame.columns), None)
        names = [str(v) for v in (frame[label] if label else frame.index)]
        outside = [n for n, share in zip(names, inside, strict=True) if not share > 0]
        if outside:
            raise DataError(
                f"{path}: polygon {outside[0]} lies outside the raster {scene.path.name} "
                f"(bounds {tuple(round(v) for v in bounds.bounds)} in {crs})"
            )
        self.names, self.polygons = names, list(frame.geometry)
        self.areas, self.inside = list(frame.geometry.area), list(inside)
        self.tree = STRtree(self.polygons)

    def members(self, top: int, left: int, size: int) -> list[tuple[int, np.ndarray]]:
        from shapely import box

        window = windows.Window(left, top, size, size)
        transform = windows.transform(window, self.transform)
        found = self.tree.query(box(*windows.bounds(window, self.transform)))
        out = []
        for i in sorted(int(j) for j in found):
            mask = features.geometry_mask([self.polygons[i]], (size, size), transform, invert=True)
            if mask.any():
                out.append((i, mask))
        return out

    def table(self) -> dict[str, list]:
        return {"area_m2": self.areas, "inside_share": self.inside}

    def geometries(self) -> list:
        return list(self.polygons)
