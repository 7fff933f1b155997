"""The LightGBM member's stages at a dataset's full size: time and peak memory of each, then the
arithmetic for the whole experiment (5 folds, the config's rounds) on this machine and on more
cores.

    python src/benchmarks/gbm_scale.py --data DIR [--cache-dir C] [--rounds 40] [--predict 1024]
        [--cores 16] [--set gbm.predict_stride=8 gbm.max_train_pixels=2000000]

On a prepared dataset (``src/prepare.py --data DIR`` first; the generated full-size one:
``src/make_demo_data.py OUT --full-size``) it builds the member's two feature stores (the
training pixels of every train patch, the strided features of every patch), fits fold 0 with
``--rounds`` boosting rounds (a fixed count, like the member), and predicts ``--predict`` test
patches with it. Fitting and predicting cost in proportion to the rounds (trees), so the
experiment at the config's ``gbm.n_estimators`` is extrapolated from the measured per-round
rates: stores + folds x (fit + predict of the fold's validation and all test patches). The
other cores are arithmetic too: every stage here runs on all cores (processes for the stores,
LightGBM's threads), and the estimate divides by the core ratio, which real machines only
approach. It is done twice: from wall time, and from CPU time (user + system, this process and
its workers) spread over the cores, which other jobs on a shared machine do not inflate.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landcover.cache import prepare_data
from landcover.config import load_config
from landcover.fold_plan import plan_for
from landcover.members import member_for
from landcover.members.gbm_features import cores, strided_features, training_samples
from landcover.members.pixel_gbm import fit_fold, patch_share


def peak_mib() -> float:
    """Peak resident memory of this process and of its largest finished child, MiB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, child) / 1024


def cpu_seconds() -> float:
    """User + system time of this process (LightGBM's threads) and its finished children (the
    stores' worker processes)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    child = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + child.ru_utime + child.ru_stime


def timed(label: str, fn):
    """Run ``fn``; print and return its output, wall seconds and CPU seconds."""
    started, cpu = time.perf_counter(), cpu_seconds()
    out = fn()
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    print(
        f"{label:<44} {seconds:8.1f} s  (CPU {cpu:8.1f} s)  peak RSS so far {peak_mib():7,.0f} MiB",
        flush=True,
    )
    return out, seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--data", required=True, help="a data folder in the official layout")
    parser.add_argument("--cache-dir", help="the data's cache (default: cache/<name>-<hash>)")
    parser.add_argument("--rounds", type=int, default=40, help="boosting rounds measured")
    parser.add_argument("--predict", type=int, default=1024, help="test patches predicted")
    parser.add_argument("--cores", type=int, default=16, help="cores for the arithmetic")
    parser.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="e.g. gbm.predict_stride=8"
    )
    args = parser.parse_args()
    target_rounds = load_config("pixel_lightgbm", overrides=args.set)["gbm"]["n_estimators"]
    config = load_config("pixel_lightgbm", overrides=[*args.set, f"gbm.n_estimators={args.rounds}"])
    gcfg, here = config["gbm"], cores()
    data = prepare_data(args.data, cache_dir=args.cache_dir)
    n_train, n_test = len(data.train_ids), len(data.test_ids)
    print(f"{n_train:,} train and {n_test:,} test patches of {data.size} px; {here} cores")
    plan, _, _ = timed("fold plan", lambda: plan_for(data, config["data"]))
    stores = np.zeros(2)  # wall, CPU seconds
    for label, fn in (
        (
            f"training pixels of every train patch ({gcfg['pixels_per_image']} each)",
            lambda: training_samples(
                data.train_images, data.train_masks, gcfg["pixels_per_image"], config["seed"], here
            ),
        ),
        (
            f"strided features of the train patches (s{gcfg['predict_stride']})",
            lambda: strided_features(data.train_images, gcfg["predict_stride"], here),
        ),
        (
            f"strided features of the test patches (s{gcfg['predict_stride']})",
            lambda: strided_features(data.test_images, gcfg["predict_stride"], here),
        ),
    ):
        stores += timed(label, fn)[1:]
    train_rows, val_rows = plan.train_rows(0), plan.val_rows(0)
    per_patch = patch_share(len(train_rows), gcfg["pixels_per_image"], gcfg["max_train_pixels"])
    with tempfile.TemporaryDirectory() as work:
        (_, history), *fold_seconds = timed(
            f"fold 0: fit {args.rounds} rounds + predict its validation",
            lambda: fit_fold(
                config,
                data.train_images,
                data.train_masks,
                data.labels,
                train_rows,
                val_rows,
                Path(work),
                seed=config["seed"] * 1000,
            ),
        )
        print(
            f"  ({len(train_rows):,} train patches x {per_patch} pixels = "
            f"{len(train_rows) * per_patch:,}, {len(val_rows):,} val patches; "
            f"val KL {history[0]['val_kl']:.4f})"
        )
        model = member_for(config).load(Path(work))
        rows = np.arange(min(args.predict, n_test))
        _, *predicted = timed(
            f"predict {len(rows):,} test patches",
            lambda: model.predict_proportions(data.test_images, rows),
        )
    scale, n_folds = target_rounds / args.rounds, plan.n_folds
    print(f"\narithmetic at {target_rounds} rounds, {n_folds} folds:")
    for i, kind in enumerate(("wall", "CPU")):
        per_test_patch = predicted[i] / len(rows)
        fit = scale * (fold_seconds[i] - per_test_patch * len(val_rows))
        predict = scale * per_test_patch * (len(val_rows) + n_test)
        total = stores[i] + n_folds * (fit + predict)
        cores_used, unit = (here, "min") if kind == "wall" else (1, "CPU min")
        print(
            f"  {kind:>4}: stores {stores[i]:,.0f} s + {n_folds} x (fit {fit:,.0f} s + predict "
            f"{predict:,.0f} s) = {total / 60:,.1f} {unit}; on {args.cores} cores "
            f"{total * cores_used / args.cores / 60:,.1f} min"
        )
    print(
        "  (wall: these cores' time scaled by the core ratio; CPU: the work spread over "
        f"{args.cores} cores, which a shared machine's wall time does not inflate)"
    )


if __name__ == "__main__":
    main()
