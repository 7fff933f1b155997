import numpy as np
import pandas as pd
import pytest

from landcover.errors import DataError
from landcover.fold_plan import ensure_plan, make_plan, read_plan
from landcover.folds import FoldScheme, auto_band_count, check_folds, make_folds, resolve_scheme
from landcover.metric import scored_proportions

BASE_DATA = {
    "n_folds": 5,
    "scheme": "row_bands",
    "row_width": None,
    "band_rows": 0,
    "buffer_rows": 1,
    "group_size": 8,
    "fold_seed": 0,
}


def _labels(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    labels = rng.dirichlet(np.ones(10) * 0.4, size=n)
    labels[:, :2] = 0
    labels[:, 9] = np.where(rng.random(n) < 0.08, labels[:, 9] + 0.3, 0)  # rare water
    return labels / labels.sum(axis=1, keepdims=True)


def _plan(ids, labels, **data):
    return make_plan(ids, labels, resolve_scheme({**BASE_DATA, **data}, ids, None))


def test_deterministic_disjoint_and_complete():
    ids, labels = np.arange(1, 401), _labels(400)
    a = make_folds(ids, labels, n_folds=5, group_size=4, seed=0)
    b = make_folds(ids, labels, n_folds=5, group_size=4, seed=0)
    c = make_folds(ids, labels, n_folds=5, group_size=4, seed=1)
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert set(a.tolist()) == set(range(5))
    check_folds(ids, a, where="test")  # each id exactly once


def test_id_groups_keep_neighbouring_ids_together():
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


def test_auto_band_count_by_dataset_size():
    assert auto_band_count(10, 5) == 5  # the shared sample: one band of 2 rows per fold
    assert auto_band_count(523, 5) == 20  # the full id range: 4 bands of 26-27 rows per fold
    assert auto_band_count(100, 5) == 10  # 2 bands of 10 rows per fold
    assert auto_band_count(5, 3) == 3  # a tiny grid: 3 contiguous bands, one per fold


def test_row_bands_are_whole_rows_stratified_over_many_bands():
    ids = np.arange(1, 23535)
    ids = ids[(ids < 10087) | ((ids > 13448) & (ids < 16811)) | (ids > 18491)]  # official train
    labels = _labels(len(ids))
    plan = _plan(ids, labels)
    scheme = resolve_scheme(BASE_DATA, ids, None)
    assert (scheme.n_rows, scheme.n_bands) == (523, 20)
    assert scheme.describe() == "5 folds, 20 bands of 26-27 rows (45 ids a row), 1-row buffer"
    band = scheme.groups(ids)
    rows = (ids - 1) // 45
    for b in np.unique(band):
        assert np.ptp(rows[band == b]) <= 26  # whole, contiguous rows
        assert len(set(plan.folds[band == b].tolist())) == 1  # a band is never split
    sizes = np.bincount(plan.folds)
    assert sizes.min() > 0.8 * sizes.mean()
    for k in range(5):  # the buffer costs a few rows per band, not a fold's worth
        assert plan.train[k].sum() > 0.9 * (plan.folds != k).sum()


def test_buffer_keeps_every_neighbour_of_validation_out_of_training(sample_dir):
    """On the sample's ids: no validation tile's horizontal (i +- 1), vertical (i +- 45) or
    diagonal neighbour trains the model of its fold, with the default one-row buffer."""
    truth = pd.read_csv(sample_dir / "train_labels.csv")
    ids, labels = truth["sample_id"].to_numpy(), truth.iloc[:, 1:].to_numpy()
    plan = _plan(ids, labels)
    assert plan.scheme["n_bands"] == 5 and plan.n_folds == 5
    position = {int(i): r for r, i in enumerate(ids)}
    for k in range(5):
        val = set(ids[plan.val_rows(k)].tolist())
        train = set(ids[plan.train_rows(k)].tolist())
        assert not val & train
        for i in val:
            for step in (1, 44, 45, 46):
                assert i + step not in train and i - step not in train, (k, i, step)
        assert len(train) + len(val) + len(plan.buffer_rows(k)) == len(ids)
        assert all(plan.train[k, position[i]] for i in train)
    unbuffered = _plan(ids, labels, buffer_rows=0)
    assert np.array_equal(unbuffered.folds, plan.folds)
    leaks = [
        i
        for k in range(5)
        for i in ids[unbuffered.val_rows(k)]
        if i + 45 in set(ids[unbuffered.train_rows(k)].tolist())
    ]
    assert leaks  # without the buffer the tile below a band's last row trains its model


def test_plan_file_round_trip_records_the_scheme(tmp_path):
    ids, labels = np.arange(1, 201), _labels(200)
    scheme = resolve_scheme({**BASE_DATA, "row_width": 10, "n_folds": 4}, ids, None)
    plan = ensure_plan(tmp_path, ids, labels, scheme)
    assert plan.path.name == "folds-bands-w10-n4-b1-k4-s0.csv"
    frame = pd.read_csv(plan.path)
    assert list(frame.columns) == ["sample_id", "fold", "train_0", "train_1", "train_2", "train_3"]
    shuffled = ids[::-1].copy()
    again = read_plan(plan.path, shuffled)
    assert np.array_equal(again.folds, plan.folds[::-1])
    assert np.array_equal(again.train, plan.train[:, ::-1])
    assert again.fingerprint() == plan.fingerprint()
    assert again.scheme == scheme.to_dict()
    described = FoldScheme(**again.scheme).describe()
    assert described == "4 folds, 4 bands of 5 rows (10 ids a row), 1-row buffer"
    fixed = resolve_scheme({**BASE_DATA, "row_width": 10, "band_rows": 3}, ids, None)
    assert fixed.file_name() == "folds-bands-w10-r3-b1-k5-s0.csv" and fixed.n_bands == 7


def test_old_two_column_fold_file_still_reads(tmp_path):
    ids, labels = np.arange(1, 51), _labels(50)
    folds = make_folds(ids, labels, n_folds=5, group_size=2)
    path = tmp_path / "folds-k5-g2-s0.csv"
    pd.DataFrame({"sample_id": ids, "fold": folds}).to_csv(path, index=False)
    plan = read_plan(path, ids)
    assert np.array_equal(plan.train, np.stack([folds != k for k in range(5)]))


def test_fold_errors():
    with pytest.raises(DataError, match="several folds"):
        check_folds(np.array([1, 1, 2]), np.array([0, 1, 1]), where="x")
    with pytest.raises(DataError, match="cannot fill"):
        make_folds(np.arange(10), _labels(10), n_folds=5, group_size=8)
    with pytest.raises(DataError, match="no training patch left"):
        _plan(np.arange(1, 31), _labels(30), row_width=10, n_folds=3, buffer_rows=2)
