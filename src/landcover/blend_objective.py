"""What tuning a blend minimises: the OOF KL of ``blend_model.blend`` on a set of rows, each at
its weight, plus the class calibration's L2 pull toward none, as a function of one flat vector
of parameters (log temperatures, raw weights, floor, class bias and log power), with its
analytic gradient for L-BFGS-B (``Problem``). The maths are in ``blend_model``."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from .blend_model import (
    BIAS_RANGE,
    N_SCORED,
    POWER_RANGE,
    T_RANGE,
    TINY,
    BlendParams,
    Stack,
    blend,
    calibration,
    floor_range,
    floor_target,
    scored_prior,
)
from .constants import EPS, SCORED_CLASSES
from .metric import kl_divergence, kl_per_sample, scored_proportions

CALIBRATION_PENALTY = 1e-3  # the L2 pull of the class calibration toward none (docs/blending.md)


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
