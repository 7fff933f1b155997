"""Every bad input a user can hand the project, from the entry point they would call.

One table: each case prepares a broken input in a fresh copy of a tiny generated dataset (or
tiny synthetic experiments) and names the command to run and the message expected. Each must
exit non-zero with exactly one ``error:`` line naming the file or sample id and the problem,
and no traceback. Add a case by adding a row.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from conftest import run_cli

from landcover.artifacts import write_experiment
from landcover.constants import CLASSES
from landcover.tables import Proportions, write_proportions
from landcover.tiff import read_mask, write_mask

pytestmark = pytest.mark.slow  # trains models or runs commands: tests/run.sh --quick skips it


@dataclass(frozen=True)
class Case:
    setup: Callable[[Path], list[str]]  # gets a work folder holding data/, returns the command
    message: str


def _prepare(d: Path) -> list[str]:
    return ["src/prepare.py", "--data", str(d / "data"), "--cache-dir", str(d / "cache")]


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


def _replace_image(d: Path, sample_id: int, array: np.ndarray) -> None:
    path = d / "data" / "dataset" / "train" / "images" / f"{sample_id}.tif"
    path.unlink()
    count, height, width = array.shape
    with rasterio.open(
        path, "w", driver="GTiff", width=width, height=height, count=count, dtype=array.dtype.name
    ) as dst:
        dst.write(array)


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])


def _mask_value(d: Path) -> None:
    path = d / "data" / "dataset" / "train" / "masks" / "3.tif"
    mask = read_mask(path, 3, (32, 32))
    mask[0, 0] = 12
    path.unlink()
    write_mask(path, mask)


def data_case(corrupt: Callable[[Path], object], message: str) -> Case:
    def setup(d: Path) -> list[str]:
        corrupt(d)
        return _prepare(d)

    return Case(setup, message)


def _predictions(d: Path, corrupt: Callable[[pd.DataFrame], pd.DataFrame]) -> list[str]:
    rng = np.random.default_rng(0)
    ids = np.arange(1, 7)
    write_proportions(d / "truth.csv", ids, rng.dirichlet(np.ones(10), size=6))
    frame = pd.DataFrame(rng.dirichlet(np.ones(10), size=6), columns=list(CLASSES))
    frame.insert(0, "sample_id", ids)
    corrupt(frame).to_csv(d / "pred.csv", index=False)
    return ["src/score.py", str(d / "truth.csv"), str(d / "pred.csv")]


def _truth_off(d: Path) -> list[str]:
    argv = _predictions(d, lambda f: f)
    truth = pd.read_csv(d / "truth.csv")
    truth.loc[0, "water"] += 0.5
    truth.to_csv(d / "truth.csv", index=False)
    return argv


def pred_case(corrupt: Callable[[pd.DataFrame], pd.DataFrame], message: str) -> Case:
    return Case(lambda d: _predictions(d, corrupt), message)


def _set(frame: pd.DataFrame, row: int, col: str, value: object) -> pd.DataFrame:
    frame = frame.astype({col: object})
    frame.loc[row, col] = value
    return frame


def _experiments(d: Path, change: Callable[[dict], None] | None = None) -> list[str]:
    """Two tiny synthetic experiments (no training); ``change`` edits the second one's parts."""
    rng = np.random.default_rng(1)
    ids, test_ids = np.arange(1, 21), np.arange(100, 105)
    truth = rng.dirichlet(np.ones(10), size=20)
    write_proportions(d / "labels.csv", ids, truth)
    for name in ("a", "b"):
        parts = {
            "ids": ids,
            "folds": np.arange(20) % 4,
            "fingerprint": "f" * 8,
            "oof": rng.dirichlet(np.ones(10), size=20),
            "test_ids": test_ids,
        }
        if name == "b" and change:
            change(parts)
        write_experiment(
            d / "oof" / name,
            oof=Proportions(parts["ids"], parts["oof"], parts["folds"]),
            test=Proportions(parts["test_ids"], rng.dirichlet(np.ones(10), size=5)),
            meta={"name": name, "data_fingerprint": parts["fingerprint"]},
            config={},
            scores={},
        )
    return [
        "src/blend.py",
        "--artifacts",
        str(d),
        "--labels",
        str(d / "labels.csv"),
        "--trials",
        "5",
        "--out",
        str(d / "sub.csv"),
    ]


def _nan_oof(d: Path) -> list[str]:
    argv = _experiments(d)
    path = d / "oof" / "b" / "oof.csv"
    frame = pd.read_csv(path)
    frame.loc[0, "water"] = np.nan
    frame.to_csv(path, index=False)
    return argv


def _train(d: Path, *override: str) -> list[str]:
    return [
        "src/train.py",
        "--experiments",
        "unet_regnety_002",
        "--data",
        str(d / "data"),
        "--artifacts",
        str(d),
        "--cache-dir",
        str(d / "cache"),
        "--set",
        *override,
    ]


CASES: dict[str, Case] = {
    # data folders (prepare.py; train.py and run_all.sh go through the same reader)
    "data folder missing": Case(
        lambda d: ["src/prepare.py", "--data", str(d / "nowhere")], "nowhere: data folder not found"
    ),
    "images folder missing": data_case(
        lambda d: shutil.rmtree(d / "data/dataset/test"), "missing folder dataset/test/images"
    ),
    "x_train id without its TIFF": data_case(
        lambda d: (d / "data/dataset/train/images/4.tif").unlink(),
        "4.tif: sample_id 4: train image file not found",
    ),
    "x_test id without its TIFF": data_case(
        lambda d: next((d / "data/dataset/test/images").glob("*.tif")).unlink(),
        "test image file not found",
    ),
    "mask missing": data_case(
        lambda d: (d / "data/dataset/train/masks/5.tif").unlink(),
        "5.tif: sample_id 5: train mask file not found",
    ),
    "not a TIFF": data_case(
        lambda d: (d / "data/dataset/train/images/2.tif").write_text("hello"),
        "2.tif: sample_id 2: not a readable TIFF",
    ),
    "truncated TIFF": data_case(
        lambda d: _truncate(d / "data/dataset/train/images/2.tif"),
        "2.tif: sample_id 2: not a readable TIFF",
    ),
    "wrong band count": data_case(
        lambda d: _replace_image(d, 2, np.zeros((3, 32, 32), np.uint16)),
        "sample_id 2: expected 4 bands, got 3",
    ),
    "wrong dtype": data_case(
        lambda d: _replace_image(d, 2, np.zeros((4, 32, 32), np.float32)),
        "sample_id 2: expected uint16 pixels, got float32",
    ),
    "wrong size": data_case(
        lambda d: _replace_image(d, 2, np.zeros((4, 16, 32), np.uint16)),
        "sample_id 2: expected size 32x32, got 16x32",
    ),
    "mask value outside 0..9": data_case(
        _mask_value, "3.tif: sample_id 3: mask value 12 outside 0..9"
    ),
    "labels: misspelt column": data_case(
        lambda d: _edit(d / "data/train_labels.csv", "water", "watr"),
        "unexpected column(s) ['watr']",
    ),
    "labels: missing column": data_case(
        lambda d: _edit(d / "data/train_labels.csv", ",water", ""),
        "missing class column(s) ['water']",
    ),
    "labels: row not summing to 1": data_case(
        lambda d: _edit(d / "data/train_labels.csv", "\n2,0.0,", "\n2,0.5,"),
        "train_labels.csv: sample_id 2: row sums to 1.5",
    ),
    "labels: non-numeric value": data_case(
        lambda d: _edit(d / "data/train_labels.csv", "\n2,0.0,", "\n2,abc,"),
        "sample_id 2: column 'no_data' is not a finite number ('abc')",
    ),
    "labels: NaN": data_case(
        lambda d: _edit(d / "data/train_labels.csv", "\n2,0.0,", "\n2,nan,"),
        "sample_id 2: column 'no_data' is not a finite number",
    ),
    "labels: extra column": data_case(
        lambda d: _edit(d / "data/train_labels.csv", "water", "water,extra"),
        "unexpected column(s) ['extra']",
    ),
    "x_train: duplicate id": data_case(
        lambda d: _edit(d / "data/train_images.csv", "\n1\n", "\n1\n1\n"),
        "train_images.csv: duplicated sample_id 1",
    ),
    "x_train: id without label": data_case(
        lambda d: _edit(d / "data/train_images.csv", "\n1\n", "\n1\n999\n"),
        "sample_id 999 of x_train has no label row",
    ),
    "x_test: non-numeric id": data_case(
        lambda d: (d / "data/test_images.csv").write_text(
            (d / "data/test_images.csv").read_text() + "abc\n"
        ),
        "test_images.csv: 'sample_id' must be an integer, got 'abc'",
    ),
    # predictions (score.py)
    "pred: missing id": pred_case(lambda f: f.iloc[1:], "missing sample_id 1"),
    "pred: extra id": pred_case(
        lambda f: pd.concat([f, f.iloc[[0]].assign(sample_id=99)]), "unexpected sample_id 99"
    ),
    "pred: duplicate id": pred_case(
        lambda f: pd.concat([f, f.iloc[[0]]]), "duplicated sample_id 1"
    ),
    "pred: missing column": pred_case(
        lambda f: f.drop(columns=["water"]), "missing class column(s) ['water']"
    ),
    "pred: misspelt column": pred_case(
        lambda f: f.rename(columns={"snow": "snoww"}), "unexpected column(s) ['snoww']"
    ),
    "pred: NaN": pred_case(
        lambda f: _set(f, 2, "artificial", np.nan),
        "sample_id 3: column 'artificial' is not a finite number",
    ),
    "pred: inf": pred_case(
        lambda f: _set(f, 2, "water", np.inf), "sample_id 3: column 'water' is not a finite number"
    ),
    "pred: non-numeric": pred_case(
        lambda f: _set(f, 0, "snow", "abc"), "sample_id 1: column 'snow' is not a finite number"
    ),
    "pred: negative": pred_case(
        lambda f: _set(f, 4, "broadleaf", -0.1), "sample_id 5: column 'broadleaf' is negative"
    ),
    "pred: row sums to 0": pred_case(
        lambda f: f.assign(**{c: np.where(f.sample_id == 2, 0.0, f[c]) for c in CLASSES}),
        "sample_id 2: row sums to 0",
    ),
    "pred: no sample_id": pred_case(
        lambda f: f.drop(columns=["sample_id"]), "no 'sample_id' column"
    ),
    "pred: file missing": Case(
        lambda d: ["src/score.py", str(d / "nope.csv"), str(d / "nope.csv")],
        "nope.csv: file not found",
    ),
    "truth: row not summing to 1": Case(_truth_off, "truth.csv: sample_id 1: row sums to 1.5"),
    # experiments (blend.py)
    "blend: no experiment": Case(
        lambda d: ["src/blend.py", "--artifacts", str(d / "empty")], "no complete experiment found"
    ),
    "blend: OOF ids disagree": Case(
        lambda d: _experiments(d, lambda p: p.update(ids=np.arange(2, 22))),
        "OOF sample ids disagree",
    ),
    "blend: folds disagree": Case(
        lambda d: _experiments(d, lambda p: p.update(folds=np.arange(20) % 5)),
        "fold assignments disagree",
    ),
    "blend: different data": Case(
        lambda d: _experiments(d, lambda p: p.update(fingerprint="e" * 8)),
        "trained on different data",
    ),
    "blend: NaN in OOF": Case(
        _nan_oof, "oof.csv: sample_id 1: column 'water' is not a finite number"
    ),
    # configs (train.py)
    "config: unknown key": Case(lambda d: _train(d, "train.epoch=3"), "unknown key 'train.epoch'"),
    "config: wrong type": Case(
        lambda d: _train(d, "train.epochs=three"), "'train.epochs' must be int, got str 'three'"
    ),
    "config: GPU profile without a GPU": Case(
        lambda d: [
            "src/train.py",
            "--experiments",
            "unet_regnety_002",
            "--data",
            str(d / "data"),
            "--profile",
            "full-gpu",
            "--artifacts",
            str(d),
        ],
        "no CUDA GPU is available here",
    ),
    "config: unknown model": Case(
        lambda d: ["src/train.py", "--experiments", "nope", "--data", str(d / "data")],
        "nope.yaml: config file not found",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gets_one_clear_line(name: str, demo_dir: Path, tmp_path: Path):
    shutil.copytree(demo_dir, tmp_path / "data")
    case = CASES[name]
    result = run_cli(*case.setup(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert case.message in errors[0]
    assert not (tmp_path / "sub.csv").exists()  # nothing half-written


def test_run_all_with_missing_data_folder(tmp_path: Path):
    import subprocess

    from conftest import REPO

    result = subprocess.run(
        [str(REPO / "run_all.sh"), "--data", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 2
    assert f"data folder not found: {tmp_path / 'nowhere'}" in result.stderr
