"""What choosing the checkpoint on the validation fold changes: OOF KL of each fold's last-epoch
weights against its best-validation epoch (networks; LightGBM: all rounds against the best
validation round), on the same folds, no retraining.

    python src/benchmarks/checkpoint_choice.py oof/unet_regnety_002 [oof/pixel_lightgbm ...]

The best-epoch figure peeks at the rows it is scored on (the epoch is chosen on them), so it is
an optimistic bound; the gap between the two is what the peeking is worth.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landcover.artifacts import load_experiment
from landcover.cache import prepare_data
from landcover.members import member_for
from landcover.metric import kl_divergence


def epoch_oof(exp, data, row_of: dict, which: str) -> tuple[np.ndarray, list[int]]:
    """OOF predictions of each fold's ``which`` ("last" or "best") weights, and the epochs
    (LightGBM: boosting rounds) they come from."""
    member = member_for(exp.config)
    oof = np.zeros_like(exp.oof.values)
    epochs = []
    for fold in np.unique(exp.oof.folds):
        picked = np.flatnonzero(exp.oof.folds == fold)
        rows = np.array([row_of[i] for i in exp.oof.ids[picked].tolist()])
        fold_dir = exp.path / "folds" / f"fold{fold}"
        done = json.loads((fold_dir / "done.json").read_text())
        if not member.is_network:  # LightGBM: all rounds, or the best validation round
            model = member.load(fold_dir, torch.device("cpu"))
            rounds = done["best_round"] if which == "best" else model.rounds
            oof[picked] = model.predict_proportions(data.train_images, rows, num_iteration=rounds)
            epochs.append(rounds)
            continue
        epochs.append(done["best_epoch"] if which == "best" else done["epochs_run"])
        if exp.config["train"]["select"] == which:
            oof[picked] = exp.oof.values[picked]  # what the experiment predicted with
            continue
        model = member.load(fold_dir, torch.device("cpu"), weights=f"{which}_epoch.pt")
        oof[picked] = model.predict_proportions(data.train_images, rows)
    return oof, epochs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("experiments", nargs="+", help="complete experiment directories")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    print(f"{'experiment':<22} {'uses':>5} {'last KL':>8} {'best KL':>8}  last / best epochs")
    for path in args.experiments:
        exp = load_experiment(path)
        data = prepare_data(exp.meta["data_dir"])
        row_of = {sample_id: row for row, sample_id in enumerate(data.train_ids.tolist())}
        truth = data.labels[[row_of[i] for i in exp.oof.ids.tolist()]]
        row = {"uses": exp.config["train"]["select"]}
        if not member_for(exp.config).is_network:
            row["uses"] = "last"  # a fixed number of rounds
        for which in ("last", "best"):
            oof, epochs = epoch_oof(exp, data, row_of, which)
            row[f"{which}_kl"] = kl_divergence(truth, oof)
            row[f"{which}_epochs"] = epochs
        results[exp.name] = row
        print(
            f"{exp.name:<22} {row['uses']:>5} {row['last_kl']:8.5f} {row['best_kl']:8.5f}  "
            f"{row['last_epochs']} / {row['best_epochs']}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
