"""What the classes the training labels lack cost on new ground, and what a least floor buys back.

    python src/benchmarks/unseen_classes.py --labels-full FULL_Y_TRAIN.csv --oof-dir DIR
        [--experiments a,b] [--floors 0,0.001,0.002,0.005,0.01,0.02] [--uniform 1]
        [--trials 200] [--json OUT]

The shared sample has no natural and no snow: a member trained on it gives them exact zeros
(LightGBM) or ~1e-10 (a network, sharpened by the blend), and the metric charges
y * log(y / 1e-8) for each. For every least floor f (``blend.py --min-floor f --floor-uniform
u``), two figures:

- new ground: a predictor perfect on every class the training labels contain and zero on the
  others, floored as the blend floors it ((1 - f) q + f target, ``blending.floor_target``),
  scored with the challenge metric on the rows of the full label table outside the training
  ids (the full official y_train is shipped with the sample for statistics). What the unseen
  classes alone cost any member trained on these labels, at best;
- in-region: the blend's nested CV on the OOF experiments at that least floor (``fit_blend``,
  as ``blend.py`` tunes it), i.e. what the floor costs where no class is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landcover.blend_io import load_inputs
from landcover.blending import FLOOR_UNIFORM, fit_blend, floor_target, scored_prior
from landcover.constants import SCORED_CLASSES
from landcover.metric import kl_divergence, scored_proportions
from landcover.tables import read_proportions


def seen_only(truth: np.ndarray, seen: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """(n, 8) the truth with the unseen classes zeroed and the rest renormalised: a predictor
    perfect on what it was trained to see (a row of only unseen classes gets ``prior``)."""
    pred = np.where(seen, truth, 0.0)
    total = pred.sum(axis=1, keepdims=True)
    return np.where(total > 0, pred / np.where(total > 0, total, 1.0), prior)


def new_ground_kl(
    full: np.ndarray, train: np.ndarray, floors: list[float], uniform: float
) -> tuple[list[str], dict[float, float]]:
    """(unseen class names, {least floor: KL of the floored seen-only predictor on ``full``})."""
    truth = scored_proportions(full)
    train_scored = scored_proportions(train)
    seen = train_scored.sum(axis=0) > 0
    prior = train_scored.mean(axis=0)
    pred = seen_only(truth, seen, prior)
    target = floor_target(scored_prior(train), uniform)
    scores = {f: kl_divergence(truth, (1.0 - f) * pred + f * target) for f in floors}
    return [c for c, s in zip(SCORED_CLASSES, seen, strict=True) if not s], scores


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--labels-full", required=True, help="a label table of other ground")
    parser.add_argument("--oof-dir", required=True, help="the experiments a blend is tuned on")
    parser.add_argument("--experiments", help="comma-separated names (default: every one)")
    parser.add_argument("--floors", default="0,0.001,0.002,0.005,0.01,0.02")
    parser.add_argument("--uniform", type=float, default=FLOOR_UNIFORM)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args(argv)

    floors = [float(f) for f in args.floors.split(",")]
    names = [n for n in (args.experiments or "").split(",") if n] or None
    inputs = load_inputs(args.oof_dir, names)
    full = read_proportions(args.labels_full, what="full label table")
    other = ~np.isin(full.ids, inputs.ids)
    unseen, new_ground = new_ground_kl(full.values[other], inputs.truth, floors, args.uniform)
    print(f"training rows {len(inputs.ids)}; other ground {other.sum()} rows of {args.labels_full}")
    print(f"classes the training labels lack: {', '.join(unseen) or 'none'}")
    print(f"{'least floor':>11}  {'new ground, seen-only':>21}  {'in-region nested CV':>19}  floor")
    rows = []
    for f in floors:
        fit = fit_blend(
            inputs.oof,
            inputs.truth,
            inputs.folds,
            trials=args.trials,
            min_floor=f,
            floor_uniform=args.uniform,
        )
        rows.append(
            {
                "min_floor": f,
                "new_ground_kl": new_ground[f],
                "nested_cv_kl": fit.nested_kl,
                "floor": fit.params.floor,
                "weights": dict(zip(inputs.names, fit.params.weights.tolist(), strict=True)),
            }
        )
        print(f"{f:11g}  {new_ground[f]:21.5f}  {fit.nested_kl:19.5f}  {fit.params.floor:.4f}")
    if args.json:
        report = {
            "experiments": inputs.names,
            "uniform": args.uniform,
            "unseen_classes": unseen,
            "other_rows": int(other.sum()),
            "rows": rows,
        }
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
