"""Tuning a blend (``blend_model``) on OOF predictions: a seeded Optuna TPE study over the
temperatures, weights and floor, an L-BFGS-B polish of ``blend_objective.Problem`` (from the
study's best trials, then from each unweighted model revived), weights under ``MIN_WEIGHT``
snapped to 0; never worse than the best single model, and scored honestly by nested CV over
the OOF folds (``fit_blend``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import optuna
from scipy.optimize import minimize, minimize_scalar

from .blend_model import (
    FLOOR_UNIFORM,
    MIN_FLOOR,
    N_SCORED,
    T_RANGE,
    BlendParams,
    Stack,
    blend,
    lacking,
)
from .blend_objective import Problem
from .constants import SCORED_CLASSES
from .metric import kl_divergence


@dataclass(frozen=True)
class Tuned:
    params: BlendParams
    kl: float
    source: str  # "study", "polish" or "single model" (tuning did not beat the best one)
    study_kl: float  # best trial of the Optuna study, before the polish


MIN_WEIGHT = 1e-3  # a model weighted less is dropped when that costs under SNAP_TOLERANCE
SNAP_TOLERANCE = 1e-4  # relative KL
POLISH_STARTS = 3  # L-BFGS-B runs from this many of the study's best trials


def polished(problem: Problem, tuned: Tuned, starts: list[np.ndarray]) -> Tuned:
    """The best of ``tuned`` and what L-BFGS-B (analytic gradient) reaches from each start, by
    ``Problem.objective``."""
    best = problem.objective(tuned.params)
    for x0 in starts:
        res = minimize(
            problem.objective_and_grad,
            x0,
            jac=True,
            method="L-BFGS-B",
            bounds=problem.bounds(),
            options={"maxiter": 200},
        )
        params = problem.unpack(res.x)
        if problem.objective(params) < best:
            best = problem.objective(params)
            tuned = Tuned(params, problem.kl(params), "polish", tuned.study_kl)
    return tuned


def revived(problem: Problem, params: BlendParams) -> list[np.ndarray]:
    """Starts that give each model without weight in ``params`` a tenth of it, at either end
    of ``T_RANGE``. A model at weight 0 and T = 1 is a local optimum the gradient cannot leave
    when the model only helps sharpened (its T has no effect at weight 0, and unsharpened it
    hurts): on the sample-cpu OOF with the least floor, the polish of the best trial kept the
    network at 0 (0.01692) where 0.01606 exists with it at 0.10 and T 0.25."""
    m = problem.stack.n_models
    starts = []
    for i in np.flatnonzero(params.weights < MIN_WEIGHT) if m > 1 else []:
        weights = 0.9 * params.weights + 0.1 * np.eye(m)[i]
        for t in T_RANGE if problem.temperatures else (1.0,):
            temps = params.temperatures.copy()
            temps[i] = t
            revived_params = dataclasses.replace(params, weights=weights, temperatures=temps)
            starts.append(problem.pack(revived_params))
    return starts


def snap_small_weights(problem: Problem, tuned: Tuned) -> Tuned:
    """Zero the weights under ``MIN_WEIGHT`` (the polish leaves crumbs like 7e-8) and renormalise,
    when the KL moves by under ``SNAP_TOLERANCE`` of itself: a member with no weight is not
    loaded or run at prediction time."""
    p = tuned.params
    small = (p.weights > 0) & (p.weights < MIN_WEIGHT)
    if not small.any() or small.all():
        return tuned
    weights = np.where(small, 0.0, p.weights)
    snapped = dataclasses.replace(p, weights=weights / weights.sum())
    kl = problem.kl(snapped)
    if kl > tuned.kl * (1 + SNAP_TOLERANCE):
        return tuned
    return Tuned(snapped, kl, tuned.source, tuned.study_kl)


def tune(problem: Problem, *, trials: int, seed: int, polish: bool = True) -> Tuned:
    """Seeded TPE study over (T, w, floor), optional L-BFGS-B polish (the class calibration
    too, if the problem tunes one), never worse than a model (at the problem's least floor)."""
    m = problem.stack.n_models
    names, bounds = problem.names()[: problem.n_core], problem.bounds()[: problem.n_core]

    def objective(trial: optuna.Trial) -> float:
        x = [trial.suggest_float(n, lo, hi) for n, (lo, hi) in zip(names, bounds, strict=True)]
        return problem.kl(problem.unpack(problem.full(np.array(x))))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # multivariate TPE: weights and temperatures interact, so sample them jointly
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed, multivariate=True))
    # Start from the points that must be beaten: the equal blend and every single model.
    least = problem.min_floor
    starts = [BlendParams.equal(m, least)] + [
        BlendParams.single(m, i, least) for i in range(m) if m > 1
    ]
    for start in starts:
        core = problem.pack(start)[: problem.n_core]
        study.enqueue_trial(dict(zip(names, core.tolist(), strict=True)))
    study.optimize(objective, n_trials=trials)
    best = problem.unpack(problem.full(np.array([study.best_params[n] for n in names])))
    best_kl = problem.kl(best)
    tuned = Tuned(best, best_kl, "study", best_kl)

    if polish:
        # from the best trials, then from what reviving each unweighted model gives
        ranked = sorted((t for t in study.trials if t.value is not None), key=lambda t: t.value)
        starts = [problem.pack(best)] + [
            problem.full(np.array([t.params[n] for n in names], dtype=np.float64))
            for t in ranked[1:POLISH_STARTS]
        ]
        tuned = polished(problem, tuned, starts)
        tuned = polished(problem, tuned, revived(problem, tuned.params))

    tuned = snap_small_weights(problem, tuned)
    singles = [problem.kl(BlendParams.single(m, i, least)) for i in range(m)]
    i_best = int(np.argmin(singles))
    if singles[i_best] < tuned.kl:
        return Tuned(BlendParams.single(m, i_best, least), singles[i_best], "single model", best_kl)
    # A model without weight has no meaningful temperature: report T = 1 (the blend is unchanged)
    p = tuned.params
    temps = np.where(p.weights > 0, p.temperatures, 1.0)
    return Tuned(dataclasses.replace(p, temperatures=temps), tuned.kl, tuned.source, best_kl)


def best_temperature(problem: Problem, i: int) -> tuple[float, float]:
    """(T, KL) of model i alone at its own best temperature, no floor."""
    m = problem.stack.n_models

    def kl_at(log_t: float) -> float:
        return problem.kl(BlendParams(np.eye(m)[i], np.full(m, np.exp(log_t)), 0.0))

    res = minimize_scalar(kl_at, bounds=np.log(T_RANGE), method="bounded")
    as_is = kl_at(0.0)
    return (float(np.exp(res.x)), float(res.fun)) if res.fun < as_is else (1.0, as_is)


@dataclass(frozen=True)
class BlendFit:
    """A tuned blend with every score a reader needs to judge it."""

    params: BlendParams
    prior: np.ndarray  # the floor's target from the whole OOF truth (floor_target)
    kl: float  # in-sample OOF KL of the chosen blend
    source: str  # as in Tuned
    study_kl: float
    nested_kl: float | None  # KL of the held-out fold predictions, each tuned without its fold
    nested_fold_kl: dict[int, float]
    nested_oof: np.ndarray | None  # (n, 8) the nested-CV predictions
    # fold -> (the blend tuned without it, its floor's target): what scores that fold's rows
    nested_params: dict[int, tuple[BlendParams, np.ndarray]]
    equal_kl: float  # equal weights, T = 1, no floor
    single_kl: np.ndarray  # (m,) each model as is
    alone_temperature: np.ndarray  # (m,) each model's own best temperature, no floor
    alone_kl: np.ndarray  # (m,) its KL there
    min_floor: float = 0.0  # the least floor tuning allowed (0 unless the truth lacks a class)
    floor_uniform: float = 0.0  # the uniform share of the floor's target, likewise
    lacking: list[str] = field(default_factory=list)  # scored classes the OOF truth lacks
    tuning_kl: float | None = None  # with row weights: the weighted KL tuning reached
    equal_tuning_kl: float | None = None  # with row weights: equal weights, T = 1, weighted

    @property
    def best_single(self) -> int:
        return int(np.argmin(self.single_kl))


def fit_blend(
    preds: np.ndarray,
    truth: np.ndarray,
    folds: np.ndarray,
    *,
    trials: int = 200,
    seed: int = 0,
    use_floor: bool = True,
    min_floor: float = MIN_FLOOR,
    floor_uniform: float = FLOOR_UNIFORM,
    polish: bool = True,
    class_calibration: bool = False,
    temperatures: bool = True,
    row_weights: np.ndarray | None = None,
    log: Callable[[str], None] | None = None,
) -> BlendFit:
    """Tune on all OOF rows, then re-tune without each fold to score it (nested CV).

    ``preds`` is (models, rows, classes) aligned with ``truth`` (rows, classes) and ``folds``;
    the floor is tuned from ``min_floor`` up toward
    ``floor_target(scored_prior(truth), floor_uniform)``
    (``use_floor=False``: no floor at all); ``class_calibration``: a power and a bias per scored
    class too; ``temperatures=False``: every model at T = 1; ``row_weights`` (n,): each OOF row's
    weight in what tuning minimises (nested CV, and every score reported, stay unweighted).
    """
    log = log or (lambda _msg: None)
    stack = Stack.of(preds)
    truth = np.asarray(truth, dtype=np.float64)
    folds = np.asarray(folds)
    m = stack.n_models
    settings = {
        "use_floor": use_floor,
        "min_floor": min_floor,
        "uniform": floor_uniform,
        "class_calibration": class_calibration,
        "temperatures": temperatures,
        "row_weights": row_weights,
    }
    problem = Problem.build(stack, truth, **{**settings, "row_weights": None})  # every score
    tuner = Problem.of_rows(stack, truth, np.ones(len(stack), dtype=bool), **settings)
    log(f"tuning {m} model(s) on {len(stack)} OOF rows ({trials} trials)")
    tuned = tune(tuner, trials=trials, seed=seed, polish=polish)

    nested_oof, nested_kl, nested_fold_kl = None, None, {}
    nested_params: dict[int, tuple[BlendParams, np.ndarray]] = {}
    fold_ids = np.unique(folds)
    if len(fold_ids) > 1:
        nested_oof = np.empty((len(stack), N_SCORED))
        for k in fold_ids:
            held = folds == k
            log(f"nested CV: tuning without fold {k} ({len(fold_ids)} folds)")
            inner = Problem.of_rows(stack, truth, ~held, **settings)
            params = tune(inner, trials=trials, seed=seed, polish=polish).params
            nested_params[int(k)] = (params, inner.prior)
            nested_oof[held] = blend(stack.rows(held), params, inner.prior)
            nested_fold_kl[int(k)] = kl_divergence(truth[held], nested_oof[held])
        nested_kl = kl_divergence(truth, nested_oof)

    singles = np.array([problem.kl(BlendParams.single(m, i)) for i in range(m)])
    alone = np.array([best_temperature(problem, i) for i in range(m)])
    return BlendFit(
        params=tuned.params,
        prior=problem.prior,
        kl=problem.kl(tuned.params),
        source=tuned.source,
        study_kl=tuned.study_kl,
        nested_kl=nested_kl,
        nested_fold_kl=nested_fold_kl,
        nested_oof=nested_oof,
        nested_params=nested_params,
        equal_kl=problem.kl(BlendParams.equal(m)),
        single_kl=singles,
        alone_temperature=alone[:, 0],
        alone_kl=alone[:, 1],
        min_floor=problem.min_floor,
        floor_uniform=problem.uniform,
        lacking=[c for c, gone in zip(SCORED_CLASSES, lacking(truth), strict=True) if gone],
        tuning_kl=None if row_weights is None else tuned.kl,
        equal_tuning_kl=None if row_weights is None else tuner.kl(BlendParams.equal(m)),
    )


def kl_vs_temperature(preds: np.ndarray, truth: np.ndarray, temperatures: np.ndarray) -> np.ndarray:
    """OOF KL of each model alone over a grid of temperatures, shape (models, len(grid))."""
    problem = Problem.build(Stack.of(preds), truth, use_floor=False)
    m = problem.stack.n_models
    return np.array(
        [
            [problem.kl(BlendParams(np.eye(m)[i], np.full(m, t), 0.0)) for t in temperatures]
            for i in range(m)
        ]
    )
