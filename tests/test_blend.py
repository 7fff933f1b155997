"""Blending: known temperatures are undone, useless models dropped, outputs re-score exactly."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from landcover import blend_model, blend_tuning
from landcover.artifacts import load_experiment, write_experiment
from landcover.blend_inputs import load_inputs
from landcover.blend_model import BlendParams, Stack, blend
from landcover.blend_objective import Problem
from landcover.blend_outputs import write_outputs
from landcover.blend_tuning import fit_blend, tune
from landcover.constants import SCORED_CLASSES
from landcover.errors import ArtifactError, DataError
from landcover.metric import kl_divergence, scored_proportions
from landcover.submission import load_submitted
from landcover.tables import Proportions, align, read_proportions, write_proportions

REPO = Path(__file__).resolve().parents[1]
N, N_TEST = 300, 40


def power(p: np.ndarray, t0: float) -> np.ndarray:
    """p ** (1 / t0), rows renormalised: t0 < 1 sharpens, t0 > 1 flattens."""
    z = np.log(p) / t0
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def ten(scored: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """8 scored shares -> 10 columns with some no_data/clouds mass, which the metric drops."""
    ignored = rng.uniform(0, 0.2, size=(len(scored), 2)) * (rng.random((len(scored), 1)) < 0.3)
    return np.hstack([ignored, scored * (1 - ignored.sum(axis=1, keepdims=True))])


def world(seed: int, n: int = N) -> tuple[np.ndarray, np.ndarray]:
    """(belief q of a calibrated model, truth drawn around it), both (n, 8).

    E[truth | q] = q, so q at T = 1 is the best a temperature can do: a model shown as q ** (1/t0)
    is best served by T = 1 / t0.
    """
    rng = np.random.default_rng(seed)
    q = rng.dirichlet(np.full(8, 0.7), size=n)
    truth = np.stack([rng.dirichlet(30 * row + 1e-2) for row in q])
    return q, truth


@pytest.mark.parametrize("t0", [0.5, 2.0])
def test_temperature_undoes_known_sharpening(t0: float) -> None:
    q, truth = world(1, n=800)
    problem = Problem.build(Stack.of(power(q, t0)[None]), truth, use_floor=False)
    tuned = tune(problem, trials=30, seed=0)
    # on 800 rows the error stays under 3% across data seeds
    assert tuned.params.temperatures[0] == pytest.approx(1 / t0, rel=0.05)


def test_useless_model_gets_no_weight() -> None:
    q, truth = world(2)
    useless = np.random.default_rng(3).dirichlet(np.ones(8), size=N)
    problem = Problem.build(Stack.of(np.stack([q, useless])), truth, use_floor=True)
    tuned = tune(problem, trials=40, seed=0)
    assert tuned.params.weights[1] < 0.02  # under 0.004 across data seeds
    assert tuned.kl <= problem.kl(BlendParams.single(2, 0))


def test_crumbs_of_weight_are_dropped_and_the_kl_rescored() -> None:
    q, truth = world(2)
    rng = np.random.default_rng(3)
    preds = np.stack([q, power(q, 0.8), rng.dirichlet(np.ones(8), size=N)])
    problem = Problem.build(Stack.of(preds), truth, use_floor=False)
    crumbs = BlendParams(np.array([0.7, 0.3 - 7e-8, 7e-8]), np.array([1.0, 1.2, 0.9]), 0.0)
    tuned = blend_tuning.Tuned(crumbs, problem.kl(crumbs), "polish", 1.0)
    snapped = blend_tuning.snap_small_weights(problem, tuned)
    np.testing.assert_array_equal(snapped.params.weights[2], 0.0)
    assert snapped.params.weights.sum() == pytest.approx(1.0, abs=1e-15)
    assert snapped.kl == problem.kl(snapped.params)  # the reported KL is the snapped blend's
    assert snapped.kl == pytest.approx(tuned.kl, rel=blend_tuning.SNAP_TOLERANCE)
    # a small weight that carries the blend stays: dropping it would cost more than the tolerance
    matters = BlendParams(np.array([0.0, 1 - 5e-4, 5e-4]), np.ones(3), 0.0)
    perfect = Problem.build(Stack.of(np.stack([q, q, truth])), truth, use_floor=False)
    kept = blend_tuning.snap_small_weights(
        perfect, blend_tuning.Tuned(matters, perfect.kl(matters), "", 1)
    )
    assert kept.params is matters


def test_one_hot_weights_reproduce_the_model_exactly() -> None:
    q, truth = world(4)
    rng = np.random.default_rng(4)
    raw = np.stack([ten(q, rng), ten(power(q, 0.7), rng), ten(rng.dirichlet(np.ones(8), N), rng)])
    stack = Stack.of(raw)
    for i in range(3):
        pred = blend(stack, BlendParams.single(3, i), prior=np.full(8, 1 / 8))
        np.testing.assert_array_equal(pred, scored_proportions(raw[i]))
        assert kl_divergence(truth, pred) == pytest.approx(kl_divergence(truth, raw[i]), rel=1e-12)


def test_gradient_matches_finite_differences() -> None:
    q, truth = world(5)
    rng = np.random.default_rng(5)
    problem = Problem.build(
        Stack.of(np.stack([power(q, 0.6), rng.dirichlet(np.ones(8), N)])), truth, use_floor=True
    )
    x = np.array([np.log(1.4), np.log(0.8), 0.7, 0.2, 0.01])
    _, grad = problem.kl_and_grad(x)
    h = 1e-6
    numeric = [
        (problem.kl(problem.unpack(x + h * e)) - problem.kl(problem.unpack(x - h * e))) / (2 * h)
        for e in np.eye(len(x))
    ]
    np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-8)


def test_gradient_with_a_class_calibration_matches_finite_differences() -> None:
    """Through the class power and bias too, and for the objective with its L2 pull; a class
    the labels lack has none (its bounds hold it at 0)."""
    q, truth = world(5)
    truth[:, 6] = 0.0
    truth /= truth.sum(axis=1, keepdims=True)
    rng = np.random.default_rng(5)
    stack = Stack.of(np.stack([power(q, 0.6), rng.dirichlet(np.ones(8), N)]))
    problem = Problem.build(stack, truth, True, min_floor=0.01, uniform=0.5, class_calibration=True)
    bounds = problem.bounds()
    assert bounds[problem.n_core + 6] == bounds[problem.n_core + 14] == (0.0, 0.0)
    x = np.concatenate([[np.log(1.4), np.log(0.8), 0.7, 0.2, 0.015], rng.normal(0, 0.3, 16)])
    params = problem.unpack(x)
    assert np.isnan(params.bias[6]) and np.isnan(params.power[6])
    h = 1e-6
    for value_and_grad, value in [
        (problem.kl_and_grad, problem.kl),
        (problem.objective_and_grad, problem.objective),
    ]:
        _, grad = value_and_grad(x)
        numeric = [
            (value(problem.unpack(x + h * e)) - value(problem.unpack(x - h * e))) / (2 * h)
            for e in np.eye(len(x))
        ]
        np.testing.assert_allclose(grad, numeric, rtol=1e-4, atol=1e-8)


def test_class_calibration_finds_back_what_a_model_gets_wrong_on_every_row() -> None:
    """A model that gives one class a third of its calibrated share on every row, and another
    its share squared: the bias and the power find 3 and 1/2 back, which no temperature can;
    off, there is none. A class the labels lack gets none and keeps its share."""
    q, truth = world(8, n=600)
    wrong = q.copy()
    wrong[:, 0] /= 3
    wrong[:, 1] **= 2
    wrong /= wrong.sum(axis=1, keepdims=True)
    folds = np.arange(600) % 3
    kwargs = {"trials": 20, "seed": 0, "use_floor": False}
    plain = fit_blend(wrong[None], truth, folds, **kwargs)
    fixed = fit_blend(wrong[None], truth, folds, class_calibration=True, **kwargs)
    assert plain.params.bias is None and plain.params.power is None

    # a power acts on log shares, and the row's scale then moves them all: compare log ratios
    def error(pred: np.ndarray) -> np.ndarray:
        """Per class, the median over rows of log(pred / q), less the untouched classes'."""
        log_ratio = np.log(pred + 1e-12) - np.log(q)
        spread = log_ratio - log_ratio[:, 2:].mean(axis=1, keepdims=True)
        return np.abs(np.median(spread, axis=0))

    assert error(wrong)[:2].min() > 1.0
    assert error(blend_model.calibrated(wrong, fixed.params.bias, fixed.params.power)).max() < 0.2
    # the others' power goes with the model's temperature (1.09 for 1.07-1.11 here)
    powers = fixed.params.power
    assert powers[1] / np.median(powers[2:]) == pytest.approx(0.5, rel=0.15)
    assert fixed.nested_kl < 0.8 * plain.nested_kl

    truth[:, 7] = 0.0
    truth /= truth.sum(axis=1, keepdims=True)
    lacking = fit_blend(wrong[None], truth, folds, class_calibration=True, **kwargs).params
    assert np.isnan(lacking.bias[7]) and not np.isnan(lacking.bias[:7]).any()
    assert np.isnan(lacking.power[7])
    out = blend_model.calibrated(wrong, lacking.bias, lacking.power)
    np.testing.assert_allclose(out[:, 7], wrong[:, 7], rtol=1e-12)
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-12)


def test_never_worse_than_the_best_single_model() -> None:
    _, truth = world(6)
    useless = np.random.default_rng(6).dirichlet(np.ones(8), size=N)
    problem = Problem.build(Stack.of(np.stack([truth, useless])), truth, use_floor=True)
    # one trial = only the equal blend, which the perfect model beats: fall back to it
    tuned = tune(problem, trials=1, seed=0, polish=False)
    assert tuned.source == "single model"
    np.testing.assert_array_equal(tuned.params.weights, [1.0, 0.0])
    assert tuned.kl == problem.kl(BlendParams.single(2, 0))


def test_same_seed_same_blend() -> None:
    q, truth = world(7)
    preds = np.stack([power(q, 0.6), power(q, 1.5)])
    folds = np.arange(N) % 3
    a = fit_blend(preds, truth, folds, trials=15, seed=3)
    b = fit_blend(preds, truth, folds, trials=15, seed=3)
    np.testing.assert_array_equal(a.params.weights, b.params.weights)
    np.testing.assert_array_equal(a.params.temperatures, b.params.temperatures)
    assert (a.params.floor, a.kl, a.nested_kl) == (b.params.floor, b.kl, b.nested_kl)


def test_row_weights_tune_for_the_rows_they_weigh() -> None:
    """Weights 2 on half the rows and 0 on the others tune what those rows alone tune; the
    scores reported stay the unweighted ones; temperatures can be held at 1."""
    q, truth = world(8)
    preds = np.stack([power(q, 0.6), power(q, 1.5)])
    folds = np.arange(N) % 3
    half = np.arange(N) < N // 2
    settings = {"trials": 12, "seed": 1, "use_floor": False}
    weighted = fit_blend(preds, truth, folds, row_weights=2.0 * half, **settings)
    alone = fit_blend(preds[:, half], truth[half], folds[half], **settings)
    np.testing.assert_allclose(weighted.params.weights, alone.params.weights, rtol=1e-6)
    np.testing.assert_allclose(weighted.params.temperatures, alone.params.temperatures, rtol=1e-6)
    plain = Problem.build(Stack.of(preds), truth, use_floor=False)
    assert weighted.kl == pytest.approx(plain.kl(weighted.params), rel=1e-12)
    # the weighted objective is reported beside the unweighted scores, equal weights too
    assert weighted.tuning_kl == pytest.approx(alone.kl, rel=1e-6)
    assert weighted.equal_tuning_kl == pytest.approx(alone.equal_kl, rel=1e-9)
    assert alone.tuning_kl is None and alone.equal_tuning_kl is None
    fixed = fit_blend(preds, truth, folds, temperatures=False, **settings)
    assert np.all(fixed.params.temperatures == 1.0)
    assert fixed.kl > fit_blend(preds, truth, folds, **settings).kl


def make_oof_dir(tmp_path: Path, *, record_labels: bool = True) -> tuple[Path, Path]:
    """oof/ with a benchmark, a sharpened copy of a calibrated model and a useless one."""
    rng = np.random.default_rng(11)
    q, truth = world(11)
    ids = rng.permutation(5000)[:N] + 100
    folds = np.arange(N) % 4
    test_ids = rng.permutation(np.arange(9000, 9000 + N_TEST))
    test_q = rng.dirichlet(np.full(8, 0.7), size=N_TEST)
    labels = tmp_path / "train_labels.csv"
    write_proportions(labels, ids, ten(truth, rng))
    models = {
        "a_sharp": (power(q, 0.5), power(test_q, 0.5), "resnet"),
        "b_unet_benchmark": (power(q + 0.05, 1.2), test_q, "unet_benchmark"),
        "c_useless": (rng.dirichlet(np.ones(8), N), rng.dirichlet(np.ones(8), N_TEST), "noise"),
    }
    oof_dir = tmp_path / "oof"
    for name, (oof, test, meta_name) in models.items():
        order, test_order = rng.permutation(N), rng.permutation(N_TEST)  # rows travel with ids
        meta = {"name": meta_name, "data_fingerprint": "fp1"}
        if record_labels:
            meta["labels_path"] = str(labels)
        write_experiment(
            oof_dir / name,
            oof=Proportions(ids[order], ten(oof, rng)[order], folds[order]),
            test=Proportions(test_ids[test_order], ten(test, rng)[test_order]),
            meta=meta,
            config={"name": name},
            scores={},
        )
    return oof_dir, labels


def test_submission_validates_and_oof_rescores(tmp_path: Path) -> None:
    oof_dir, labels = make_oof_dir(tmp_path)
    inputs = load_inputs(oof_dir)
    fit = fit_blend(inputs.oof, inputs.truth, inputs.folds, trials=20, seed=0)
    out = write_outputs(tmp_path / "sub" / "blend.csv", inputs, fit, {"trials": 20, "seed": 0})

    sub = read_proportions(out, what="submission", require_sum_to_one=True, allow_fold=False)
    assert sorted(sub.ids.tolist()) == sorted(inputs.test_ids.tolist())

    side = json.loads(out.with_suffix(".json").read_text())
    truth = read_proportions(labels, require_sum_to_one=True)
    oof = read_proportions(out.with_suffix(".oof.csv"), require_sum_to_one=True)
    rescored = kl_divergence(truth.values, align(oof, truth.ids).values)
    assert rescored == pytest.approx(side["scores"]["oof_kl"], rel=1e-12)
    assert side["scores"]["oof_kl"] <= side["scores"]["best_single"]["oof_kl"]
    assert side["scores"]["benchmark"]["name"] == "b_unet_benchmark"
    assert side["data_fingerprint"] == "fp1"
    weights = {m["name"]: m["weight"] for m in side["experiments"]}
    assert weights["c_useless"] < 0.05


def test_a_class_calibration_travels_in_the_sidecar(tmp_path: Path) -> None:
    """Written per class, re-applied on loading (the blended OOF re-made exactly); a sidecar
    from before the class calibration loads without one."""
    oof_dir, _ = make_oof_dir(tmp_path)
    inputs = load_inputs(oof_dir)
    fit = fit_blend(
        inputs.oof, inputs.truth, inputs.folds, trials=20, seed=0, class_calibration=True
    )
    assert np.any(fit.params.class_bias != 0) and np.any(fit.params.class_power != 1)
    out = write_outputs(tmp_path / "sub" / "blend.csv", inputs, fit, {"trials": 20, "seed": 0})
    side_path = out.with_suffix(".json")
    side = json.loads(side_path.read_text())
    assert sorted(side["class_bias"]) == sorted(side["class_power"]) == sorted(SCORED_CLASSES)
    submitted = load_submitted(side_path)  # refuses a blend that does not re-make its OOF
    np.testing.assert_array_equal(submitted.params.bias, fit.params.bias)
    np.testing.assert_array_equal(submitted.params.power, fit.params.power)

    plain = fit_blend(inputs.oof, inputs.truth, inputs.folds, trials=20, seed=0)
    out = write_outputs(tmp_path / "old" / "blend.csv", inputs, plain, {"trials": 20, "seed": 0})
    side_path = out.with_suffix(".json")
    side = json.loads(side_path.read_text())
    assert side["class_bias"] is None and side["class_power"] is None
    del side["class_bias"], side["class_power"]
    side_path.write_text(json.dumps(side))
    assert load_submitted(side_path).params.bias is None
    side["class_bias"] = {c: "high" for c in SCORED_CLASSES}  # not numbers: one clear error
    side_path.write_text(json.dumps(side))
    with pytest.raises(ArtifactError, match="not a blend sidecar"):
        load_submitted(side_path)


def rewrite(exp_dir: Path, *, ids=None, folds=None, fingerprint=None) -> None:
    """Rewrite one experiment with altered ids, folds or data fingerprint."""
    oof = read_proportions(exp_dir / "oof.csv")
    test = read_proportions(exp_dir / "test.csv", allow_fold=False)
    meta = json.loads((exp_dir / "meta.json").read_text())
    if fingerprint:
        meta["data_fingerprint"] = fingerprint
    oof = Proportions(
        oof.ids if ids is None else ids(oof.ids),
        oof.values,
        oof.folds if folds is None else folds(oof.folds),
    )
    write_experiment(exp_dir, oof=oof, test=test, meta=meta, config={}, scores={})


@pytest.mark.parametrize(
    "change, message",
    [
        ({"ids": lambda ids: np.where(ids == ids[0], 99999, ids)}, "sample ids disagree"),
        ({"folds": lambda f: np.where(np.arange(len(f)) == 0, (f + 1) % 4, f)}, "fold"),
        ({"fingerprint": "other"}, "different data"),
    ],
)
def test_incompatible_experiments_are_refused(tmp_path: Path, change: dict, message: str) -> None:
    oof_dir, _ = make_oof_dir(tmp_path)
    rewrite(oof_dir / "c_useless", **change)
    with pytest.raises(ArtifactError, match=message):
        load_inputs(oof_dir)
    load_inputs(oof_dir, ["a_sharp", "b_unet_benchmark"])  # the others still blend


def test_labels_must_be_known_and_match_the_oof(tmp_path: Path) -> None:
    oof_dir, labels = make_oof_dir(tmp_path, record_labels=False)
    with pytest.raises(ArtifactError, match="--labels"):
        load_inputs(oof_dir)
    truth = read_proportions(labels)
    short = tmp_path / "short.csv"
    write_proportions(short, truth.ids[1:], truth.values[1:])
    with pytest.raises(DataError, match="missing sample_id"):
        load_inputs(oof_dir, labels=short)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "src" / "blend.py"), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )


def test_cli_end_to_end(tmp_path: Path) -> None:
    oof_dir, _ = make_oof_dir(tmp_path)
    out = tmp_path / "sub.csv"
    # no --labels: the path recorded in meta.json is used
    done = run_cli("--artifacts", str(oof_dir.parent), "--trials", "20", "--out", str(out))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == str(out)
    assert "nested CV" in done.stdout and "vs bench" in done.stdout
    read_proportions(out, require_sum_to_one=True, allow_fold=False)
    assert out.with_suffix(".json").is_file() and out.with_suffix(".oof.csv").is_file()


def test_cli_bad_input_exits_2_with_one_line(tmp_path: Path) -> None:
    oof_dir, labels = make_oof_dir(tmp_path)
    done = run_cli(
        "--artifacts",
        str(oof_dir.parent),
        "--experiments",
        "a_sharp,nope",
        "--labels",
        str(labels),
        "--trials",
        "5",
        "--out",
        str(tmp_path / "x.csv"),
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "nope" in done.stderr
    assert not (tmp_path / "x.csv").exists()


def test_kl_vs_temperature_has_its_minimum_near_the_undoing_temperature() -> None:
    q, truth = world(8, n=800)
    grid = np.geomspace(*blend_model.T_RANGE, 25)
    curve = blend_tuning.kl_vs_temperature(power(q, 0.5)[None], truth, grid)[0]
    assert grid[np.argmin(curve)] == pytest.approx(2.0, rel=0.15)


def test_temperatures_are_applied_per_fold_model_then_averaged(tmp_path: Path) -> None:
    """The blend tunes T on single-model OOF rows, so on test it tempers each fold model's
    predictions and then averages; tempering the fold mean would be another prediction."""
    from landcover.blend_outputs import blend_test

    oof_dir, _ = make_oof_dir(tmp_path)
    rng = np.random.default_rng(5)
    for exp_dir in sorted(oof_dir.iterdir()):  # give every experiment 4 distinct fold models
        exp = load_experiment(exp_dir)
        noise = rng.dirichlet(np.ones(10), size=(4, len(exp.test)))
        folds = 0.6 * exp.test.values[None] + 0.4 * noise
        write_experiment(
            exp_dir,
            oof=exp.oof,
            test=Proportions(exp.test.ids, folds.mean(axis=0)),
            test_folds=folds,
            meta=exp.meta,
            config=exp.config,
            scores={},
        )
    inputs = load_inputs(oof_dir)
    assert inputs.test_folds.shape == (3, 4, N_TEST, 10)
    fit = fit_blend(inputs.oof, inputs.truth, inputs.folds, trials=10, seed=0)
    params = BlendParams(np.array([0.5, 0.3, 0.2]), np.array([0.5, 2.0, 1.0]), 0.01)
    fit = dataclasses.replace(fit, params=params)
    pred, how = blend_test(inputs, fit)
    by_hand = np.mean(
        [blend(Stack.of(inputs.test_folds[:, k]), params, fit.prior) for k in range(4)], axis=0
    )
    np.testing.assert_allclose(pred, by_hand, rtol=1e-12)
    mean_first = blend(Stack.of(inputs.test), params, fit.prior)
    assert np.abs(pred - mean_first).max() > 1e-3  # the order matters at T != 1
    assert how["kl_from_mean_first"] > 0 and "per fold model" in how["order"]
    out = write_outputs(tmp_path / "blend.csv", inputs, fit, {})
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["test_calibration"]["order"] == how["order"]
    sub = read_proportions(out, allow_fold=False).select(inputs.test_ids)
    np.testing.assert_allclose(sub.values[:, 2:], pred, rtol=1e-12)


def test_polish_leaves_the_basin_of_an_unweighted_model() -> None:
    """A model that only helps sharpened is a local optimum at weight 0 and T = 1 (the gradient
    in its T vanishes there, and adding it unsharpened hurts): the polish's other starts find
    the blend that weighs it (one start from the best trial kept it at 0: 0.095 against 0.067)."""
    _, truth = world(20)
    truth = np.where(truth < 0.05, 0.0, truth)  # real labels miss most classes entirely
    truth /= truth.sum(axis=1, keepdims=True)
    rng = np.random.default_rng(0)

    def noisy() -> np.ndarray:
        p = np.clip(truth * np.exp(rng.normal(0, 0.7, truth.shape)), 1e-4, None)
        return p / p.sum(axis=1, keepdims=True)

    problem = Problem.build(Stack.of(np.stack([noisy(), power(noisy(), 8.0)])), truth, False)
    # two trials: the equal blend and model 0 alone, which wins and starts the polish
    tuned = tune(problem, trials=2, seed=0)
    assert tuned.params.weights[1] > 0.3
    assert tuned.params.temperatures[1] < 0.5
    assert tuned.kl < 0.8 * problem.kl(BlendParams.single(2, 0))


def test_least_floor_only_where_the_labels_lack_a_class() -> None:
    """Labels without natural: the blend keeps at least MIN_FLOOR toward a target with a uniform
    share, so natural is never predicted below MIN_FLOOR * FLOOR_UNIFORM / 8. Labels with every
    class: no least floor, the blend of --min-floor 0 exactly."""
    q, truth = world(11)
    folds = np.arange(N) % 3
    natural = 5  # scored column
    lacking = truth.copy()
    lacking[:, natural] = 0.0
    lacking /= lacking.sum(axis=1, keepdims=True)
    model = q.copy()
    model[:, natural] = 0.0  # a member never trained on it gives exact zeros
    model /= model.sum(axis=1, keepdims=True)
    preds = np.stack([model, power(q, 2.0)])

    fit = fit_blend(preds, lacking, folds, trials=15, seed=0)
    assert fit.lacking == ["natural"]
    assert fit.min_floor == blend_model.MIN_FLOOR > 0
    assert fit.params.floor >= blend_model.MIN_FLOOR
    pred = blend(Stack.of(preds), fit.params, fit.prior)
    least = blend_model.MIN_FLOOR * blend_model.FLOOR_UNIFORM / 8
    assert pred[:, natural].min() >= least * (1 - 1e-9)
    assert fit.nested_oof[:, natural].min() >= least * (1 - 1e-9)  # inner fits floor it too
    # what it costs in-region, where natural never occurs: at most the mass it moves
    bare = fit_blend(preds, lacking, folds, trials=15, seed=0, min_floor=0.0, floor_uniform=0.0)
    assert bare.params.floor < blend_model.MIN_FLOOR
    assert bare.kl < fit.kl <= bare.kl - np.log(1 - 2 * blend_model.MIN_FLOOR)

    every = fit_blend(preds, truth, folds, trials=15, seed=0)
    zero = fit_blend(preds, truth, folds, trials=15, seed=0, min_floor=0.0, floor_uniform=0.0)
    assert every.lacking == [] and every.min_floor == 0.0 and every.floor_uniform == 0.0
    np.testing.assert_array_equal(every.params.weights, zero.params.weights)
    assert every.params.floor == zero.params.floor
    assert every.nested_kl == zero.nested_kl
    np.testing.assert_array_equal(every.prior, zero.prior)


def test_floor_settings_are_checked() -> None:
    q, truth = world(12)
    with pytest.raises(ValueError, match="minimum floor"):
        Problem.build(Stack.of(q[None]), truth, True, min_floor=0.7)
    with pytest.raises(ValueError, match="uniform share"):
        Problem.build(Stack.of(q[None]), truth, True, uniform=1.5)
    bad = run_cli("--min-floor", "0.7")
    assert bad.returncode == 2
    assert "--min-floor: expected a number in [0, 0.5], got 0.7" in bad.stderr
