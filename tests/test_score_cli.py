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


def test_organisers_epsilon_matches_a_hand_computation(tmp_path: Path):
    """--eps 1e-7 reproduces the organisers' eval.py; the default stays the challenge page's."""
    import math

    y = np.array([[0, 0.2, 0, 0.4, 0.4, 0, 0, 0, 0, 0]])  # clouds dropped: 50/50
    p = np.array([[0, 0.0, 0, 0.25, 0.75, 0, 0, 0, 0, 0]])
    write_proportions(tmp_path / "truth.csv", np.array([7]), y)
    write_proportions(tmp_path / "pred.csv", np.array([7]), p)

    def hand(eps: float) -> float:
        return (0.5 + eps) * math.log((0.5 + eps) / (0.25 + eps)) + (0.5 + eps) * math.log(
            (0.5 + eps) / (0.75 + eps)
        )

    args = ("src/score.py", str(tmp_path / "truth.csv"), str(tmp_path / "pred.csv"))
    default, organisers = run_cli(*args), run_cli(*args, "--eps", "1e-7")
    assert float(default.stdout.splitlines()[-1]) == pytest.approx(hand(1e-8), abs=1e-10)
    assert float(organisers.stdout.splitlines()[-1]) == pytest.approx(hand(1e-7), abs=1e-10)
    # zeros in the prediction: the epsilon decides the cost of a missed class
    write_proportions(tmp_path / "miss.csv", np.array([7]), np.eye(10)[[3]])
    miss = ("src/score.py", str(tmp_path / "truth.csv"), str(tmp_path / "miss.csv"))
    expected = (0.5 + 1e-7) * math.log((0.5 + 1e-7) / (1 + 1e-7)) + (0.5 + 1e-7) * math.log(
        (0.5 + 1e-7) / 1e-7
    )
    assert float(run_cli(*miss, "--eps", "1e-7").stdout.splitlines()[-1]) == pytest.approx(
        expected + 6 * 1e-7 * math.log(1.0), abs=1e-9
    )
    bad = run_cli(*args, "--eps", "2")
    assert bad.returncode == 2 and "between 0 and 1" in bad.stderr
