"""How long blending takes at the challenge's scale: 5 experiments x 18,491 OOF rows, 5 folds.

    python src/benchmarks/speed.py blend [--trials 200] [--models 5] [--rows 18491]

Synthetic OOF in memory (truth with exact zeros like real labels; models of varying quality,
some quantised to pixel counts so they carry exact zeros too). Prints the wall time of the main
study alone and of the whole ``fit_blend`` (study + polish + nested CV, i.e. 1 + folds studies).
Target: the main study within 60 s on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from landcover.blend_model import Stack
from landcover.blend_objective import Problem
from landcover.blend_tuning import fit_blend, tune
from landcover.constants import N_CLASSES

PIXELS = 256 * 256


def synthetic_oof(
    rows: int, models: int, folds: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(preds (models, rows, 10), truth (rows, 10), folds (rows,))."""
    rng = np.random.default_rng(seed)
    truth = rng.dirichlet(np.full(N_CLASSES, 0.3), size=rows)
    truth[truth < 0.02] = 0.0  # real patches miss most classes entirely
    truth[truth.sum(axis=1) == 0, 3] = 1.0
    truth /= truth.sum(axis=1, keepdims=True)
    logits = np.log(truth + 1e-3)
    preds = []
    for i in range(models):
        noisy = (logits + rng.normal(0.0, 0.5 + 0.3 * i, size=logits.shape)) / (0.6 + 0.3 * i)
        p = np.exp(noisy - noisy.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        if i % 2 == 0:  # argmax-count models: multiples of one pixel, many exact zeros
            p = np.floor(p * PIXELS) / PIXELS
            p[:, 3] += 1.0 - p.sum(axis=1)
        preds.append(p)
    return np.stack(preds), truth, rng.permutation(np.arange(rows) % folds)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--models", type=int, default=5)
    parser.add_argument("--rows", type=int, default=18491)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)


def run(args: argparse.Namespace) -> None:
    preds, truth, folds = synthetic_oof(args.rows, args.models, args.folds, args.seed)
    print(f"{args.models} models x {args.rows} rows, {args.folds} folds, {args.trials} trials")

    start = time.perf_counter()
    problem = Problem.build(Stack.of(preds), truth, use_floor=True)
    tuned = tune(problem, trials=args.trials, seed=args.seed, polish=False)
    study_s = time.perf_counter() - start
    print(f"study only ({args.trials} trials):        {study_s:7.1f} s   KL {tuned.kl:.5f}")

    start = time.perf_counter()
    fit = fit_blend(preds, truth, folds, trials=args.trials, seed=args.seed)
    total_s = time.perf_counter() - start
    print(
        f"fit_blend (study + polish + nested CV): {total_s:7.1f} s   KL {fit.kl:.5f} "
        f"(nested {fit.nested_kl:.5f}, best single {fit.single_kl.min():.5f})"
    )
