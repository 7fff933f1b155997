"""The shift test: every experiment of a submitted blend (those it gave no weight too), and the
blend, scored on their spatial validation folds as they are and under changes of radiometry
(``landcover/shift.py`` states the ranges and why), optionally with the networks' BatchNorm
adapted to each held-out fold's images.

    python src/benchmarks/shift_test.py submissions/<name>.json [--tta 1] [--adapt] \\
        [--shifts none,gain,offset,haze,season,combined] [--gbm-stride 8] [--json out.json]

Each fold model predicts its own validation rows (OOF); the blend applies the sidecar's
weights, temperatures and floor. ``--tta 1`` (the default) predicts one view, for speed, and
the clean column is then also at one view, so the ratios compare like with like; likewise
``--gbm-stride 8`` (LightGBM proportions from every 8th pixel, 4x faster).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landcover.artifacts import load_experiment
from landcover.cache import prepare_data
from landcover.metric import kl_divergence
from landcover.predictor import Predictor
from landcover.shift import SHIFTS, shifted_oof


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("sidecar", help="submissions/<name>.json")
    parser.add_argument("--shifts", default=",".join(SHIFTS))
    parser.add_argument("--tta", type=int, default=1)
    parser.add_argument("--adapt", action="store_true", help="adapt BatchNorm to each fold")
    parser.add_argument(
        "--gbm-stride",
        type=int,
        default=0,
        help="LightGBM members' proportions from every N-th pixel (0: their own setting)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the table here too")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kinds = args.shifts.split(",")
    table: dict[str, dict[str, float]] = {}

    def load() -> Predictor:
        """Every member (the blend's weights decide the blend), at the settings asked for."""
        predictor = Predictor.load(args.sidecar, device="cpu", every_member=True)
        for member in predictor.members:
            member.config["predict"]["tta"] = args.tta
            for fold in member.folds:
                if args.gbm_stride and hasattr(fold, "stride"):  # the clean column too
                    fold.stride = args.gbm_stride
        return predictor

    def adapt(model, changed):
        if hasattr(model, "adapt_batchnorm"):
            model.adapt_batchnorm(changed)

    predictor = load()
    first = predictor.members[0]
    data = prepare_data(first.meta["data_dir"])
    folds = load_experiment(first.path).oof.select(data.train_ids).folds  # cache order
    truth, ids, images = data.labels, data.train_ids, data.train_images
    for i, kind in enumerate(kinds):
        if args.adapt and i:
            predictor = load()  # fresh models: adaptation changed the last ones
        per_member = []
        for member in predictor.members:
            oof = shifted_oof(member.folds, images, ids, folds, kind, adapt if args.adapt else None)
            per_member.append(oof)
            table.setdefault(member.name, {})[kind] = kl_divergence(truth, oof)
        blended = predictor.combine([[p] for p in per_member])
        table.setdefault("blend", {})[kind] = kl_divergence(truth, blended)
        print(
            f"{kind:10s} " + "  ".join(f"{n} {v[kind]:.5f}" for n, v in table.items()), flush=True
        )
    print(f"\n{'':24s}" + "".join(f"{k:>10s}" for k in kinds) + "   worst / clean")
    for name, row in table.items():
        worst = max(row[k] for k in kinds if k != "none") / row["none"] if "none" in row else 0
        print(f"{name:24s}" + "".join(f"{row[k]:10.5f}" for k in kinds) + f"   {worst:8.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"shifts": SHIFTS, "kl": table}, indent=2))


if __name__ == "__main__":
    main()
