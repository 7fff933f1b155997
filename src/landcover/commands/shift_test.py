"""The shift tests: how every experiment of a submitted blend (those it gave no weight too) and
the blend hold up on ground they never saw, measured on the spatial validation folds.

    python src/shift_test.py submissions/<name>.json [more.json ...] [--tests radiometric,class-mix]
        [--profile P] [--tta 1] [--gbm-stride 8] [--hard [a,b]] [--dark-level on|off]
        [--adapt] [--per-region R] [--shifts none,gain,...]
        [--mix-labels train_labels_full.csv] [--band-rows 10] [--every-region N]
        [--[no-]class-calibration] [--[no-]temperatures] [--[no-]floor]
        [--[no-]class-mix-weights] [--trials N] [--device auto] [--threads 2] [--json out.json]

radiometric: each held-out fold under changes of radiometry (``landcover/shift.py`` states
the ranges and why), drawn per patch, or with ``--per-region R`` once a fold (a region's
patches share one acquisition), R draws, each column then the mean KL over them. Transductive
levers are played on each held-out fold's images: the networks' BatchNorm adapted to them
(``--adapt``), each patch's dark level first brought within the training patches'
(``--dark-level``). The blend row applies the sidecar's blend.

class-mix: the held-out patches resampled to the class mix of each band of ``--band-rows``
raster rows of ``--mix-labels`` (by default the full official y_train beside the labels when
there is one, else the labels themselves; ``landcover/classmix.py``), the blend re-tuned as
blend.py tunes it and each fold's rows blended by the blend tuned without that fold
(``landcover/newground.py``). Reported: each region's mix, the effective sample size of its
weights and the distinct patches drawn, every member's and the blend's KL there; then the held-
out folds as they are, the mean over regions and the mean of the worst tenth.

Settings not given are each member's own (``--dark-level``), or the profile's (``--profile``:
its ``shift_test`` settings), or the defaults shown. ``--tta 1`` (the default) predicts one
view, for speed, the clean columns too, so the ratios compare like with like; likewise
``--gbm-stride 8`` (LightGBM proportions from every 8th pixel). ``--hard [a,b]``: every member
(or those named) counts argmax pixels (image-level members stay soft).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from landcover.artifacts import load_experiment
from landcover.cache import prepare_data
from landcover.classmix import mix_table, region_row_weights, regions_from_table
from landcover.cli import Parser
from landcover.errors import ArtifactError, cli_errors, positive_int
from landcover.fold_plan import plan_for
from landcover.metric import kl_divergence, scored_proportions
from landcover.newground import class_mix_test
from landcover.predictor import Predictor
from landcover.profiles import load_profile
from landcover.radiometry import FoldRadiometry
from landcover.shift import SHIFTS, shifted_oof
from landcover.submission import load_submitted

TESTS = ("radiometric", "class-mix")


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = Parser(__doc__)
    add = parser.add_argument
    add("sidecar", nargs="+", help="submissions/<name>.json (several: their members once each)")
    add("--tests", default=",".join(TESTS), help="which tests, comma-separated")
    add("--profile", help="take what is not given from the profile's shift_test settings")
    add("--shifts", default=",".join(SHIFTS), help="radiometric: the changes")
    add("--tta", type=positive_int, help="test-time views (default: 1)")
    add("--gbm-stride", type=int, help="LightGBM pixels from every N-th one (default 0: own)")
    add("--hard", nargs="?", const="all", metavar="A,B", help="argmax counts: all, or these")
    add(
        "--dark-level",
        choices=["on", "off"],
        nargs="?",
        const="on",
        help="each patch's dark level for every member (default: each member's own)",
    )
    add("--adapt", action="store_true", help="radiometric: adapt BatchNorm to each fold")
    add("--per-region", type=int, default=0, metavar="R", help="radiometric: R draws a fold")
    add("--mix-labels", help="class-mix: the label table whose regions are played")
    add("--band-rows", type=positive_int, help="class-mix: raster rows a region (default: 10)")
    add("--region-min", type=positive_int, help="class-mix: fewest patches a region (default: 200)")
    add("--every-region", type=positive_int, help="class-mix: every N-th region (default: 1)")
    for flag, what in (
        ("class-calibration", "a power and a multiplier per class"),
        ("floor", "a floor"),
        ("class-mix-weights", "the rows weighted for the average region"),
    ):
        add(
            f"--{flag}",
            action=argparse.BooleanOptionalAction,
            help=f"class-mix: re-tune the blend with or without {what} (default: as the sidecar)",
        )
    add(
        "--temperatures",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="class-mix: re-tune the blend with a temperature per member, or all at 1",
    )
    add("--trials", type=positive_int, help="class-mix: the blend's trials (default: sidecar's)")
    add("--device", default="auto", help="cpu, cuda, cuda:1 or auto")
    add("--threads", type=int, default=2, help="torch threads")
    add("--json", help="write the results here too")
    args = parser.parse_args(argv)
    for key, value in load_profile(args.profile)["shift_test"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    unknown = set(args.tests.split(",")) - set(TESTS)
    if unknown:
        parser.error(f"--tests: unknown {sorted(unknown)} (known: {', '.join(TESTS)})")
    return args


class Setup:
    """The blends' members, the data, the folds and the settings both tests share."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.predictors = self.load()
        first = self.predictors[0].members[0]
        self.data = prepare_data(first.meta["data_dir"])
        self.folds = load_experiment(first.path).oof.select(self.data.train_ids).folds
        self.plan = plan_for(self.data, first.config["data"])
        self.width = int(first.meta["fold_scheme"]["row_width"])  # raster rows, the regions
        self.radiometry: dict[int, FoldRadiometry] = {}  # each fold's, read once
        self.clean: dict[Path, np.ndarray] = {}  # each member's OOF as predicted, once
        self.names: dict[Path, str] = {}  # one row per experiment, though several blends hold it
        for member in (m for p in self.predictors for m in p.members):
            if member.path.resolve() not in self.names:
                taken = member.name in self.names.values()
                self.names[member.path.resolve()] = (
                    f"{member.name} ({member.path.parent.name})" if taken else member.name
                )

    def load(self) -> list[Predictor]:
        """Every member of every blend (their weights decide each blend), at the settings
        asked for."""
        args = self.args
        predictors = [
            Predictor.load(s, device=args.device, every_member=True) for s in args.sidecar
        ]
        hard = set() if args.hard is None else set(args.hard.split(","))
        for member in (m for p in predictors for m in p.members):
            member.config["predict"]["tta"] = args.tta
            counts = "all" in hard or member.name in hard
            if counts:
                member.config["predict"]["mode"] = "hard"
            for fold in member.folds:
                if counts and hasattr(fold, "hard"):
                    fold.hard = True
                if args.gbm_stride and hasattr(fold, "stride"):  # the clean column too
                    fold.stride = args.gbm_stride
        return predictors

    def dark_corrected(self, changed: np.ndarray, ids: np.ndarray, fold: int) -> np.ndarray:
        """Patches as fold ``fold`` prepares its inputs: each one's dark level within the
        training patches'."""
        if fold not in self.radiometry:
            rows = self.plan.train_rows(fold)
            self.radiometry[fold] = FoldRadiometry.of_fold(self.data.train_images, rows, True)
        return self.radiometry[fold].prepared(changed)

    def predicted(self, member, kind: str = "none", draw: int | None = None, adapt=None):
        """(n, 10) ``member``'s held-out predictions under the change ``kind``."""
        key = member.path.resolve()
        if kind == "none" and adapt is None and key in self.clean:
            return self.clean[key]
        given = self.args.dark_level
        dark = member.config["predict"]["dark_level"] if given is None else given == "on"
        data = self.data
        out = shifted_oof(
            member.folds,
            data.train_images,
            data.train_ids,
            self.folds,
            kind,
            adapt,
            draw,
            self.dark_corrected if dark else None,
        )
        if kind == "none" and adapt is None:
            self.clean[key] = out
        return out


def radiometric(setup: Setup) -> dict:
    args, truth = setup.args, setup.data.labels
    kinds = args.shifts.split(",")
    table: dict[str, dict[str, float]] = {}

    def adapt(model, changed):
        if hasattr(model, "adapt_batchnorm"):
            model.adapt_batchnorm(changed)

    predictors = setup.predictors
    for i, kind in enumerate(kinds):
        draws = [None] if not args.per_region else range(1 if kind == "none" else args.per_region)
        sums: dict[str, float] = {}
        for draw in draws:
            if args.adapt and (i or draw):
                predictors = setup.load()  # fresh models: adaptation changed the last ones
            oof: dict[Path, np.ndarray] = {}
            for member in (m for p in predictors for m in p.members):
                key = member.path.resolve()
                if key not in oof:
                    oof[key] = setup.predicted(member, kind, draw, adapt if args.adapt else None)
                    name = setup.names[key]
                    sums[name] = sums.get(name, 0) + kl_divergence(truth, oof[key])
            for sidecar, predictor in zip(args.sidecar, predictors, strict=True):
                blended = predictor.combine([[oof[m.path.resolve()]] for m in predictor.members])
                row = "blend" if len(predictors) == 1 else f"blend {Path(sidecar).stem}"
                sums[row] = sums.get(row, 0) + kl_divergence(truth, blended)
        for row, total in sums.items():
            table.setdefault(row, {})[kind] = total / len(draws)
        print(
            f"{kind:10s} " + "  ".join(f"{n} {v[kind]:.5f}" for n, v in table.items()), flush=True
        )
    print(f"\nradiometric shift test\n{'':28s}" + "".join(f"{k:>10s}" for k in kinds) + "  worst")
    for name, row in table.items():
        changed = [row[k] for k in kinds if k != "none"]
        worst = f"{max(changed) / row['none']:6.2f}x" if changed and "none" in row else ""
        print(f"{name:28s}" + "".join(f"{row[k]:10.5f}" for k in kinds) + f"  {worst}")
    return {"shifts": {k: SHIFTS[k] for k in kinds}, "kl": table}


def blend_settings(sidecar: dict, args: argparse.Namespace) -> dict:
    """How blend.py tuned the sidecar's blend, as ``fit_blend`` takes it, with the flags'
    changes."""
    settings = sidecar["settings"]

    def given(flag: str, recorded: str, default: bool) -> bool:
        value = getattr(args, flag)
        return settings.get(recorded, default) if value is None else value

    return {
        "trials": args.trials or settings.get("trials", 200),
        "seed": settings.get("seed", 0),
        "use_floor": given("floor", "floor", True),
        "min_floor": settings.get("min_floor_applied", 0.0) or settings.get("min_floor", 0.0),
        "floor_uniform": settings.get("floor_uniform", 0.5),
        "polish": settings.get("polish", True),
        "class_calibration": given("class_calibration", "class_calibration", False),
        "temperatures": args.temperatures,
    }


def class_mix(setup: Setup) -> dict:
    args, data = setup.args, setup.data
    if len(setup.predictors) != 1:
        raise ArtifactError("the class-mix test takes one blend at a time")
    sub = load_submitted(setup.predictors[0].source)
    table_path = mix_table(sub.inputs.labels_path, args.mix_labels)
    mixes = regions_from_table(
        table_path,
        scored_proportions(data.labels),
        setup.width,
        args.band_rows,
        args.region_min,
        args.every_region,
    )
    members = setup.predictors[0].members
    settings = blend_settings(sub.sidecar, args)
    weighted = args.class_mix_weights
    if weighted is None:
        weighted = bool(sub.sidecar["settings"].get("class_mix_weights"))
    if weighted:
        settings["row_weights"] = region_row_weights(mixes)
    result = class_mix_test(
        np.stack([setup.predicted(m) for m in members]),
        data.labels,
        setup.folds,
        mixes,
        blend_settings=settings,
        names=[setup.names[m.path.resolve()] for m in members],
    )
    at = [0, 1, 2, 3, 4, 7]  # artificial, cultivated, broadleaf, coniferous, herbaceous, water
    print(f"\nclass-mix shift test ({table_path.name}, bands of {args.band_rows} raster rows)")
    head = f"{'region':12s}" + "".join(f"{c:>6s}" for c in ("artif", "culti", "broad", "conif"))
    head += "".join(f"{c:>6s}" for c in ("herba", "water")) + "   ess  drawn"
    print(head + "".join(f"{n[:14]:>15s}" for n in result.names))
    for j, r in enumerate(result.regions):
        mix = "".join(f"{r.target[i]:6.2f}" for i in at)
        kls = "".join(f"{result.kl[i, j]:15.5f}" for i in range(len(result.names)))
        print(f"{r.name:12s}{mix}{r.ess:6.0f}{r.distinct:7d}{kls}")
    worst = result.worst_decile()
    print(f"\n{'':28s}{'folds':>10s}{'regions':>10s}{'worst 10%':>10s}{'mix L1':>10s}  weight")
    for i, name in enumerate(result.names):
        weight = f"{result.weights[i]:.3f}" if i < len(result.weights) else ""
        print(
            f"{name:28s}{result.clean[i]:10.5f}{result.kl[i].mean():10.5f}{worst[i]:10.5f}"
            f"{result.mix_error[i].mean():10.3f}  {weight}"
        )
    return {
        "labels": str(table_path),
        "band_rows": args.band_rows,
        "blend_settings": {k: v for k, v in settings.items() if k != "row_weights"},
        "class_mix_weights": weighted,
        "regions": [
            {
                "name": r.name,
                "target": r.target.tolist(),
                "reached": r.reached.tolist(),
                "ess": r.ess,
                "distinct": r.distinct,
                "kl": dict(zip(result.names, result.kl[:, j].tolist(), strict=True)),
                "mix_l1": dict(zip(result.names, result.mix_error[:, j].tolist(), strict=True)),
            }
            for j, r in enumerate(result.regions)
        ],
        "summary": {
            name: {
                "folds": float(result.clean[i]),
                "regions_mean": float(result.kl[i].mean()),
                "worst_decile": float(worst[i]),
                "mix_l1": float(result.mix_error[i].mean()),
                **({"weight": float(result.weights[i])} if i < len(result.weights) else {}),
            }
            for i, name in enumerate(result.names)
        },
    }


@cli_errors
def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    torch.set_num_threads(args.threads)
    setup = Setup(args)
    out: dict = {
        "setting": {
            "dark_level": args.dark_level,
            "adapt": args.adapt,
            "per_region": args.per_region,
            "tta": args.tta,
            "hard": args.hard,
        }
    }
    tests = args.tests.split(",")
    if "class-mix" in tests:  # first: its clean predictions are the radiometric "none" column
        out["class_mix"] = class_mix(setup)
    if "radiometric" in tests:
        out["radiometric"] = radiometric(setup)
        out["kl"] = out["radiometric"]["kl"]  # the radiometric table, where it always was
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
