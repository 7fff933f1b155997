"""What a run will do, and roughly what it costs, without running it (``./run_all.sh
--dry-run`` prints this).

    python src/benchmarks/speed.py plan --profile sample-cpu
    python src/benchmarks/speed.py plan --profile full-gpu --data ../shared/data/landcover-sample
    python src/benchmarks/speed.py plan --profile demo --smoke --set train.epochs=2

One line per experiment of the resolved configs (profile, ``--set``, ``--smoke``): its model,
the device it trains on, folds, epochs, batch size, training crop and TTA views (for LightGBM:
boosting rounds and the prediction stride). Then the data's size when ``--data`` is given (its
train and test ids, read from the CSVs; no cache is built). Then each network experiment's
cost in FLOPs, counted by torch's FLOP counter on this CPU in seconds (``estimate --flops``'s
arithmetic): a bound, not a timing. The command that times the rates on this machine (the
``estimate`` subcommand, minutes) is printed last.
"""

from __future__ import annotations

import argparse
import shlex
import warnings

import rasterio
import rasterio.errors

from landcover.cli import add_set
from landcover.config import load_config
from landcover.errors import ConfigError, LandcoverError
from landcover.layout import locate
from landcover.members import member_for
from landcover.runtime import resolve_device
from landcover.speed.estimate import (
    N_TEST,
    N_TRAIN,
    experiment_cost,
    experiment_names,
    flops_per_patch,
)
from landcover.tables import read_ids

PATCH = 256  # the official patches' size, when no data says otherwise
NAMED_BY = {"smp": ("arch", "encoder"), "classifier": ("encoder",)}  # what else names a network


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", required=True, help="a profile name (configs/profiles/)")
    parser.add_argument(
        "--experiments", metavar="A,B", help="comma-separated (default: the profile's)"
    )
    parser.add_argument("--data", metavar="DIR", help="data folder: its size is printed")
    parser.add_argument("--smoke", action="store_true", help="the configs as --smoke runs them")
    add_set(parser, "config overrides for every experiment, repeatable")


def describe(config: dict) -> str:
    """``smp Unet tu-regnety_002``, ``classifier resnet18``, ``pixel_gbm``: the model's kind and,
    for a network, its architecture and encoder where its kind has them."""
    model = config["model"]
    return " ".join(str(model[k]) for k in ("kind", *NAMED_BY.get(model["kind"], ())))


def device_of(config: dict) -> str:
    """The device a network trains on here (LightGBM: the CPU); a device this machine lacks is
    named as configured."""
    if not member_for(config).is_network:
        return "cpu"
    try:
        return str(resolve_device(config["run"]["device"]))
    except ConfigError:
        return f"{config['run']['device']} (not here)"


def settings(config: dict) -> str:
    folds = config["data"]["n_folds"]
    if not member_for(config).is_network:
        gbm = config["gbm"]
        return (
            f"folds {folds}  rounds {gbm['n_estimators']}  predict stride {gbm['predict_stride']}"
        )
    train = config["train"]
    epochs = f"{train['epochs']}"
    if train["steps_per_epoch"]:
        epochs += f" x {train['steps_per_epoch']} steps"
    return (
        f"folds {folds}  epochs {epochs}  batch {train['batch_size']}  "
        f"crop {train['crop'] or 'whole'}  TTA {config['predict']['tta']}"
    )


def data_size(folder: str) -> tuple[int, int, int]:
    """(train ids, test ids, patch width) of a data folder, from its CSVs and one image's
    header; a DataError when that cannot be read."""
    layout = locate(folder)
    train, test = read_ids(layout.x_train, "x_train"), read_ids(layout.x_test, "x_test")
    patch = PATCH
    try:
        with warnings.catch_warnings():  # generated data carries no georeference
            warnings.simplefilter("ignore")
            with rasterio.open(layout.image_path("train", int(train[0]))) as image:
                patch = image.width
    except (OSError, rasterio.errors.RasterioError):  # an unreadable first image: the official size
        pass
    return len(train), len(test), patch


def estimate_command(args: argparse.Namespace, names: list[str], sizes: tuple | None) -> str:
    """The ``estimate`` command that times these experiments' rates on this machine."""
    command = ["python", "src/benchmarks/speed.py", "estimate", "--data", args.data or "DIR"]
    command += ["--profile", args.profile]
    if args.experiments:
        command += ["--experiments", ",".join(names)]
    if args.smoke:
        command.append("--smoke")
    if args.set:
        command += ["--set", *args.set]
    if sizes:
        command += ["--n-train", str(sizes[0]), "--n-test", str(sizes[1])]
    return shlex.join(command)


def run(args: argparse.Namespace) -> None:
    names = experiment_names(args.experiments, args.profile)
    if not names:
        raise ConfigError(f"profile {args.profile!r} lists no experiments; pass --experiments a,b")
    configs = [
        load_config(n, profile=args.profile, overrides=args.set, smoke=args.smoke) for n in names
    ]
    how = ", smoke" if args.smoke else ""
    how += f", --set {' '.join(args.set)}" if args.set else ""
    print(f"plan: profile {args.profile}{how}: {len(names)} experiment(s)")
    width = max(len(n) for n in names)
    models = [describe(c) for c in configs]
    model_width = max(len(m) for m in models)
    for name, model, config in zip(names, models, configs, strict=True):
        print(
            f"  {name:{width}s}  {model:{model_width}s}  device {device_of(config)}  "
            f"{settings(config)}"
        )

    sizes = None
    if args.data:
        try:
            sizes = data_size(args.data)
        except LandcoverError as err:
            print(f"data: {args.data}: not read ({err})")
        else:
            print(
                f"data: {args.data}: {sizes[0]} train, {sizes[1]} test patches of "
                f"{sizes[2]}x{sizes[2]}"
            )
    n_train, n_test, patch = sizes or (N_TRAIN, N_TEST, PATCH)
    where = "the data's" if sizes else "the full dataset's"
    print(
        f"cost in FLOPs for {where} {n_train} train and {n_test} test patches of {patch}x{patch}\n"
        "(torch's FLOP counter on this CPU; training = 3 x forward; every epoch run):"
    )
    total, counted = 0.0, 0
    for name, config in zip(names, configs, strict=True):
        if not member_for(config).is_network:
            print(f"  {name:{width}s}  not estimated (LightGBM, on the CPU)")
            continue
        try:
            per_patch = flops_per_patch(config, patch)
        except LandcoverError as err:
            print(f"  {name:{width}s}  not counted ({err})")
            continue
        cost = experiment_cost(config, per_patch, n_train, n_test)
        total += cost
        counted += 1
        print(f"  {name:{width}s}  {cost / 1e15:9.4g} PFLOP", flush=True)
    if counted:
        print(f"  {'networks':{width}s}  {total / 1e15:9.4g} PFLOP")
    print("a timed estimate (measures each network's rates here, then the same arithmetic):")
    print(f"  {estimate_command(args, names, sizes)}")
