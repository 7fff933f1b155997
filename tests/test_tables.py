"""Prediction files: exact format, full precision, ids travel with rows, atomic writes."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from landcover.atomic import atomic_dir
from landcover.constants import SUBMISSION_COLUMNS
from landcover.errors import DataError
from landcover.tables import Proportions, read_proportions, write_proportions


def _values(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(10), size=n)


def test_exact_header_order_and_full_precision(tmp_path: Path):
    ids, values = np.array([10479, 10480, 10481]), _values(3)
    path = write_proportions(tmp_path / "sub.csv", ids, values, expected_ids=ids[::-1])
    assert path.read_text().splitlines()[0] == ",".join(SUBMISSION_COLUMNS)
    back = read_proportions(path, require_sum_to_one=True)
    assert np.array_equal(back.ids, ids) and np.array_equal(back.values, values)  # bit-exact


def test_submission_ids_must_be_exactly_the_test_ids(tmp_path: Path):
    ids = np.array([1, 2, 3])
    with pytest.raises(DataError, match="missing sample_id 4"):
        write_proportions(tmp_path / "s.csv", ids, _values(3), expected_ids=np.array([1, 2, 3, 4]))
    with pytest.raises(DataError, match="duplicated sample_id 2"):
        write_proportions(tmp_path / "s.csv", np.array([1, 2, 2]), _values(3))
    bad = _values(3)
    bad[1, 4] = np.nan
    with pytest.raises(DataError, match="sample_id 2: NaN, inf or negative"):
        write_proportions(tmp_path / "s.csv", ids, bad)
    assert not list(tmp_path.iterdir())


def test_failed_write_keeps_the_previous_file_and_leaves_no_partial(tmp_path: Path, monkeypatch):
    ids = np.arange(1, 101)
    path = write_proportions(tmp_path / "sub.csv", ids, _values(100))
    before = path.read_bytes()

    def crash(self, target, **kwargs):
        Path(target).write_text("sample_id,no_data\n1,0.")  # a partial file, then a crash
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", crash)
    with pytest.raises(OSError, match="disk full"):
        write_proportions(path, ids, _values(100, seed=1))
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["sub.csv"]


def test_failed_directory_write_keeps_the_previous_directory(tmp_path: Path):
    target = tmp_path / "exp"
    with atomic_dir(target) as tmp:
        (tmp / "oof.csv").write_text("complete")
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "oof.csv").write_text("half")
        raise RuntimeError("killed")
    assert (target / "oof.csv").read_text() == "complete"
    assert [p.name for p in tmp_path.iterdir()] == ["exp"]


def test_select_keeps_ids_with_their_rows():
    table = Proportions(np.array([5, 6, 7]), _values(3), np.array([0, 1, 0]))
    picked = table.select(np.array([7, 5]))
    assert picked.ids.tolist() == [7, 5] and picked.folds.tolist() == [0, 0]
    assert np.array_equal(picked.values, table.values[[2, 0]])
    with pytest.raises(DataError, match="missing sample_id 9"):
        table.select(np.array([9]))


def test_atomic_writes_get_the_permissions_open_and_mkdir_give(tmp_path: Path):
    """A submission handed to a teammate is readable as any file the user writes, not
    owner-only as a temporary file is created."""
    from landcover.atomic import write_text

    write_text(tmp_path / "sub.csv", "x")
    with atomic_dir(tmp_path / "exp") as tmp:
        (tmp / "oof.csv").write_text("y")
    (tmp_path / "plain.csv").write_text("x")
    (tmp_path / "plain").mkdir()

    def mode(name: str) -> int:
        return (tmp_path / name).stat().st_mode & 0o777

    assert mode("sub.csv") == mode("plain.csv") and mode("exp") == mode("plain")
