import math

import numpy as np
import pytest
import torch

from landcover.constants import EPS
from landcover.losses import kl_loss
from landcover.metric import kl_divergence, kl_per_sample, scored_proportions


def test_hand_computation():
    # truth: 50/50 cultivated/broadleaf plus clouds (dropped); prediction 25/75
    y = np.array([[0, 0.2, 0, 0.4, 0.4, 0, 0, 0, 0, 0]])
    p = np.array([[0, 0.0, 0, 0.25, 0.75, 0, 0, 0, 0, 0]])
    absent = 6 * EPS * math.log(EPS / EPS)  # absent in both: each term is eps*log(1) = 0
    expected = (
        (0.5 + EPS) * math.log((0.5 + EPS) / (0.25 + EPS))
        + (0.5 + EPS) * math.log((0.5 + EPS) / (0.75 + EPS))
        + absent
    )
    assert kl_divergence(y, p) == pytest.approx(expected, rel=1e-15)


def test_matches_plain_loop_on_random_vectors_with_zeros():
    rng = np.random.default_rng(0)
    y = rng.dirichlet(np.ones(10) * 0.3, size=200)
    p = rng.dirichlet(np.ones(10) * 0.3, size=200)
    y[y < 0.05] = 0  # absent classes
    p[p < 0.02] = 0  # predicted exactly zero
    y[:5, 2:] = 0  # a few truth rows with only clouds and no_data
    y[:5, 1] = 1
    expected = []
    for yi, pi in zip(y, p, strict=True):
        ys, ps = yi[2:], pi[2:]
        ys = ys / ys.sum() if ys.sum() > 0 else ys
        ps = ps / ps.sum()
        expected.append(
            sum((a + EPS) * math.log((a + EPS) / (b + EPS)) for a, b in zip(ys, ps, strict=True))
        )
    assert np.allclose(kl_per_sample(y, p), expected, rtol=1e-12, atol=1e-15)
    assert kl_divergence(y, p) == pytest.approx(np.mean(expected), rel=1e-12)


def test_accepts_eight_scored_columns_and_renormalises():
    rng = np.random.default_rng(1)
    y, p = rng.dirichlet(np.ones(10), size=20), rng.dirichlet(np.ones(10), size=20)
    assert kl_divergence(y, p) == pytest.approx(kl_divergence(y[:, 2:], p[:, 2:] * 7.0), rel=1e-13)
    assert np.allclose(scored_proportions(y).sum(axis=1), 1)


def test_perfect_prediction_scores_zero_and_zero_scored_prediction_is_finite():
    y = np.array([[0, 0, 0.3, 0.7, 0, 0, 0, 0, 0, 0]])
    assert kl_divergence(y, y) == 0
    only_clouds = np.array([[0, 1.0, 0, 0, 0, 0, 0, 0, 0, 0]])
    score = kl_divergence(y, only_clouds)
    assert np.isfinite(score) and score > 10  # punished like predicting zero everywhere


def test_torch_loss_equals_metric():
    rng = np.random.default_rng(2)
    y, p = rng.dirichlet(np.ones(10) * 0.5, size=50), rng.dirichlet(np.ones(10), size=50)
    y[y < 0.05] = 0
    got = kl_loss(torch.tensor(y), torch.tensor(p)).numpy()
    assert np.allclose(got, kl_per_sample(y, p), rtol=1e-12)
