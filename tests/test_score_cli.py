"""score.py as a user calls it: exact score, rows matched by id, one-line errors."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import run_cli

from landcover.constants import CLASSES
from landcover.metric import kl_divergence
from landcover.tables import read_proportions, write_proportions


def test_sample_labels_score_zero(sample_dir: Path):
    labels = sample_dir / "train_labels.csv"
    result = run_cli("src/score.py", str(labels), str(labels))
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.strip().splitlines()[-1]) == 0.0


def test_perturbed_and_shuffled_prediction(sample_dir: Path, tmp_path: Path):
    truth = read_proportions(sample_dir / "train_labels.csv", require_sum_to_one=True)
    rng = np.random.default_rng(0)
    noisy = truth.values * rng.uniform(0.5, 1.5, size=truth.values.shape) + 1e-3
    noisy /= noisy.sum(axis=1, keepdims=True)
    order = rng.permutation(len(truth))  # rows shuffled: matching must be by sample_id
    pred = tmp_path / "pred.csv"
    write_proportions(pred, truth.ids[order], noisy[order])
    result = run_cli("src/score.py", str(sample_dir / "train_labels.csv"), str(pred))
    assert result.returncode == 0, result.stderr
    expected = kl_divergence(truth.values, noisy)
    assert expected > 0.01
    assert float(result.stdout.strip().splitlines()[-1]) == pytest.approx(expected, abs=1e-10)


def test_prediction_without_ignored_columns(tmp_path: Path):
    rng = np.random.default_rng(3)
    ids = np.arange(1, 21)
    y, p = rng.dirichlet(np.ones(10), size=20), rng.dirichlet(np.ones(10), size=20)
    write_proportions(tmp_path / "truth.csv", ids, y)
    frame = pd.DataFrame(p[:, 2:], columns=list(CLASSES[2:]))
    frame.insert(0, "sample_id", ids)
    frame.to_csv(tmp_path / "pred.csv", index=False)
    result = run_cli("src/score.py", str(tmp_path / "truth.csv"), str(tmp_path / "pred.csv"))
    assert result.returncode == 0, result.stderr
    assert float(result.stdout.splitlines()[-1]) == pytest.approx(kl_divergence(y, p), abs=1e-10)


def _frame(n: int = 6, seed: int = 0) -> pd.DataFrame:
    values = np.random.default_rng(seed).dirichlet(np.ones(10), size=n)
    frame = pd.DataFrame(values, columns=list(CLASSES))
    frame.insert(0, "sample_id", np.arange(1, n + 1))
    return frame


def _set(frame: pd.DataFrame, row: int, col: str, value) -> pd.DataFrame:
    frame = frame.astype({col: object})
    frame.loc[row, col] = value
    return frame


BAD_PREDICTIONS = {
    "missing id": (lambda f: f.iloc[1:], "missing sample_id 1"),
    "extra id": (
        lambda f: pd.concat([f, f.iloc[[0]].assign(sample_id=99)]),
        "unexpected sample_id 99",
    ),
    "duplicated id": (lambda f: pd.concat([f, f.iloc[[0]]]), "duplicated sample_id 1"),
    "missing class column": (
        lambda f: f.drop(columns=["water"]),
        "missing class column(s) ['water']",
    ),
    "misspelt column": (
        lambda f: f.rename(columns={"snow": "snoww"}),
        "unexpected column(s) ['snoww']",
    ),
    "NaN": (
        lambda f: _set(f, 2, "artificial", np.nan),
        "sample_id 3: column 'artificial' is not a finite",
    ),
    "inf": (lambda f: _set(f, 2, "water", np.inf), "sample_id 3: column 'water' is not a finite"),
    "text": (lambda f: _set(f, 0, "snow", "abc"), "sample_id 1: column 'snow' is not a finite"),
    "negative": (
        lambda f: _set(f, 4, "broadleaf", -0.1),
        "sample_id 5: column 'broadleaf' is negative",
    ),
    "row sums to 0": (
        lambda f: f.assign(**{c: np.where(f.sample_id == 2, 0.0, f[c]) for c in CLASSES}),
        "sample_id 2: row sums to 0",
    ),
    "no sample_id": (lambda f: f.drop(columns=["sample_id"]), "no 'sample_id' column"),
}


@pytest.mark.parametrize("case", sorted(BAD_PREDICTIONS))
def test_bad_prediction_gets_one_clear_line(case: str, tmp_path: Path):
    truth = _frame()
    truth.to_csv(tmp_path / "truth.csv", index=False)
    corrupt, message = BAD_PREDICTIONS[case]
    corrupt(_frame(seed=1)).to_csv(tmp_path / "pred.csv", index=False)
    result = run_cli("src/score.py", str(tmp_path / "truth.csv"), str(tmp_path / "pred.csv"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert message in lines[0] and "pred.csv" in lines[0]


def test_missing_file_and_truth_not_summing_to_one(tmp_path: Path):
    result = run_cli("src/score.py", str(tmp_path / "nope.csv"), str(tmp_path / "nope2.csv"))
    assert result.returncode == 2 and "nope.csv: file not found" in result.stderr
    truth = _frame()
    truth.loc[0, "water"] += 0.5
    truth.to_csv(tmp_path / "truth.csv", index=False)
    _frame().to_csv(tmp_path / "pred.csv", index=False)
    result = run_cli("src/score.py", str(tmp_path / "truth.csv"), str(tmp_path / "pred.csv"))
    assert result.returncode == 2 and "sample_id 1: row sums to 1.5" in result.stderr
