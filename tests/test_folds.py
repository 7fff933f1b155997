import numpy as np
import pytest

from landcover.errors import DataError
from landcover.folds import check_folds, ensure_folds, make_folds, read_folds
from landcover.metric import scored_proportions


def _labels(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = rng.dirichlet(np.ones(10) * 0.4, size=n)
    labels[:, :2] = 0
    labels[:, 9] = np.where(rng.random(n) < 0.08, labels[:, 9] + 0.3, 0)  # rare water
    return labels / labels.sum(axis=1, keepdims=True)


def test_deterministic_disjoint_and_complete():
    ids, labels = np.arange(1, 401), _labels(400)
    a = make_folds(ids, labels, n_folds=5, group_size=4, seed=0)
    b = make_folds(ids, labels, n_folds=5, group_size=4, seed=0)
    c = make_folds(ids, labels, n_folds=5, group_size=4, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert set(a.tolist()) == set(range(5))
    check_folds(ids, a, where="test")  # each id exactly once


def test_neighbouring_ids_stay_together():
    ids, labels = np.arange(1, 401), _labels(400)
    folds = make_folds(ids, labels, n_folds=5, group_size=8, seed=0)
    for group in np.unique(ids // 8):
        assert len(set(folds[ids // 8 == group].tolist())) == 1


def test_stratified_class_mix_and_rare_class_spread():
    ids, labels = np.arange(1, 601), _labels(600)
    folds = make_folds(ids, labels, n_folds=5, group_size=4, seed=0)
    scored = scored_proportions(labels)
    overall = scored.mean(axis=0)
    for k in range(5):
        assert np.abs(scored[folds == k].mean(axis=0) - overall).max() < 0.02
        assert (scored[folds == k, 7] > 0).sum() >= 3  # water present in every fold
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 8


def test_fold_file_round_trip_and_errors(tmp_path):
    ids, labels = np.arange(1, 51), _labels(50)
    path, folds = ensure_folds(tmp_path, ids, labels, n_folds=5, group_size=2, seed=0)
    assert path.name == "folds-k5-g2-s0.csv"
    assert np.array_equal(read_folds(path, ids), folds)
    assert np.array_equal(
        ensure_folds(tmp_path, ids, labels, n_folds=5, group_size=2, seed=0)[1], folds
    )
    with pytest.raises(DataError, match="several folds"):
        check_folds(np.array([1, 1, 2]), np.array([0, 1, 1]), where="x")
    with pytest.raises(DataError, match="cannot fill"):
        make_folds(np.arange(10), _labels(10), n_folds=5, group_size=8)
