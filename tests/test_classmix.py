"""The class-mix shift test's parts: regions of a label table, the resampling that plays them,
and the row weights that tune a blend for the average region."""

from __future__ import annotations

import numpy as np
import pytest

from landcover.classmix import (
    class_mix_regions,
    label_regions,
    region_row_weights,
    systematic_counts,
    tilted_weights,
)


def test_label_regions_are_bands_of_raster_rows():
    ids = np.arange(1, 45 * 25 + 1)  # 25 raster rows of 45
    scored = np.zeros((len(ids), 8))
    scored[:, 1] = 1.0
    scored[45 * 10 :, 1], scored[45 * 10 :, 2] = 0.25, 0.75  # rows 10.. are mostly broadleaf
    out = label_regions(ids, scored, row_width=45, band_rows=10, min_patches=200)
    assert [name for name, _ in out] == ["rows 0-9", "rows 10-19", "rows 20-29"]
    assert np.allclose(out[0][1], np.eye(8)[1])
    assert out[1][1][2] == pytest.approx(0.75)
    ragged = label_regions(ids, scored, row_width=45, band_rows=10, min_patches=300)
    assert len(ragged) == 2  # the last band (5 rows) is left out


def test_tilted_weights_reach_a_mix_the_patches_hold():
    rng = np.random.default_rng(0)
    labels = rng.dirichlet(np.ones(8) * 0.5, size=300)
    target = np.array([0.05, 0.1, 0.4, 0.2, 0.1, 0.05, 0.05, 0.05])
    w = tilted_weights(labels, target, ridge=1e-6)
    assert w.sum() == pytest.approx(1.0) and (w > 0).all()
    assert np.abs(w @ labels - target).max() < 2e-3
    # the target the patches already hold: uniform weights
    flat = tilted_weights(labels, labels.mean(axis=0), ridge=1e-6)
    assert np.allclose(flat, 1 / len(labels), rtol=1e-3)


def test_systematic_counts_are_deterministic_and_close_to_the_weights():
    w = np.array([0.5, 0.25, 0.125, 0.125, 0.0])
    counts = systematic_counts(w, 8)
    assert counts.tolist() == [4, 2, 1, 1, 0]
    rng = np.random.default_rng(1)
    w = rng.dirichlet(np.ones(50))
    counts = systematic_counts(w, 400)
    assert counts.sum() == 400 and np.abs(counts - 400 * w).max() <= 1
    assert np.array_equal(counts, systematic_counts(w, 400))


def test_regions_out_of_reach_keep_an_effective_size():
    labels = np.zeros((100, 8))
    labels[:, 1] = 1.0
    labels[:3, 1], labels[:3, 7] = 0.5, 0.5  # water: three patches hold any
    regions = class_mix_regions(labels, [("lake", np.eye(8)[7])], n=100)
    (lake,) = regions
    assert lake.counts.sum() == 100
    assert lake.ess >= 20 - 1e-9  # not three patches drawn 33 times each
    assert lake.reached[7] > labels[:, 7].mean()  # yet as far toward water as that allows


def test_row_weights_are_the_mean_of_the_regions_weights():
    rng = np.random.default_rng(2)
    labels = rng.dirichlet(np.ones(8), size=200)
    mixes = [("a", np.eye(8)[1] * 0.5 + 0.5 / 8), ("b", np.eye(8)[2] * 0.5 + 0.5 / 8)]
    regions = class_mix_regions(labels, mixes)
    weights = region_row_weights(regions)
    assert weights.mean() == pytest.approx(1.0)
    kls = rng.random(200)  # a KL per row: weighted by these, the mean of the regions' KLs
    by_region = np.mean([r.weights @ kls for r in regions])
    assert np.mean(weights * kls) == pytest.approx(by_region)
