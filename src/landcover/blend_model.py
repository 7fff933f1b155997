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

The class calibration, a power a and a bias b per class
(``blend_tuning.fit_blend(class_calibration=True)``, blend.py's default; vector scaling of the
blend's log shares), undoes what the members get wrong the same way everywhere: the per-pixel
members average mixed pixels, and built-up area (towns at 10 m) comes out short by a factor of
~1.6 on every fold. Tuned after the temperatures and weights (by the L-BFGS-B polish, with a
small L2 pull of b and log a toward 0: ``blend_objective.CALIBRATION_PENALTY``), within
``BIAS_RANGE`` and ``POWER_RANGE``. A class the tuning rows' labels lack gets none (NaN): they
say nothing of it, and it keeps the share the members give it rather than lose it to a bias
that lifts all the others (the floor covers it).

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

The objective is ``metric.kl_divergence`` (``blend_objective.Problem``, with its analytic
gradient); ``blend_tuning.fit_blend`` tunes with a seeded Optuna TPE study, polishes with
L-BFGS-B, never returns worse than the best single model, and estimates the score honestly by
nested CV over the OOF folds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .constants import SCORED_CLASSES
from .metric import scored_proportions
from .tables import prior_proportions

TINY = 1e-12
T_RANGE = (0.25, 4.0)
FLOOR_RANGE = (0.0, 0.05)  # tuned floor; from MIN_FLOOR up when that is higher
MIN_FLOOR = 0.01  # the least floor when the labels lack a class (blend.py --min-floor)
FLOOR_UNIFORM = 0.5  # the floor target's uniform share then (blend.py --floor-uniform)
MAX_FLOOR = 0.5  # a larger minimum would let the target outweigh the models
BIAS_RANGE = (-2.0, 2.0)  # log of a class's multiplier
POWER_RANGE = (0.5, 2.0)  # a class's power
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
