"""The shift test: every experiment of a submitted blend (those it gave no weight too), and the
blend, scored on their spatial validation folds as they are and under changes of radiometry
(``landcover/shift.py`` states the ranges and why), optionally with a transductive lever
played on each held-out fold's images: the networks' BatchNorm adapted to them (``--adapt``),
or their radiometry aligned to the training folds' (``--align``, ``landcover/align.py``;
``--align beyond_spread``: only beyond the training rows' natural spread), each patch's dark
level first brought within the training patches' (``--dark-level``).
Several blends: each experiment scored once, then each blend.

    python src/benchmarks/shift_test.py submissions/<name>.json [more.json ...] [--tta 1] \\
        [--adapt] [--align [beyond_spread]] [--dark-level] [--per-region R] [--hard] \\
        [--shifts none,gain,offset,haze,season,combined] [--gbm-stride 8] [--device auto] \\
        [--json out.json] [--save-oof DIR]

A change is drawn per patch, or with ``--per-region R`` once a held-out fold (a region's
patches share one acquisition): R draws a fold, each column then the mean KL over the R.

Each fold model predicts its own validation rows (OOF); the blend applies the sidecar's
weights, temperatures and floor. ``--tta 1`` (the default) predicts one view, for speed, and
the clean column is then also at one view, so the ratios compare like with like; likewise
``--gbm-stride 8`` (LightGBM proportions from every 8th pixel, 4x faster). ``--hard``: every
member counts argmax pixels (``predict.mode: hard``; image-level members stay soft) instead of
averaging probabilities, the clean column too; the blend row then applies weights and
temperatures tuned on soft proportions.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landcover.align import FoldRadiometry
from landcover.artifacts import load_experiment
from landcover.cache import prepare_data
from landcover.fold_plan import plan_for
from landcover.metric import kl_divergence
from landcover.predictor import Predictor
from landcover.shift import SHIFTS, shifted_oof


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "sidecar", nargs="+", help="submissions/<name>.json (several: their members once each)"
    )
    parser.add_argument("--shifts", default=",".join(SHIFTS))
    parser.add_argument("--tta", type=int, default=1)
    parser.add_argument("--adapt", action="store_true", help="adapt BatchNorm to each fold")
    parser.add_argument(
        "--align",
        nargs="?",
        const=True,
        default=False,
        choices=[True, "beyond_spread"],
        help="align each fold's radiometry to its training's, all the way or beyond_spread "
        "(predict.align members always, as they were trained)",
    )
    parser.add_argument(
        "--dark-level",
        action="store_true",
        help="bring each patch's dark level within its fold's training patches' "
        "(predict.dark_level members always, as they were trained)",
    )
    parser.add_argument(
        "--per-region",
        type=int,
        default=0,
        metavar="R",
        help="draw each change once a fold, R times (0: once a patch)",
    )
    parser.add_argument("--hard", action="store_true", help="argmax pixel counts")
    parser.add_argument(
        "--gbm-stride",
        type=int,
        default=0,
        help="LightGBM members' proportions from every N-th pixel (0: their own setting)",
    )
    parser.add_argument(
        "--device",
        default="auto",
        help="where the fold models predict: cpu, cuda, cuda:1 (default: auto, a GPU if any)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", help="write the table here too")
    parser.add_argument(
        "--save-oof",
        metavar="DIR",
        help="write each experiment's OOF predictions under every change to DIR/<name>.npz "
        "(sample_ids, folds, then one (n, 10) array per change; per region: <change>.<draw>)",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kinds = args.shifts.split(",")
    table: dict[str, dict[str, float]] = {}

    def load() -> list[Predictor]:
        """Every member of every blend (their weights decide each blend), at the settings
        asked for."""
        predictors = [
            Predictor.load(s, device=args.device, every_member=True) for s in args.sidecar
        ]
        for member in (m for p in predictors for m in p.members):
            member.config["predict"]["tta"] = args.tta
            if args.hard:
                member.config["predict"]["mode"] = "hard"
            for fold in member.folds:
                if args.hard and hasattr(fold, "hard"):
                    fold.hard = True
                if args.gbm_stride and hasattr(fold, "stride"):  # the clean column too
                    fold.stride = args.gbm_stride
        return predictors

    def adapt(model, changed):
        if hasattr(model, "adapt_batchnorm"):
            model.adapt_batchnorm(changed)

    predictors = load()
    first = predictors[0].members[0]
    data = prepare_data(first.meta["data_dir"])
    folds = load_experiment(first.path).oof.select(data.train_ids).folds  # cache order
    truth, ids, images = data.labels, data.train_ids, data.train_images
    names: dict[Path, str] = {}  # one row per experiment, though several blends hold it
    for member in (m for p in predictors for m in p.members):
        if member.path.resolve() not in names:
            taken = member.name in names.values()
            names[member.path.resolve()] = (
                f"{member.name} ({member.path.parent.name})" if taken else member.name
            )
    plan, width = plan_for(data, first.config["data"]), int(first.meta["fold_scheme"]["row_width"])
    radiometry: dict[tuple, FoldRadiometry] = {}  # each fold's, per setting, read once
    saved: dict[str, dict[str, np.ndarray]] = {}  # --save-oof: name -> change -> OOF

    def aligner(mode, dark):
        def align(changed, patch_ids, fold):  # as the pipeline prepares a fold (fold_predict.py)
            if (fold, mode, dark) not in radiometry:
                rows = plan.train_rows(fold)
                radiometry[fold, mode, dark] = FoldRadiometry.of_fold(
                    images, rows, ids[rows], width, mode, dark
                )
            return radiometry[fold, mode, dark].regions_prepared(changed, patch_ids, width)

        return align

    for i, kind in enumerate(kinds):
        draws = [None] if not args.per_region else range(1 if kind == "none" else args.per_region)
        sums: dict[str, float] = {}
        for draw in draws:
            if args.adapt and (i or draw):
                predictors = load()  # fresh models: adaptation changed the last ones
            oof: dict[Path, np.ndarray] = {}
            for member in (m for p in predictors for m in p.members):
                key = member.path.resolve()
                if key not in oof:
                    mode = args.align or member.config["predict"]["align"]  # flag, else trained
                    dark = args.dark_level or member.config["predict"]["dark_level"]
                    oof[key] = shifted_oof(
                        member.folds,
                        images,
                        ids,
                        folds,
                        kind,
                        adapt if args.adapt else None,
                        draw,
                        aligner(mode, dark) if mode or dark else None,
                    )
                    sums[names[key]] = sums.get(names[key], 0) + kl_divergence(truth, oof[key])
                    label = kind if draw is None else f"{kind}.{draw}"
                    saved.setdefault(names[key], {})[label] = oof[key]
            for sidecar, predictor in zip(args.sidecar, predictors, strict=True):
                blended = predictor.combine([[oof[m.path.resolve()]] for m in predictor.members])
                row = "blend" if len(predictors) == 1 else f"blend {Path(sidecar).stem}"
                sums[row] = sums.get(row, 0) + kl_divergence(truth, blended)
        for row, total in sums.items():
            table.setdefault(row, {})[kind] = total / len(draws)
        print(
            f"{kind:10s} " + "  ".join(f"{n} {v[kind]:.5f}" for n, v in table.items()), flush=True
        )
    print(f"\n{'':24s}" + "".join(f"{k:>10s}" for k in kinds) + "   worst / clean")
    for name, row in table.items():
        changed = [row[k] for k in kinds if k != "none"]
        worst = f"{max(changed) / row['none']:8.2f}x" if changed and "none" in row else ""
        print(f"{name:24s}" + "".join(f"{row[k]:10.5f}" for k in kinds) + f"   {worst}")
    if args.json:
        setting = {
            "align": args.align,
            "dark_level": args.dark_level,
            "adapt": args.adapt,
            "per_region": args.per_region,
        }
        Path(args.json).write_text(
            json.dumps({"shifts": SHIFTS, "setting": setting, "kl": table}, indent=2)
        )
    if args.save_oof:
        out = Path(args.save_oof)
        out.mkdir(parents=True, exist_ok=True)
        for name, arrays in saved.items():
            np.savez(out / f"{name}.npz", sample_ids=ids, folds=folds, **arrays)


if __name__ == "__main__":
    main()
