"""Train one experiment with k-fold CV and write its OOF and test predictions.

    python src/train.py --config configs/models/unet_resnet18.yaml --data DIR [--profile sample-cpu]
    python src/train.py --config unet_resnet18 --data DIR --set train.epochs=3 --folds 0,1
    python src/train.py --check --profile sample-cpu      # validate the profile's experiments

Re-running resumes an interrupted experiment and skips a complete one (``--force`` redoes it).
The same function runs inside notebooks/train.ipynb.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from landcover.cache import prepare_data
from landcover.config import load_config, load_profile
from landcover.errors import ConfigError, cli_errors
from landcover.experiment import experiment_state, run_experiment
from landcover.members import member_for
from landcover.runtime import resolve_device


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--config", help="configs/models/<exp>.yaml or <exp>")
    parser.add_argument("--data", help="data folder in the official layout")
    parser.add_argument("--profile", help="configs/profiles/<name>.yaml overrides")
    parser.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="config overrides, e.g. train.epochs=3 run.device=cpu",
    )
    parser.add_argument("--folds", help="comma-separated folds to run (default: all)")
    parser.add_argument("--oof-dir", default="oof", help="where experiments are written")
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
        metavar="NAMES",
        nargs="?",
        const="",
        help="resolve and build the configs of these experiments (a,b; default: the profile's) "
        "under --profile and --set, print their names and exit: what run_all.sh checks first",
    )
    args = parser.parse_args(argv)
    if args.check is None and not (args.config and args.data):
        parser.error("--config and --data are required (or --check)")
    return args


def parse_folds(text: str | None) -> list[int] | None:
    if not text:
        return None
    try:
        return [int(f) for f in text.split(",")]
    except ValueError:
        raise ConfigError(f"--folds {text!r}: expected comma-separated fold numbers") from None


def check_experiments(names: str, profile: str | None, overrides: list[str], smoke: bool) -> str:
    """Every named experiment (default: the profile's) resolves, builds, and can run here."""
    chosen = [n.strip() for n in names.split(",") if n.strip()] or load_profile(profile)[
        "experiments"
    ]
    if not chosen:
        raise ConfigError(f"profile {profile!r} lists no experiments; pass --check a,b")
    for name in chosen:
        config = load_config(name, profile=profile, overrides=overrides, smoke=smoke)
        member_for(config).check()
        resolve_device(config["run"]["device"])
    return ",".join(chosen)


@cli_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.check is not None:
        print(check_experiments(args.check, args.profile, args.set, args.smoke))
        return
    folds = parse_folds(args.folds)
    config = load_config(args.config, profile=args.profile, overrides=args.set, smoke=args.smoke)
    member_for(config).check()  # a bad model or unavailable weights fail before any data work
    resolve_device(config["run"]["device"])
    data = prepare_data(args.data, cache_dir=args.cache_dir)
    if args.status:
        print(experiment_state(Path(args.oof_dir), config, data))
        return
    exp_dir = run_experiment(
        config, data, oof_dir=args.oof_dir, folds_to_run=folds, force=args.force
    )
    if exp_dir is not None:
        print(exp_dir)


if __name__ == "__main__":
    main()
