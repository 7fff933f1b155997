"""Blend the experiments in oof/ into the final submission.

    python src/blend.py [--artifacts .] [--experiments a,b] [--labels train_labels.csv]
                        [--trials 200] [--seed 0] [--min-floor 0.01] [--floor-uniform 0.5]
                        [--no-floor] [--no-class-calibration] [--no-polish]
                        [--class-mix-weights]
                        [--out PATH]

Tunes a temperature per model, simplex weights, a power and a multiplier per class and a floor
toward the training prior to minimise the OOF KL (seeded Optuna TPE, then L-BFGS-B from several
starts; the class calibration in the L-BFGS-B stage), scores the procedure honestly by nested
CV over the OOF folds, and writes <out>.csv (the submission), <out>.json (parameters, scores,
provenance) and <out>.oof.csv (the blended OOF, re-scorable
with src/score.py). The last line printed is the submission path.

With --class-mix-weights the tuning weighs each OOF row by its mean weight in the class-mix
shift test's regions (shift_test.py): the blend is tuned for the average region of the full
label table rather than for the training region's own class mix.

When the labels lack a scored class (the shared sample has no natural and no snow), the floor
is at least --min-floor and its target holds a --floor-uniform share spread over every class,
so that new ground never gets exact zeros for it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from landcover import cli
from landcover.artifacts import incomplete_experiments
from landcover.blend_inputs import load_inputs
from landcover.blend_model import FLOOR_UNIFORM, MAX_FLOOR, MIN_FLOOR
from landcover.blend_outputs import default_out, format_table, sidecar_paths, write_outputs
from landcover.blend_tuning import fit_blend
from landcover.classmix import mix_table, region_row_weights, regions_from_table
from landcover.cli import Parser
from landcover.errors import DataError, cli_errors, number_in, positive_int
from landcover.metric import scored_proportions
from landcover.model_card import write_model_card


@cli_errors
def main(argv: list[str] | None = None) -> None:
    parser = Parser(__doc__)
    parser.add_artifacts()
    parser.add_experiments("every complete one")
    parser.add_argument(
        "--labels", help="train labels CSV (default: labels_path recorded in meta.json)"
    )
    parser.add_argument(
        "--trials", type=positive_int, default=200, help="Optuna trials (default: 200)"
    )
    parser.add_argument("--seed", type=int, default=0, help="TPE sampler seed (default: 0)")
    parser.add_argument(
        "--floor",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="tune a floor toward the training prior (default: on; --no-floor: none at all)",
    )
    parser.add_argument(
        "--min-floor",
        type=number_in(0, MAX_FLOOR),
        default=MIN_FLOOR,
        help=f"the least floor tuning may choose (default: {MIN_FLOOR}; 0: in-region tuning only)",
    )
    parser.add_argument(
        "--floor-uniform",
        type=number_in(0, 1),
        default=FLOOR_UNIFORM,
        help=f"the uniform share of the floor's target (default: {FLOOR_UNIFORM})",
    )
    parser.add_argument(
        "--class-calibration",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="tune a power and a multiplier per class on the blend, after its weights and "
        "temperatures: what the members get wrong the same way everywhere (default: on)",
    )
    parser.add_argument(
        "--class-mix-weights",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="tune for the average region of --mix-labels: each OOF row weighted by its mean "
        "weight in the class-mix shift test's regions (landcover/classmix.py; default: on; "
        "--no-class-mix-weights: for the training region's own mix)",
    )
    parser.add_argument(
        "--mix-labels",
        help="the label table whose regions --class-mix-weights tunes for (default: "
        "train_labels_full.csv beside the labels if there is one, else the labels)",
    )
    parser.add_argument(
        "--average-seeds",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="the runs of one experiment at several seeds (<name>, <name>_s1, ...) as one "
        "member, their predictions averaged before any weight is tuned (default: on)",
    )
    parser.add_argument(
        "--polish",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="refine the best trial with L-BFGS-B (default: on)",
    )
    parser.add_argument(
        "--out", help="submission CSV (default: ARTIFACTS/submissions/blend-<UTC>.csv)"
    )
    args = parser.parse_args(argv)

    submissions = cli.submissions_dir(args.artifacts)
    out = submissions / default_out().name if args.out is None else Path(args.out)
    sidecar_paths(out)  # refuse a bad name before the tuning, not after
    names = cli.names(args.experiments) or None
    oof_dir = cli.oof_dir(args.artifacts)

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    if names is None:  # every complete experiment: say which directories are left out
        for path, missing in incomplete_experiments(oof_dir):
            log(f"warning: {path} is not a complete experiment (missing {missing}); left out")
    inputs = load_inputs(oof_dir, names, args.labels, average_seeds=args.average_seeds)

    weights, table = None, None
    if args.class_mix_weights:
        table = mix_table(inputs.labels_path, args.mix_labels)
        width = (inputs.experiments[0].meta.get("fold_scheme") or {}).get("row_width")
        try:
            if not width:
                raise DataError("the experiments record no raster row width (fold_scheme)")
            regions = regions_from_table(table, scored_proportions(inputs.truth), int(width))
        except DataError as err:  # a small set: no region of the label table to tune for
            log(f"warning: {err}; tuning for the OOF rows as they are")
            table = None
        else:
            weights = region_row_weights(regions)
            log(f"tuning for the average of {len(regions)} regions of {table}")
    log(f"experiments: {', '.join(inputs.names)}; labels: {inputs.labels_path}")
    fit = fit_blend(
        inputs.oof,
        inputs.truth,
        inputs.folds,
        trials=args.trials,
        seed=args.seed,
        use_floor=args.floor,
        min_floor=args.min_floor,
        floor_uniform=args.floor_uniform,
        polish=args.polish,
        class_calibration=args.class_calibration,
        row_weights=weights,
        log=log,
    )
    settings = {
        "trials": args.trials,
        "seed": args.seed,
        "floor": args.floor,
        "min_floor": args.min_floor,
        "floor_uniform": args.floor_uniform,
        "polish": args.polish,
        "class_calibration": args.class_calibration,
        "class_mix_weights": table is not None,
        "average_seeds": args.average_seeds,
        "mix_labels": None if table is None else str(table),
        "experiments_requested": names,
    }
    path = write_outputs(out, inputs, fit, settings)
    write_model_card(path.with_suffix(".json"))
    print(format_table(inputs, fit))
    print(path)


if __name__ == "__main__":
    main()
