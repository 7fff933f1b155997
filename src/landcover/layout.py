"""Find the parts of a challenge data folder (the official unpacked layout).

Images and masks live in ``train/images``, ``train/masks`` and ``test/images``, either directly
in the folder or under ``dataset/``. The CSVs are found by their official names, with or
without the download suffix (``train_images_Es8kvkp.csv`` or ``train_images.csv``), in the
folder or its ``dataset/``; an explicit path always wins.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from .errors import DataError

CSV_PATTERNS = {"x_train": "train_images", "y_train": "train_labels", "x_test": "test_images"}


@dataclass(frozen=True)
class DataLayout:
    root: Path
    train_images: Path
    train_masks: Path
    test_images: Path
    x_train: Path
    y_train: Path
    x_test: Path
    grid: Path | None = None  # grid.json of a generated dataset: {"row_width": tiles per row}

    @property
    def row_width(self) -> int | None:
        """Tiles per raster row when the dataset says (generated data); None otherwise."""
        if self.grid is None:
            return None
        try:
            width = json.loads(self.grid.read_text())["row_width"]
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise DataError(f'{self.grid}: expected {{"row_width": N}} ({err})') from None
        if not isinstance(width, int) or width < 1:
            raise DataError(f"{self.grid}: row_width must be a positive integer, got {width!r}")
        return width

    def image_path(self, split: str, sample_id: int) -> Path:
        folder = self.train_images if split == "train" else self.test_images
        return folder / f"{sample_id}.tif"

    def mask_path(self, sample_id: int) -> Path:
        return self.train_masks / f"{sample_id}.tif"


def _find_csv(root: Path, stem: str) -> Path:
    folders = [root, root / "dataset"]
    for folder in folders:
        exact = folder / f"{stem}.csv"
        if exact.is_file():
            return exact
    matches = sorted(p for f in folders for p in f.glob(f"{stem}_*.csv"))
    # train_labels_full.csv in the shared sample is statistics only, never the y_train to use
    matches = [p for p in matches if not p.stem.endswith("_full")]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise DataError(f"{root}: no {stem}*.csv found (looked in {root} and {root / 'dataset'})")
    raise DataError(
        f"{root}: several candidates for {stem}*.csv ({', '.join(p.name for p in matches)}); "
        "pass the one to use explicitly"
    )


def locate(
    data_dir: str | os.PathLike[str],
    *,
    x_train: str | os.PathLike[str] | None = None,
    y_train: str | os.PathLike[str] | None = None,
    x_test: str | os.PathLike[str] | None = None,
) -> DataLayout:
    """Resolve a data folder into its image folders and CSVs, or raise a DataError."""
    root = Path(data_dir).expanduser().resolve()
    if not root.is_dir():
        raise DataError(f"{root}: data folder not found")
    base = root / "dataset" if (root / "dataset" / "train").is_dir() else root
    folders = {
        "train_images": base / "train" / "images",
        "train_masks": base / "train" / "masks",
        "test_images": base / "test" / "images",
    }
    for name, folder in folders.items():
        if not folder.is_dir():
            raise DataError(
                f"{root}: missing folder {folder.relative_to(root)} ({name.replace('_', ' ')}); "
                "expected the official layout train/images, train/masks, test/images"
            )
    given = {"x_train": x_train, "y_train": y_train, "x_test": x_test}
    csvs = {}
    for key, stem in CSV_PATTERNS.items():
        path = Path(given[key]) if given[key] else _find_csv(root, stem)
        if not path.is_file():
            raise DataError(f"{path}: {key} CSV not found")
        csvs[key] = path.resolve()
    grid = next((p for p in (root / "grid.json", base / "grid.json") if p.is_file()), None)
    return DataLayout(root=root, **folders, **csvs, grid=grid)
