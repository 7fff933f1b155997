"""What the LightGBM member's cheap levers cost in OOF KL: proportions from every ``stride``-th
pixel and from the first ``rounds`` boosting rounds of each fold's saved model, no retraining.

    python src/benchmarks/gbm_levers.py oof/pixel_lightgbm [--strides 4 8 16]
        [--rounds 100 200 300 400] [--json out.json]

Prediction costs in proportion to pixels x rounds, so these two set most of the member's time
at full size (``gbm_scale.py``); this prints the OOF KL of every combination and the measured
seconds per 1,000 validation patches, on the same folds and boosters. Fewer rounds here means
the first rounds of a model trained for more at the same learning rate: a bound on what
training that many rounds would give, not the same model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landcover.artifacts import load_experiment
from landcover.cache import prepare_data
from landcover.members import member_for
from landcover.metric import kl_divergence


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("experiment", help="a complete pixel_gbm experiment directory")
    parser.add_argument("--strides", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--rounds", type=int, nargs="+", default=[100, 200, 300, 400])
    parser.add_argument("--threads", type=int, default=0, help="0: every core")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    exp = load_experiment(args.experiment)
    member = member_for(exp.config)
    if member.is_network:
        raise SystemExit(f"{args.experiment}: not a pixel_gbm experiment")
    data = prepare_data(exp.meta["data_dir"])
    row_of = {sample_id: row for row, sample_id in enumerate(data.train_ids.tolist())}
    truth = data.labels[[row_of[i] for i in exp.oof.ids.tolist()]]
    folds = np.unique(exp.oof.folds)
    models = {f: member.load(exp.path / "folds" / f"fold{f}", torch.device("cpu")) for f in folds}
    picked = {f: np.flatnonzero(exp.oof.folds == f) for f in folds}
    rows = {f: np.array([row_of[i] for i in exp.oof.ids[picked[f]].tolist()]) for f in folds}
    results = []
    print(f"{'stride':>6} {'rounds':>6} {'OOF KL':>8} {'s / 1k patches':>15}")
    for stride in args.strides:
        for model in models.values():  # the grid and cores the fold models predict with
            model.stride, model.threads = stride, args.threads
        warm = rows[folds[0]][:1]  # builds this stride's feature store, outside the timing
        models[folds[0]].predict_proportions(data.train_images, warm, num_iteration=1)
        for rounds in args.rounds:
            oof = np.zeros_like(exp.oof.values)
            seconds = 0.0
            for fold, model in models.items():
                started = time.perf_counter()
                last = min(rounds, model.rounds)
                oof[picked[fold]] = model.predict_proportions(
                    data.train_images, rows[fold], num_iteration=last
                )
                seconds += time.perf_counter() - started
            row = {
                "stride": stride,
                "rounds": rounds,
                "oof_kl": kl_divergence(truth, oof),
                "seconds_per_1k": 1000 * seconds / len(oof),
            }
            results.append(row)
            print(f"{stride:6d} {rounds:6d} {row['oof_kl']:8.5f} {row['seconds_per_1k']:15.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
