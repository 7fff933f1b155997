"""Blend OOF predictions: a temperature per model, simplex weights, a power and a multiplier
per class, a floor toward the prior.

Everything happens on the 8 scored classes (the metric drops no_data and clouds and
renormalises, so their share carries no information). For model i with scored proportions p_i:

    q_i   = softmax(log(p_i + TINY) / T_i)      (T_i = 1 leaves p_i untouched)
    mix   = sum_i w_i q_i                       (w on the simplex)
    r     = (mix + TINY) ** a * exp(b)          on the classes K the tuning labels hold
    mix_c = S * r / sum_K r on K (S = sum_K mix: their mass is kept), mix on the others
    blend = (1 - f) * mix_c + f * target
    target = (1 - u) * prior + u / 8              (prior = mean OOF truth)

The class calibration, a power a and a bias b per class (``fit_blend(class_calibration=True)``,
blend.py's default; vector scaling of the blend's log shares), undoes what the members get
wrong the same way everywhere: the per-pixel members average mixed pixels, and built-up area
(towns at 10 m) comes out short by a factor of ~1.6 on every fold. Tuned after the temperatures
and weights (by the L-BFGS-B polish, with a small L2 pull of b and log a toward 0:
``CALIBRATION_PENALTY``), within ``BIAS_RANGE`` and ``POWER_RANGE``. A class the tuning rows'
labels lack gets none (NaN): they say nothing of it, and it keeps the share the members give
it rather than lose it to a bias that lifts all the others (the floor covers it).

When the tuning rows' labels lack a scored class (the shared sample has no natural and no
snow), the floor is at least ``MIN_FLOOR`` and its target holds a uniform share u
(``FLOOR_UNIFORM``); otherwise u = 0 and the floor may be 0, as tuned. In-region tuning cannot see
what new ground needs: a class the labels lack gets exact zeros from the LightGBM member and
~1e-10 from the blend, and the metric charges y * log(y / 1e-8) for it. A predictor perfect on
every other class scores 0.129 on the rest of the full official y_train that way, 0.040 under
the least floor, which costs the sample's nested CV 10% (docs/blending.md, "Classes the
training ground lacks").

The models' proportions contain exact zeros (argmax pixel counts), hence TINY = 1e-12 inside the
log: a zero share becomes about TINY ** (1 / T) of a share near 1, i.e. 1e-24 at T = 0.5 but 1e-6
at T = 2 and 1e-3 at T = 4, so a flattening temperature also acts as a small floor. T = 1 skips
the log/exp round trip (zeros stay 0, which the metric's 1e-8 cannot tell from 1e-12), so one-hot
weights with T = 1 and f = 0 reproduce a model bit for bit. A row to which a model
gives no scored mass at all (all no_data/clouds) counts as uniform: the model has no opinion.

The objective is ``metric.kl_divergence``; ``fit_blend`` tunes with a seeded Optuna TPE study,
polishes with L-BFGS-B (analytic gradient), never returns worse than the best single model, and
estimates the score honestly by nested CV over the OOF folds.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import optuna
from scipy.optimize import minimize, minimize_scalar

from .constants import EPS, SCORED_CLASSES
from .metric import kl_divergence, kl_per_sample, scored_proportions
from .tables import prior_proportions

TINY = 1e-12
T_RANGE = (0.25, 4.0)
FLOOR_RANGE = (0.0, 0.05)  # tuned floor; from MIN_FLOOR up when that is higher
MIN_FLOOR = 0.01  # the least floor when the labels lack a class (blend.py --min-floor)
FLOOR_UNIFORM = 0.5  # the floor target's uniform share then (blend.py --floor-uniform)
MAX_FLOOR = 0.5  # a larger minimum would let the target outweigh the models
BIAS_RANGE = (-2.0, 2.0)  # log of a class's multiplier
POWER_RANGE = (0.5, 2.0)  # a class's power
CALIBRATION_PENALTY = 1e-3  # the L2 pull of the class calibration toward none (docs/blending.md)
N_SCORED = len(SCORED_CLASSES)


@dataclass(frozen=True)
class Stack:
    """Scored proportions of m models on the same n rows, with their logs computed once."""

    probs: np.ndarray  # (m, n, 8), rows sum to 1
    logp: np.ndarray  # log(probs + TINY)

    @classmethod
    def of(cls, preds: np.ndarray) -> Stack:
        """From (models, rows, 10 or 8) predictions."""
        preds = np.asarray(preds, dtype=np.float64)
        if preds.ndim != 3:
            raise ValueError(f"expected (models, rows, classes), got shape {preds.shape}")
        probs = np.stack([scored_proportions(p) for p in preds])
        probs[probs.sum(axis=2) == 0] = 1.0 / N_SCORED
        return cls(probs, np.log(probs + TINY))

    def __len__(self) -> int:
        return self.probs.shape[1]

    @property
    def n_models(self) -> int:
        return self.probs.shape[0]

    def rows(self, mask: np.ndarray) -> Stack:
        return Stack(self.probs[:, mask], self.logp[:, mask])

    def then(self, other: Stack) -> Stack:
        """These rows, then ``other``'s (the same models)."""
        return Stack(
            np.concatenate([self.probs, other.probs], axis=1),
            np.concatenate([self.logp, other.logp], axis=1),
        )

    def tempered(self, i: int, temperature: float) -> np.ndarray:
        """Model i's scored proportions at ``temperature``, rows summing to 1."""
        if temperature == 1.0:
            return self.probs[i]
        z = self.logp[i] / temperature
        z -= z.max(axis=1, keepdims=True)
        q = np.exp(z)
        q /= q.sum(axis=1, keepdims=True)
        return q


@dataclass(frozen=True)
class BlendParams:
    weights: np.ndarray  # (m,), non-negative, sums to 1
    temperatures: np.ndarray  # (m,)
    floor: float
    bias: np.ndarray | None = None  # (8,) log multiplier per scored class, NaN: none (the
    # class keeps the members' share: calibrated()); None: no class calibration
    power: np.ndarray | None = None  # (8,) power per scored class, NaN likewise

    @classmethod
    def single(cls, m: int, i: int, floor: float = 0.0) -> BlendParams:
        return cls(np.eye(m)[i], np.ones(m), floor)

    @classmethod
    def equal(cls, m: int, floor: float = 0.0) -> BlendParams:
        return cls(np.full(m, 1.0 / m), np.ones(m), floor)

    @property
    def class_bias(self) -> np.ndarray:
        """(8,) the bias, zeros when there is none (NaN for a class without one)."""
        return np.zeros(N_SCORED) if self.bias is None else np.asarray(self.bias, dtype=float)

    @property
    def class_power(self) -> np.ndarray:
        """(8,) the power, ones when there is none (NaN for a class without one)."""
        return np.ones(N_SCORED) if self.power is None else np.asarray(self.power, dtype=float)


@dataclass(frozen=True)
class Calibrated:
    """A mix through the class calibration, and what its gradient needs."""

    out: np.ndarray  # (n, 8) on the simplex
    tuned: np.ndarray  # (8,) bool: the classes with a calibration
    mass: np.ndarray  # (n, 1) S: their share in the mix, kept
    log_mix: np.ndarray  # log(mix + TINY)
    power: np.ndarray  # (8,) with 1 where untuned


def calibration(mix: np.ndarray, bias: np.ndarray, power: np.ndarray) -> Calibrated:
    """``mix`` (rows on the simplex) with each class c that has a calibration raised to
    ``power[c]`` and multiplied by exp(``bias[c]``), then those classes rescaled to their mass
    before: the others (NaN) keep their share."""
    tuned = ~np.isnan(bias)
    power = np.where(tuned, np.nan_to_num(power, nan=1.0), 1.0)
    log_mix = np.log(mix + TINY)
    u = np.where(tuned, power * log_mix + np.nan_to_num(bias), -np.inf)
    top = u.max(axis=1, keepdims=True)
    r = np.exp(u - np.where(np.isfinite(top), top, 0.0))
    mass = mix[:, tuned].sum(axis=1, keepdims=True)
    total = r.sum(axis=1, keepdims=True)
    ratio = np.divide(mass, total, out=np.zeros_like(mass), where=total > 0)
    return Calibrated(np.where(tuned, r * ratio, mix), tuned, mass, log_mix, power)


def calibrated(mix: np.ndarray, bias: np.ndarray, power: np.ndarray) -> np.ndarray:
    """``calibration(...).out``; ``mix`` itself when nothing moves."""
    if not np.any(np.nan_to_num(bias)) and np.all(np.nan_to_num(power, nan=1.0) == 1.0):
        return mix
    return calibration(mix, bias, power).out


def describe_calibration(params: BlendParams) -> str:
    """The class calibration in words ('' when there is none)."""
    if params.bias is None:
        return ""
    shown = zip(SCORED_CLASSES, params.class_power, params.class_bias, strict=True)
    return "class calibration, power and multiplier (- : a class the labels lack): " + ", ".join(
        f"{c} -" if np.isnan(b) else f"{c} {a:.2f} x{np.exp(b):.2f}" for c, a, b in shown
    )


def blend(stack: Stack, params: BlendParams, prior: np.ndarray) -> np.ndarray:
    """Blended scored proportions, shape (n, 8); ``prior`` is the scored floor target."""
    out = np.zeros((len(stack), N_SCORED))
    for i, (w, t) in enumerate(zip(params.weights, params.temperatures, strict=True)):
        if w > 0:
            out += w * stack.tempered(i, float(t))
    out = calibrated(out, params.class_bias, params.class_power)
    if params.floor > 0:
        out = (1.0 - params.floor) * out + params.floor * prior
    return out


def scored_prior(truth: np.ndarray) -> np.ndarray:
    """The training prior on the scored classes."""
    return scored_proportions(prior_proportions(truth)[None, :])[0]


def floor_target(prior: np.ndarray, uniform: float) -> np.ndarray:
    """The floor's target: the scored training ``prior`` (``scored_prior``) with a ``uniform``
    share spread over every scored class, so that a class the labels lack is never zero."""
    if not 0.0 <= uniform <= 1.0:
        raise ValueError(f"the floor's uniform share must be in [0, 1], got {uniform}")
    return (1.0 - uniform) * prior + uniform / N_SCORED


def lacking(truth: np.ndarray) -> np.ndarray:
    """(8,) bool: the scored classes no row of ``truth`` holds."""
    return scored_prior(truth) == 0


def floor_range(min_floor: float) -> tuple[float, float]:
    """Where the floor is tuned: ``FLOOR_RANGE``, from ``min_floor`` up."""
    if not 0.0 <= min_floor <= MAX_FLOOR:
        raise ValueError(f"the minimum floor must be in [0, {MAX_FLOOR}], got {min_floor}")
    return (max(FLOOR_RANGE[0], min_floor), max(FLOOR_RANGE[1], 2 * min_floor))


@dataclass(frozen=True)
class Problem:
    """What one tuning run sees: models, truth and the floor's target on the same rows."""

    stack: Stack
    truth: np.ndarray  # (n, 10) or (n, 8)
    prior: np.ndarray  # (8,) the floor's target (floor_target)
    use_floor: bool
    scored_truth: np.ndarray  # (n, 8), for the gradient
    min_floor: float = 0.0  # as applied: 0 unless the truth lacks a scored class
    uniform: float = 0.0  # likewise
    class_calibration: bool = False  # tune a power and a bias per class the truth holds
    temperatures: bool = True  # tune a temperature per model (False: every T stays 1)
    row_weights: np.ndarray | None = None  # (n,) mean 1: each row's weight in the KL; None: 1

    @classmethod
    def build(
        cls,
        stack: Stack,
        truth: np.ndarray,
        use_floor: bool,
        min_floor: float = 0.0,
        uniform: float = 0.0,
        class_calibration: bool = False,
        temperatures: bool = True,
        row_weights: np.ndarray | None = None,
    ) -> Problem:
        """``min_floor`` and ``uniform`` apply only with ``use_floor`` and when ``truth`` lacks
        a scored class (``lacking``); else the floor is tuned from 0 toward the prior."""
        truth = np.asarray(truth, dtype=np.float64)
        prior = scored_prior(truth)
        floor_range(min_floor)  # checked, like the uniform share, even when unused
        target = floor_target(prior, uniform)
        if not (use_floor and (prior == 0).any()):
            min_floor, uniform, target = 0.0, 0.0, prior
        scored = scored_proportions(truth)
        return cls(
            stack,
            truth,
            target,
            use_floor,
            scored,
            min_floor,
            uniform,
            class_calibration,
            temperatures,
            None if row_weights is None else np.asarray(row_weights) / np.mean(row_weights),
        )

    @classmethod
    def of_rows(cls, stack: Stack, truth: np.ndarray, mask: np.ndarray, **settings) -> Problem:
        """The problem tuned on ``mask``'s rows, ``settings`` as ``build`` takes them."""
        weights = settings.pop("row_weights", None)
        if weights is not None:
            settings["row_weights"] = np.asarray(weights)[mask]
        return cls.build(stack.rows(mask), np.asarray(truth)[mask], **settings)

    def scored(self, pred: np.ndarray) -> float:
        """The KL of ``pred`` on these rows, each at its weight."""
        if self.row_weights is None:
            return kl_divergence(self.truth, pred)
        return float(np.mean(self.row_weights * kl_per_sample(self.truth, pred)))

    def kl(self, params: BlendParams) -> float:
        return self.scored(blend(self.stack, params, self.prior))

    def objective(self, params: BlendParams) -> float:
        """What tuning minimises: the KL and the class calibration's L2 pull toward none."""
        pulled = np.nansum(params.class_bias**2) + np.nansum(np.log(params.class_power) ** 2)
        return self.kl(params) + CALIBRATION_PENALTY * float(pulled)

    @property
    def n_core(self) -> int:
        """Entries of the tuned vector before the class calibration (what the study tunes)."""
        m = self.stack.n_models
        return m + (m if m > 1 else 0) + int(self.use_floor)

    def names(self) -> list[str]:
        """The tuned vector: log T per model, raw weights (m > 1), floor (if used), then a bias
        and a log power per scored class (if tuned)."""
        m = self.stack.n_models
        return (
            [f"log_T{i}" for i in range(m)]
            + ([f"w{i}" for i in range(m)] if m > 1 else [])
            + (["floor"] if self.use_floor else [])
            + (
                [f"bias_{c}" for c in SCORED_CLASSES] + [f"log_power_{c}" for c in SCORED_CLASSES]
                if self.class_calibration
                else []
            )
        )

    def bounds(self) -> list[tuple[float, float]]:
        m = self.stack.n_models
        log_t = (float(np.log(T_RANGE[0])), float(np.log(T_RANGE[1])))
        bounds = [log_t if self.temperatures else (0.0, 0.0)] * m
        bounds += [(0.0, 1.0)] * (m if m > 1 else 0)
        bounds += [floor_range(self.min_floor)] if self.use_floor else []
        if self.class_calibration:  # a class the truth lacks: none (0 here, NaN unpacked)
            log_power = (float(np.log(POWER_RANGE[0])), float(np.log(POWER_RANGE[1])))
            for wanted in (BIAS_RANGE, log_power):
                bounds += [(0.0, 0.0) if gone else wanted for gone in self.lacking]
        return bounds

    @functools.cached_property
    def lacking(self) -> np.ndarray:
        """(8,) bool: the scored classes the truth lacks (read on every evaluation)."""
        return self.scored_truth.sum(axis=0) == 0

    def unpack(self, x: np.ndarray) -> BlendParams:
        """Raw weights anywhere in [0, 1]^m cover the whole simplex once normalised."""
        m, k = self.stack.n_models, self.n_core
        raw = np.asarray(x[m : 2 * m]) if m > 1 else np.ones(1)
        weights = raw / raw.sum() if raw.sum() > 0 else np.full(m, 1.0 / m)
        floor = float(x[k - 1]) if self.use_floor else 0.0
        bias = power = None
        if self.class_calibration:
            tail = np.where(self.lacking, np.nan, np.reshape(x[k : k + 2 * N_SCORED], (2, -1)))
            bias, power = tail[0], np.exp(tail[1])
        return BlendParams(weights, np.exp(np.asarray(x[:m])), floor, bias, power)

    def pack(self, params: BlendParams) -> np.ndarray:
        parts = [np.log(params.temperatures)]
        if self.stack.n_models > 1:
            parts.append(params.weights)
        if self.use_floor:
            parts.append([params.floor])
        if self.class_calibration:
            parts.append(np.nan_to_num(params.class_bias))
            parts.append(np.nan_to_num(np.log(params.class_power)))
        return np.concatenate(parts).astype(np.float64)

    def full(self, core: np.ndarray) -> np.ndarray:
        """A vector of the first ``n_core`` entries (a study's trial), no class calibration."""
        return np.concatenate([core, np.zeros(2 * N_SCORED if self.class_calibration else 0)])

    def objective_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """``objective`` at ``x`` and its gradient (``kl_and_grad`` and the L2 pull)."""
        kl, grad = self.kl_and_grad(x)
        if not self.class_calibration:
            return kl, grad
        tail = np.asarray(x[self.n_core :], dtype=np.float64)
        tail = np.where(np.tile(self.lacking, 2), 0.0, tail)
        grad[self.n_core :] += 2.0 * CALIBRATION_PENALTY * tail
        return kl + CALIBRATION_PENALTY * float(np.sum(tail**2)), grad

    def kl_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        """KL at ``x`` (via the metric) and its analytic gradient, for L-BFGS-B.

        Blends stay on the simplex, so the metric's renormalisation has no effect on the
        gradient: dKL/dblend = -(y + eps) / (blend + eps) / n on the scored classes. Through
        the class calibration, for classes c, j, k that have one (K; the others pass mix
        through), with u = a log(mix + TINY) + b: d mix_c[c] / d u[k] = mix_c[c] (delta(c, k)
        - mix_c[k] / S), d u / d b = 1, d u / d log a = a log(mix + TINY), and with
        A = sum_K g[c] mix_c[c] / S, dKL / d mix[j] = dKL / du[j] a[j] / (mix[j] + TINY) + A.
        """
        params = self.unpack(x)
        m, f = self.stack.n_models, params.floor
        qs = [self.stack.tempered(i, float(t)) for i, t in enumerate(params.temperatures)]
        mix = sum(w * q for w, q in zip(params.weights, qs, strict=True))
        cal = calibration(mix, params.class_bias, params.class_power)
        tuned, mix_c = cal.tuned, cal.out
        pred = (1.0 - f) * mix_c + f * self.prior
        y = self.scored_truth
        g = -(y + EPS) / (pred + EPS) / len(y)
        if self.row_weights is not None:
            g = g * self.row_weights[:, None]
        g_c = (1.0 - f) * g  # d KL / d mix_c
        spent = np.sum((g_c * mix_c)[:, tuned], axis=1, keepdims=True)
        a = np.divide(spent, cal.mass, out=np.zeros_like(spent), where=cal.mass > 0)
        g_u = np.where(tuned, mix_c * (g_c - a), 0.0)  # d KL / d u
        grad_bias = g_u.sum(axis=0)
        grad_log_power = np.sum(g_u * cal.power * cal.log_mix, axis=0)
        gq = np.where(tuned, g_u * cal.power / (mix + TINY) + a, g_c)  # d KL / d mix
        grad_t = np.empty(m)
        grad_w = np.empty(m)
        for i, (t, q) in enumerate(zip(params.temperatures, qs, strict=True)):
            grad_w[i] = np.sum(gq * q)
            z = self.stack.logp[i] / t  # dq/dlogT = q * (zbar - z), shift-invariant per row
            zbar = np.sum(q * z, axis=1, keepdims=True)
            grad_t[i] = params.weights[i] * np.sum(gq * q * (zbar - z))
        parts = [grad_t]
        if m > 1:
            raw = x[m : 2 * m]
            total = raw.sum()
            # d(w / sum w): the radial direction is flat, only the spread between models counts
            parts.append((grad_w - params.weights @ grad_w) / total if total > 0 else np.zeros(m))
        if self.use_floor:
            parts.append([np.sum(g * (self.prior - mix_c))])
        if self.class_calibration:
            parts += [grad_bias, grad_log_power]
        return self.scored(pred), np.concatenate(parts)


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
