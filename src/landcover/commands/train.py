"""Train experiments with k-fold CV and write their OOF and test predictions.

    python src/train.py --experiments unet_resnet18 --data DIR [--profile sample-cpu]
    python src/train.py --experiments unet_resnet18 --data DIR --set train.epochs=3 --folds 0,1
    python src/train.py --experiments a,b,c --data DIR --engine ray [--address auto]
    torchrun --standalone --nproc_per_node 2 src/train.py --experiments unet_resnet18 --data DIR
    python src/train.py --check --profile sample-cpu      # validate the profile's experiments

Experiments are written to ARTIFACTS/oof/<experiment>/ (``--artifacts``, default: here). An
experiment name is configs/models/<name>.yaml, or a path to a YAML file of that form.

Re-running resumes an interrupted experiment and skips a complete one (``--force`` redoes it).
Folds of one experiment may run in separate processes at once (``--folds``). ``--engine ray``
runs every (experiment, fold) as a Ray task on a local cluster or a running one (``--address``)
and assembles each experiment in this process. Under torchrun the ranks train each fold
together (one model, the global batch split between them). The same fold loop runs inside
notebooks/train.ipynb.
"""

from __future__ import annotations

import argparse

from landcover import cli, distributed
from landcover.cache import prepare_data
from landcover.cli import Parser
from landcover.config import load_config, load_profile
from landcover.errors import ConfigError, cli_errors
from landcover.experiment import run_experiment
from landcover.fold_plan import plan_for
from landcover.freshness import staleness
from landcover.members import member_for
from landcover.runtime import resolve_device


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = Parser(__doc__)
    parser.add_experiments("the profile's, with --check")
    parser.add_argument("--data", help="data folder in the official layout")
    parser.add_argument("--profile", help="configs/profiles/<name>.yaml: scale and hardware")
    parser.add_set()
    parser.add_artifacts()
    parser.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: one experiment after another in this process; ray: fold tasks on Ray",
    )
    parser.add_argument(
        "--address", help="Ray cluster to join: auto, host:port (default: a new one)"
    )
    parser.add_argument("--folds", help="comma-separated folds to run (default: all)")
    parser.add_argument("--cache-dir", help="data cache (default: cache/<name>-<hash>)")
    parser.add_argument("--force", action="store_true", help="retrain even if complete")
    parser.add_argument("--smoke", action="store_true", help="1 epoch of 2 steps, no TTA (CI)")
    parser.add_argument(
        "--status",
        action="store_true",
        help="print complete / stale / absent for this data and config, and exit",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="resolve and build the configs of --experiments (default: the profile's) under "
        "--profile and --set, print their names and exit: what run_all.sh checks first",
    )
    args = parser.parse_args(argv)
    if not args.check and not (args.experiments and args.data):
        parser.error("--experiments and --data are required (or --check)")
    return args


def parse_folds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(f) for f in text.split(",")]
    except ValueError:
        raise ConfigError(f"--folds {text!r}: expected comma-separated fold numbers") from None


def check_experiments(
    names: str | None, profile: str | None, overrides: list[str], smoke: bool
) -> str:
    """Every named experiment (default: the profile's) resolves, builds, and can run here.
    Prints four lines: all of them; the CPU-only ones (LightGBM); the networks' device; the
    profile's mosaic map (rows cols overlap)."""
    prof = load_profile(profile)
    chosen = cli.names(names) or prof["experiments"]
    if not chosen:
        raise ConfigError(f"profile {profile!r} lists no experiments; pass --experiments a,b")
    cpu_only, devices = [], set()
    for name in chosen:
        config = load_config(name, profile=profile, overrides=overrides, smoke=smoke)
        member = member_for(config)
        member.check()
        device = resolve_device(config["run"]["device"])
        if member.is_network:
            devices.add(device.type)
        else:
            cpu_only.append(name)
    mosaic = dict(prof["map"])
    if smoke:  # CI: at most 2 x 2 tiles (the notebook caps a smoke mosaic alike)
        mosaic.update(rows=min(mosaic["rows"], 2), cols=min(mosaic["cols"], 2))
    mosaic = " ".join(str(v) for v in mosaic.values())
    network_device = "cuda" if "cuda" in devices else "cpu"
    return "\n".join([",".join(chosen), ",".join(cpu_only), network_device, mosaic])


@cli_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.check:
        print(check_experiments(args.experiments, args.profile, args.set, args.smoke))
        return
    folds = parse_folds(args.folds)
    names = cli.names(args.experiments)
    oof_dir = cli.oof_dir(args.artifacts)
    configs = [
        load_config(n, profile=args.profile, overrides=args.set, smoke=args.smoke) for n in names
    ]
    for config in configs:  # a bad model or unavailable weights fail before any data work
        member_for(config).check()
        resolve_device(config["run"]["device"])
    if distributed.launched():
        if args.engine != "local" or args.status:
            raise ConfigError("under torchrun, train.py trains (--engine local, no --status)")
        if any(not member_for(c).is_network for c in configs):
            raise ConfigError("torchrun trains networks; run the LightGBM member without it")
        device = distributed.init(resolve_device(configs[0]["run"]["device"]).type)
    else:
        device = None
    if distributed.is_writer():  # the cache and the fold plans are made once, by rank 0
        data = prepare_data(args.data, cache_dir=args.cache_dir)
        for config in configs:
            plan_for(data, config["data"])
    distributed.barrier()
    data = prepare_data(args.data, cache_dir=args.cache_dir)
    if args.status:
        for config in configs:
            state, why = staleness(oof_dir / config["experiment"], config, data)
            print(f"{state}: {why}" if why else state)
        return
    if args.engine == "ray":
        if folds is not None:
            raise ConfigError("--engine ray runs every fold; --folds is for the local engine")
        from landcover.ray_engine import run_on_ray

        written = run_on_ray(configs, data, oof_dir, address=args.address, force=args.force)
        for path in written.values():
            if path is not None:
                print(path)
        return
    for config in configs:
        exp_dir = run_experiment(
            config, data, oof_dir=oof_dir, folds_to_run=folds, force=args.force, device=device
        )
        if exp_dir is not None and distributed.is_writer():
            print(exp_dir)


if __name__ == "__main__":
    main()
