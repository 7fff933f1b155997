"""The synthetic demo dataset: official layout and formats, exact labels, determinism, CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from landcover.constants import CLASSES, N_CLASSES, SCORED_CLASSES
from landcover.demo import SPECTRA, make_demo_dataset
from landcover.errors import LandcoverError
from landcover.tables import read_ids, read_proportions
from landcover.tiff import read_image, read_mask

pytestmark = pytest.mark.slow  # trains models or runs commands: tests/run.sh --quick skips it

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"n_train": 12, "n_test": 4, "size": 32}


def load(root: Path) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Every image (train and test) and every train mask, by sample id."""
    images, masks = {}, {}
    for part in ("train", "test"):
        for sid in read_ids(root / f"{part}_images.csv"):
            images[sid] = read_image(root / f"dataset/{part}/images/{sid}.tif", sid, (32, 32))
            if part == "train":
                masks[sid] = read_mask(root / f"dataset/train/masks/{sid}.tif", sid, (32, 32))
    return images, masks


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_demo_dataset(tmp_path_factory.mktemp("demo") / "out", seed=3, **SMALL)


def test_round_trip(demo: Path) -> None:
    assert list(read_ids(demo / "train_images.csv")) == list(range(1, 13))
    assert list(read_ids(demo / "test_images.csv")) == list(range(13, 17))
    assert not (demo / "dataset/test/masks").exists()
    images, masks = load(demo)
    for image in images.values():
        assert image.dtype == np.uint16 and image.shape == (4, 32, 32)
        assert image.min() >= 1 and image.max() <= 24000
    labels = read_proportions(demo / "train_labels.csv", what="labels", require_sum_to_one=True)
    assert list(labels.ids) == sorted(masks)
    for sid, row in zip(labels.ids, labels.values, strict=True):
        mask = masks[sid]
        assert mask.dtype == np.uint8 and mask.min() >= 1 and mask.max() < N_CLASSES
        expected = np.bincount(mask.ravel(), minlength=N_CLASSES) / mask.size
        np.testing.assert_array_equal(row, expected)
    seen = set(np.unique(np.stack(list(masks.values()))).tolist())
    assert {CLASSES.index(c) for c in SCORED_CLASSES} <= seen  # rare classes included
    assert CLASSES.index("no_data") not in seen


def test_deterministic(tmp_path: Path, demo: Path) -> None:
    same = make_demo_dataset(tmp_path / "same", seed=3, **SMALL)
    other = make_demo_dataset(tmp_path / "other", seed=4, **SMALL)
    for name in ("train_images.csv", "train_labels.csv", "test_images.csv"):
        assert (same / name).read_bytes() == (demo / name).read_bytes()
    assert (other / "train_labels.csv").read_bytes() != (demo / "train_labels.csv").read_bytes()
    (a_img, a_mask), (b_img, b_mask) = load(demo), load(same)
    for sid in a_img:
        np.testing.assert_array_equal(a_img[sid], b_img[sid])
    for sid in a_mask:
        np.testing.assert_array_equal(a_mask[sid], b_mask[sid])
    assert any(not np.array_equal(a_img[s], load(other)[0][s]) for s in a_img)


def test_spectra_are_learnable(demo: Path) -> None:
    images, masks = load(demo)
    pixels = np.concatenate([images[s].reshape(4, -1) for s in masks], axis=1).astype(float)
    classes = np.concatenate([masks[s].ravel() for s in masks])

    def band_mean(name: str, band: int) -> float:
        return float(pixels[band, classes == CLASSES.index(name)].mean())

    nir, red = 3, 2
    assert band_mean("water", nir) < 0.5 * band_mean("cultivated", nir)  # water absorbs NIR
    assert band_mean("broadleaf", nir) > band_mean("coniferous", nir)
    assert band_mean("broadleaf", red) < band_mean("artificial", red)
    for spectrum in SPECTRA.values():  # band correlations must form a valid correlation matrix
        corr = np.eye(4)
        corr[np.triu_indices(4, 1)] = spectrum.corr
        np.linalg.cholesky(np.maximum(corr, corr.T))


def test_replaces_a_dataset_but_not_other_directories(tmp_path: Path) -> None:
    out = make_demo_dataset(tmp_path / "d", seed=1, **SMALL)
    make_demo_dataset(out, seed=2, n_train=3, n_test=1, size=32)
    assert sorted(p.name for p in (out / "dataset/train/images").iterdir()) == [
        "1.tif",
        "2.tif",
        "3.tif",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["d"]  # no temporary left behind
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine/notes.txt").write_text("keep me")
    with pytest.raises(LandcoverError, match="refusing"):
        make_demo_dataset(tmp_path / "mine", **SMALL)
    assert (tmp_path / "mine/notes.txt").read_text() == "keep me"


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"size": 33}, "size"),
        ({"size": 0}, "size"),
        ({"n_train": 0}, "n_train"),
        ({"n_test": -1}, "n_test"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments(tmp_path: Path, kwargs: dict[str, int], word: str) -> None:
    with pytest.raises(LandcoverError, match=word):
        make_demo_dataset(tmp_path / "x", **{**SMALL, **kwargs})
    assert not (tmp_path / "x").exists()


def test_cli(tmp_path: Path) -> None:
    script = ["src/make_demo_data.py", str(tmp_path / "cli")]
    ok = subprocess.run(
        [sys.executable, *script, "--n-train", "4", "--n-test", "2", "--size", "32"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert "4 train + 2 test" in ok.stdout and len(ok.stdout.strip().splitlines()) == 1
    assert (tmp_path / "cli/train_labels.csv").is_file()
    bad = subprocess.run(
        [sys.executable, *script, "--size", "33"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2
    assert len(bad.stderr.strip().splitlines()) == 1 and "size" in bad.stderr


def test_large_dataset_is_in_the_official_layout(tmp_path: Path) -> None:
    """The full-size generator (here at a tiny size): official-style ids, labels that are
    the masks' pixel fractions, a grid.json of the row width, and it prepares."""
    from landcover.cache import prepare_data
    from landcover.demo_large import make_large_dataset, official_ids

    train, test = official_ids(18491, 5043)
    assert (len(train), len(test)) == (18491, 5043) and test.min() == 10087
    assert set(test.tolist()) == set(range(10087, 13449)) | set(range(16811, 18492))
    out = make_large_dataset(tmp_path / "large", 60, 6, 32, row_width=12, workers=2, pool_rows=2)
    data = prepare_data(out, cache_dir=tmp_path / "cache", workers=2)
    assert data.train_ids.tolist() == list(range(1, 61)) and data.row_width == 12
    masks = np.asarray(data.train_masks)
    fractions = np.stack([np.bincount(m.ravel(), minlength=10) / m.size for m in masks])
    np.testing.assert_allclose(fractions, data.labels)
    assert not data.manifest["labels_disagreeing_with_masks"]
