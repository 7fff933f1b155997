"""What tuning the blend on changed OOF rows too buys on the shift test, fold by fold.

    python src/benchmarks/changed_tuning.py --oof-dir DIR --changed DUMP [--experiments a,b]
        [--labels CSV] [--variants clean,one,all] [--trials 200] [--json OUT]

DUMP is what ``src/benchmarks/shift_test.py SIDECAR --save-oof DUMP`` writes (changes drawn
per patch). For each way of tuning, the blend (``blending.tune`` as ``blend.py`` runs it, with
the class calibration and the least floor) is re-tuned without each fold, and the held-out
fold's rows are blended as they are and under every change of the shift test: a nested shift
test, where no change of a scored row was seen by the tuning. Ways of tuning:

- ``clean``: the OOF rows alone (``blend.py``);
- ``one``: and each row once more under one change drawn per sample id, gain, offset or haze
  (``blend.py --changed-oof``, ``blend_io.changed_kinds``);
- ``all``: and each row under each of the three.

The season and combined columns are changes no tuning here saw. The clean rows are the
experiments' own OOF predictions, the changed ones the shift test's (its views and its
LightGBM stride): the ``none`` column is the shift test's clean prediction.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landcover.blend_io import CHANGED_KINDS, load_inputs, one_change_a_row, read_changed
from landcover.blending import FLOOR_UNIFORM, MIN_FLOOR, Problem, Stack, blend, tune
from landcover.metric import kl_divergence
from landcover.shift import SHIFTS


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--oof-dir", required=True)
    parser.add_argument("--changed", required=True, help="shift_test.py --save-oof's folder")
    parser.add_argument("--experiments")
    parser.add_argument("--labels")
    parser.add_argument("--variants", default="clean,one,all")
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--json")
    args = parser.parse_args()
    names = args.experiments.split(",") if args.experiments else None
    inputs = load_inputs(args.oof_dir, names, args.labels)
    truth, folds = inputs.truth, inputs.folds
    columns = read_changed(args.changed, inputs, tuple(SHIFTS))
    one = one_change_a_row(columns, inputs.ids)  # blend.py --changed-oof's rows
    settings = {
        "use_floor": True,
        "min_floor": MIN_FLOOR,
        "uniform": FLOOR_UNIFORM,
        "class_calibration": True,
    }

    sets = {  # what each way of tuning fits: the clean rows, then each changed set
        "clean": [inputs.oof],
        "one": [inputs.oof, one],
        "all": [inputs.oof, *(columns[k] for k in CHANGED_KINDS)],
    }
    table: dict[str, dict[str, float]] = {}
    for variant in args.variants.split(","):
        stacks = [Stack.of(s) for s in sets[variant]]
        held_out = {kind: np.zeros((len(truth), 8)) for kind in ["oof", *SHIFTS]}
        for k in np.unique(folds):
            held = folds == k
            problem = Problem.of_rows(stacks, truth, ~held, **settings)
            params = tune(problem, trials=args.trials, seed=0).params
            for kind, values in [("oof", inputs.oof), *columns.items()]:
                held_out[kind][held] = blend(Stack.of(values[:, held]), params, problem.prior)
        table[variant] = {kind: kl_divergence(truth, p) for kind, p in held_out.items()}
        row = table[variant]
        worst = max(row[k] for k in SHIFTS if k != "none")
        row["worst_over_none"] = worst / row["none"]
        print(
            f"{variant:6s} nested CV {row['oof']:.5f} | "
            + " ".join(f"{k} {row[k]:.5f}" for k in SHIFTS)
            + f" | worst / none {row['worst_over_none']:.2f}x",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
