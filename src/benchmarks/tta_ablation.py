"""OOF KL of a trained experiment under 1, 2, 4 and 8 test-time views (no retraining).

    python src/benchmarks/tta_ablation.py oof/unet_regnety_002 [--views 1,2,4,8]

Re-predicts every sample with the checkpoint of the fold that did not see it, for each number of
flip/rotation views, in the experiment's own predict mode, and prints the OOF KL and seconds.
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
from landcover.inference import load_fold, predict_modes
from landcover.metric import kl_divergence


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("experiment", help="a complete experiment directory")
    parser.add_argument("--views", default="1,2,4,8")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    exp = load_experiment(args.experiment)
    data = prepare_data(json.loads((exp.path / "meta.json").read_text())["data_dir"])
    row_of = {sample_id: row for row, sample_id in enumerate(data.train_ids.tolist())}
    truth = data.labels[[row_of[i] for i in exp.oof.ids.tolist()]]
    views = [int(v) for v in args.views.split(",")]
    preds = {v: np.zeros_like(truth) for v in views}
    seconds = dict.fromkeys(views, 0.0)
    for fold in np.unique(exp.oof.folds):
        fold_model = load_fold(exp.path, int(fold))  # a network's (members/network.py)
        model, normalizer, config = fold_model.model, fold_model.normalizer, fold_model.config
        mode = config["predict"]["mode"]
        picked = np.flatnonzero(exp.oof.folds == fold)
        rows = np.array([row_of[i] for i in exp.oof.ids[picked].tolist()])
        for v in views:
            started = time.perf_counter()
            preds[v][picked] = predict_modes(
                model,
                data.train_images,
                rows,
                normalizer,
                config,
                torch.device("cpu"),
                tta=v,
                modes=(mode,),
            )[mode]
            seconds[v] += time.perf_counter() - started
    print(f"{exp.name}: OOF KL by number of test-time views ({mode} proportions)")
    for v in views:
        print(f"  {v} view(s)  KL {kl_divergence(truth, preds[v]):.5f}  ({seconds[v]:.0f} s)")


if __name__ == "__main__":
    main()
