"""How long will a profile's network experiments take? Measured rates, then the arithmetic.

    python src/benchmarks/speed.py estimate --data ../shared/data/landcover-sample \\
        --profile full-gpu
    python src/benchmarks/speed.py estimate --data ../shared/data/landcover-sample \\
        --profile sample-cpu --n-train 414 --n-test 111
    python src/benchmarks/speed.py estimate --data ../shared/data/landcover-sample \\
        --profile full-gpu --flops                   # FLOP counts: runs on any machine

Rates are measured on the data given (the shared sample is enough: rates do not depend on how
many patches there are), with each experiment's own config under the profile (model, crop,
batch size, bf16 and channels-last on CUDA, prediction mode), on the profile's
device:

- train: patches/s of the trainer's step fed by its batch builder;
- val: patches/s of the per-epoch validation pass (one view, central ``train.val_crop``);
- predict: patches/s of one view of the OOF/test prediction (whole patches).

The run is estimated for ``--n-train`` / ``--n-test`` patches (default: the full dataset):

    per fold   = epochs x (train patches / train rate + val patches / val rate)
                 + (val patches + test patches) x TTA views / predict rate
    experiment = folds x per fold

``--flops`` replaces each 1 / rate by the FLOPs per patch that torch's FLOP counter counts on
the CPU (forward for prediction, 3 x forward for training), and prints the sustained
TFLOP/s a device needs to finish within ``--budget-min``: an arithmetic bound, not a timing.

Epochs are the configured maximum (early stopping can only shorten the run); start-up, data
preparation and the blend are left out. ``pixel_gbm`` experiments (LightGBM, CPU) are listed
as not estimated.
"""

from __future__ import annotations

import argparse

import torch

from landcover.cache import prepare_data
from landcover.cli import add_set
from landcover.config import load_config, load_profile
from landcover.members import member_for
from landcover.runtime import resolve_device
from landcover.speed.rates import Bench, count_flops

N_TRAIN, N_TEST = 18491, 5043  # the full dataset


def experiment_cost(config: dict, per_patch: dict, n_train: int, n_test: int) -> float:
    """Cost of a whole experiment from the cost of one patch (seconds or FLOPs) in training
    (``train``), the per-epoch validation (``val``) and one prediction view (``predict``)."""
    folds, epochs = config["data"]["n_folds"], config["train"]["epochs"]
    val = n_train / folds
    train = n_train - val
    if config["train"]["steps_per_epoch"]:  # a fixed number of batches per epoch
        train = config["train"]["steps_per_epoch"] * config["train"]["batch_size"]
    views = config["predict"]["tta"]
    per_fold = epochs * (train * per_patch["train"] + val * per_patch["val"])
    return folds * (per_fold + (val + n_test) * views * per_patch["predict"])


def _sizes(config: dict, patch: int) -> dict:
    crop, val_crop = config["train"]["crop"], config["train"]["val_crop"]
    return {"train": crop or patch, "val": val_crop or patch, "predict": patch}


def flops_per_patch(config: dict, patch: int) -> dict:
    """FLOPs per patch in training, validation and prediction (``count_flops``), each patch
    size counted once: training is 3 x the forward pass of its crop."""
    sizes = _sizes(config, patch)
    forward = {size: count_flops(config, size, train=False) for size in set(sizes.values())}
    return {part: forward[size] * (3 if part == "train" else 1) for part, size in sizes.items()}


def experiment_names(text: str | None, profile: str) -> list[str]:
    """``a,b`` -> [a, b]; none given: the profile's experiments."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    return names or load_profile(profile)["experiments"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="data folder to measure on")
    parser.add_argument("--profile", required=True)
    parser.add_argument("--experiments", help="comma-separated (default: the profile's)")
    add_set(parser, "config overrides for every experiment, repeatable")
    parser.add_argument("--smoke", action="store_true", help="the configs as --smoke runs them")
    parser.add_argument("--n-train", type=int, default=N_TRAIN)
    parser.add_argument("--n-test", type=int, default=N_TEST)
    parser.add_argument("--steps", type=int, default=20, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--predict", type=int, default=256, help="timed prediction patches")
    parser.add_argument("--flops", action="store_true", help="count FLOPs instead of timing")
    parser.add_argument("--budget-min", type=float, default=60.0)


def run(args: argparse.Namespace) -> None:
    names = experiment_names(args.experiments, args.profile)
    data = prepare_data(args.data)
    patch = data.train_images.shape[-1]
    print(f"profile {args.profile}: estimate for {args.n_train} train, {args.n_test} test patches")
    if args.flops:
        print("experiment             GFLOP/patch: train     val  predict  epochs  PFLOP total")
    else:
        print("experiment               train/s    val/s predict/s  epochs  min/fold  min total")
    total = 0.0
    for name in names:
        config = load_config(name, profile=args.profile, overrides=args.set, smoke=args.smoke)
        if not member_for(config).is_network:
            print(f"{name:22s}  not estimated (LightGBM on the CPU)")
            continue
        if args.flops:
            per_patch = flops_per_patch(config, patch)
            cost = experiment_cost(config, per_patch, args.n_train, args.n_test)
            print(
                f"{name:22s} {per_patch['train'] / 1e9:18.1f} {per_patch['val'] / 1e9:7.1f} "
                f"{per_patch['predict'] / 1e9:8.1f} {config['train']['epochs']:7d} "
                f"{cost / 1e15:12.1f}",
                flush=True,
            )
        else:
            device = resolve_device(config["run"]["device"])
            if config["run"]["threads"]:
                torch.set_num_threads(config["run"]["threads"])
            bench = Bench(config, data, device)
            rates = {
                "train": bench.train_rate(args.steps, args.warmup),
                "val": bench.predict_rate(args.predict, crop=config["train"]["val_crop"]),
                "predict": bench.predict_rate(args.predict),
            }
            per_patch = {part: 1.0 / value for part, value in rates.items()}
            cost = experiment_cost(config, per_patch, args.n_train, args.n_test)
            folds = config["data"]["n_folds"]
            print(
                f"{name:22s} {rates['train']:8.1f} {rates['val']:8.1f} {rates['predict']:9.1f} "
                f"{config['train']['epochs']:7d} {cost / folds / 60:9.1f} {cost / 60:10.1f}",
                flush=True,
            )
        total += cost
    if args.flops:
        need = total / (args.budget_min * 60) / 1e12
        print(
            f"network experiments: {total / 1e15:.1f} PFLOP; finishing in {args.budget_min:g} min "
            f"needs a sustained {need:.0f} TFLOP/s"
        )
    else:
        print(f"network experiments: {total / 60:.1f} min ({total / 3600:.2f} h)")
