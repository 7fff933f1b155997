"""The class-mix shift test's parts: regions of a label table, the resampling that plays them,
and EM re-estimation of a region's class prior."""

from __future__ import annotations

import numpy as np
import pytest

from landcover.classmix import (
    class_mix_regions,
    label_regions,
    systematic_counts,
    tilted_weights,
)
from landcover.newground import counted, region_proportions
from landcover.priors import (
    Calibration,
    FoldShift,
    adapt_region,
    bbse_ratio,
    em_prior,
    em_prior_groups,
    reweighted,
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


def _two_class_pixels(prior: float, n: int, rng: np.random.Generator) -> np.ndarray:
    """Pixels of two Gaussian classes (means -1, 1, unit variance), class 1 with probability
    ``prior``, and their exact posteriors under a 50/50 source prior, as (n, 2)."""
    y = rng.random(n) < prior
    x = rng.normal(np.where(y, 1.0, -1.0), 1.0)
    p1 = 1 / (1 + np.exp(-2 * x))  # equal priors: the log-odds is 2x
    return np.stack([1 - p1, p1], axis=1)


def test_em_recovers_a_region_prior_from_calibrated_posteriors():
    rng = np.random.default_rng(0)
    probs = _two_class_pixels(0.8, 200_000, rng)
    assert probs.mean(axis=0)[1] < 0.75  # the raw mean lags the shift
    prior, ratio = em_prior(probs, np.array([0.5, 0.5]))
    assert prior[1] == pytest.approx(0.8, abs=0.01)
    assert ratio == pytest.approx(prior / 0.5)
    # the source's own mix: nothing moves
    same, ratio = em_prior(_two_class_pixels(0.5, 200_000, rng), np.array([0.5, 0.5]))
    assert same[1] == pytest.approx(0.5, abs=0.01) and ratio == pytest.approx(1.0, abs=0.03)


def test_em_weights_count_pixels_and_absent_classes_keep_their_mass():
    rng = np.random.default_rng(2)
    probs = _two_class_pixels(0.8, 20_000, rng)
    twice = em_prior(np.concatenate([probs, probs]), np.array([0.5, 0.5]))[0]
    weighted = em_prior(probs, np.array([0.5, 0.5]), weights=np.full(len(probs), 2.0))[0]
    assert weighted == pytest.approx(twice, abs=1e-5)  # float32 sums, EM to 1e-6
    three = np.concatenate([probs * 0.9, np.full((len(probs), 1), 0.1)], axis=1)
    prior, ratio = em_prior(three, np.array([0.5, 0.5, 0.0]))
    assert np.isnan(ratio[2]) and prior[2] == pytest.approx(0.1, abs=1e-4)
    adjusted = reweighted(three, ratio)
    assert np.allclose(adjusted.sum(axis=1), 1.0, atol=1e-6)
    assert np.allclose(adjusted[:, 2], 0.1, atol=1e-6)


def test_em_over_groups_shares_one_region_prior():
    rng = np.random.default_rng(3)
    a, b = _two_class_pixels(0.8, 50_000, rng), _two_class_pixels(0.8, 50_000, rng)
    # the second model trained where class 1 was 25%: its posteriors carry that prior
    prior_b = np.array([0.75, 0.25])
    b_under = reweighted(b, prior_b / 0.5)
    target, (ra, rb) = em_prior_groups([(a, [0.5, 0.5], None), (b_under, prior_b, None)])
    assert target[1] == pytest.approx(0.8, abs=0.015)
    assert ra == pytest.approx(target / 0.5) and rb == pytest.approx(target / prior_b)


def test_region_proportions_count_each_draw_by_its_fold():
    rng = np.random.default_rng(4)
    pixels = rng.dirichlet(np.ones(10), size=(6, 5)).astype(np.float32)
    counts = np.array([2, 0, 1, 1, 0, 3])
    folds = np.array([0, 0, 1, 1, 2, 2])
    out, prior = region_proportions(pixels, counts, folds, None, "em", hard=False)
    assert prior is None and not out[[1, 4]].any()
    assert np.allclose(out[0], pixels[0].mean(axis=0))
    hard = counted(pixels, hard=True)
    assert np.allclose(hard.sum(axis=1), 1.0) and set(np.unique(hard * 5)) <= set(range(6))
    shifts = [FoldShift(np.full(10, 0.1))] * 3
    adapted, prior = region_proportions(pixels, counts, folds, shifts, "em", hard=False)
    assert prior.sum() == pytest.approx(1.0) and np.allclose(adapted[counts > 0].sum(axis=1), 1)


def test_calibration_undoes_a_temperature_and_a_bias():
    rng = np.random.default_rng(5)
    probs = _two_class_pixels(0.5, 100_000, rng)
    labels = (rng.random(len(probs)) < probs[:, 1]).astype(int)  # calibrated by construction
    z = np.log(probs) * 2.0 + np.array([0.0, 0.7])  # sharpened, and tilted toward class 1
    skewed = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    cal = Calibration.fit(skewed, labels)
    assert cal.temperature == pytest.approx(2.0, rel=0.05)
    assert cal.bias[1] - cal.bias[0] == pytest.approx(-0.35, abs=0.05)
    assert np.abs(cal(skewed) - probs).max() < 0.02


def test_bbse_and_calibrated_em_recover_a_shift_from_held_out_pixels():
    rng = np.random.default_rng(6)
    source_probs = _two_class_pixels(0.5, 100_000, rng)
    source_labels = (rng.random(len(source_probs)) < source_probs[:, 1]).astype(int)
    joint = np.zeros((2, 2))
    np.add.at(joint, (source_probs.argmax(axis=1), source_labels), 1 / len(source_labels))
    target = _two_class_pixels(0.8, 100_000, rng)
    shift = FoldShift(np.array([0.5, 0.5]), confusion=joint)
    prior, (adapted,) = adapt_region("bbse", [(target, None, shift)])
    assert prior[1] == pytest.approx(0.8, abs=0.02)
    assert adapted.mean(axis=0)[1] > target.mean(axis=0)[1]
    w = bbse_ratio(joint, np.bincount(target.argmax(axis=1), minlength=2) / len(target))
    assert w[1] / w[0] == pytest.approx(4.0, rel=0.1)  # 0.8 / 0.2 over 0.5 / 0.5
    cal = Calibration.fit(source_probs, source_labels)
    prior, _ = adapt_region("em-calibrated", [(target, None, FoldShift([0.5, 0.5], cal))])
    assert prior[1] == pytest.approx(0.8, abs=0.02)
    with pytest.raises(ValueError, match="prior adaptation"):
        adapt_region("guess", [(target, None, shift)])
