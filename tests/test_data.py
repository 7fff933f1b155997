"""Reading the challenge data: layout, TIFFs, validation with clear errors, the cache."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from landcover.cache import prepare_data
from landcover.errors import DataError
from landcover.layout import locate
from landcover.tiff import read_image, read_mask, write_image


def test_reads_real_sample_tiffs(sample_dir: Path):
    layout = locate(sample_dir)
    assert layout.y_train.name == "train_labels.csv"  # never train_labels_full.csv
    image = read_image(layout.image_path("train", 1), 1)
    mask = read_mask(layout.mask_path(1), 1, image.shape[1:])
    assert image.shape == (4, 256, 256) and image.dtype == np.uint16
    assert mask.shape == (256, 256) and mask.max() <= 9
    labels = pd.read_csv(layout.y_train).set_index("sample_id").loc[1].to_numpy()
    assert np.array_equal(np.bincount(mask.ravel(), minlength=10) / mask.size, labels)


def test_reads_plain_and_compressed_tiffs(tmp_path: Path):
    image = np.random.default_rng(0).integers(0, 20000, size=(4, 32, 32), dtype=np.uint16)
    for compress in (False, True):
        path = tmp_path / f"{compress}.tif"
        write_image(path, image, compress=compress)
        assert np.array_equal(read_image(path, 7), image)


def _copy_demo(demo_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "data"
    shutil.copytree(demo_dir, target)
    return target


def test_official_suffixed_names_and_flat_layout(demo_dir: Path, tmp_path: Path):
    data = _copy_demo(demo_dir, tmp_path)
    for stem, suffix in (
        ("train_images", "Es8kvkp"),
        ("train_labels", "GY1QjFw"),
        ("test_images", "kkwOpBC"),
    ):
        (data / f"{stem}.csv").rename(data / f"{stem}_{suffix}.csv")
    for part in ("train", "test"):
        shutil.move(data / "dataset" / part, data / part)
    layout = locate(data)
    assert layout.x_train.name == "train_images_Es8kvkp.csv"
    assert layout.train_images == data.resolve() / "train" / "images"


def test_cache_round_trip_reuse_and_rebuild(demo_dir: Path, tmp_path: Path):
    data_dir = _copy_demo(demo_dir, tmp_path)
    cache = tmp_path / "cache"
    data = prepare_data(data_dir, cache_dir=cache, workers=2)
    layout = locate(data_dir)
    for row, sample_id in enumerate(data.train_ids[:5].tolist()):
        assert np.array_equal(
            data.train_images[row], read_image(layout.image_path("train", sample_id), sample_id)
        )
        assert np.array_equal(
            data.train_masks[row], read_mask(layout.mask_path(sample_id), sample_id, (32, 32))
        )
    assert np.allclose(data.labels.sum(axis=1), 1)
    built = (cache / "manifest.json").stat().st_mtime_ns
    again = prepare_data(data_dir, cache_dir=cache, workers=2)
    assert (cache / "manifest.json").stat().st_mtime_ns == built  # reused
    assert again.fingerprint == data.fingerprint
    # changing an image changes the cache and the fingerprint
    path = layout.image_path("train", 1)
    image = read_image(path, 1)
    image[0, 0, 0] += 1
    path.unlink()
    write_image(path, image)
    rebuilt = prepare_data(data_dir, cache_dir=cache, workers=2)
    assert rebuilt.fingerprint != data.fingerprint
    assert rebuilt.train_images[0, 0, 0, 0] == image[0, 0, 0]


def test_prepare_cli_writes_the_fold_plan(demo_dir: Path, tmp_path: Path):
    result = run_cli(
        "src/prepare.py",
        "--data",
        str(demo_dir),
        "--cache-dir",
        str(tmp_path / "c"),
        "--set",
        "data.n_folds=3",
    )
    assert result.returncode == 0, result.stderr
    # the demo's grid.json says 6 tiles to a row: 3 bands of whole rows, a one-row buffer
    folds = pd.read_csv(tmp_path / "c" / "folds-bands-w6-n3-b1-k3-s0.csv")
    assert list(folds.columns) == ["sample_id", "fold", "train_0", "train_1", "train_2"]
    assert set(folds.fold) == {0, 1, 2}
    assert "1-row buffer" in result.stdout
    assert "folds-bands-w6-n3-b1-k3-s0.csv" in result.stdout.splitlines()[-1]
    bad = run_cli("src/prepare.py", "--data", str(demo_dir), "--set", "train.epochs=3")
    assert bad.returncode == 2 and "only data.* settings" in bad.stderr


def test_data_error_names_file(tmp_path: Path):
    with pytest.raises(DataError, match="not a readable TIFF"):
        (tmp_path / "x.tif").write_bytes(b"II*\x00garbage")
        read_image(tmp_path / "x.tif", 1)
