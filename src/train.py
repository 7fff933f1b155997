"""Train one experiment with k-fold CV and write its OOF and test predictions.

    python src/train.py --config configs/models/unet_resnet18.yaml --data DIR [--profile sample-cpu]
    python src/train.py --config unet_resnet18 --data DIR --set train.epochs=3 --folds 0,1

Re-running resumes an interrupted experiment and skips a complete one (``--force`` redoes it).
The same function runs inside notebooks/train.ipynb.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from landcover.cache import prepare_data
from landcover.config import load_config
from landcover.errors import cli_errors
from landcover.experiment import experiment_state, run_experiment
from landcover.members import member_for
from landcover.runtime import resolve_device


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--config", required=True, help="configs/models/<exp>.yaml or <exp>")
    parser.add_argument("--data", required=True, help="data folder in the official layout")
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
    return parser.parse_args(argv)


@cli_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config = load_config(args.config, profile=args.profile, overrides=args.set, smoke=args.smoke)
    member_for(config).check()  # a bad model or unavailable weights fail before any data work
    resolve_device(config["run"]["device"])
    data = prepare_data(args.data, cache_dir=args.cache_dir)
    if args.status:
        print(experiment_state(Path(args.oof_dir), config, data))
        return
    folds = [int(f) for f in args.folds.split(",")] if args.folds else None
    exp_dir = run_experiment(
        config, data, oof_dir=args.oof_dir, folds_to_run=folds, force=args.force
    )
    if exp_dir is not None:
        print(exp_dir)


if __name__ == "__main__":
    main()
