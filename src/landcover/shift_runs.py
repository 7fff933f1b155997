"""The two shift tests over the members of submitted blends (``src/shift_test.py`` runs them,
``shift_report`` prints and records what they measure): the members at the settings asked for,
their held-out predictions under each change of radiometry, and the blend re-tuned on regions
of other class mixes."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .artifacts import load_experiment
from .cache import prepare_data
from .classmix import mix_table, region_row_weights, regions_from_table
from .errors import ArtifactError
from .fold_plan import plan_for
from .metric import kl_divergence, scored_proportions
from .newground import class_mix_test
from .predictor import Predictor
from .radiometry import FoldRadiometry
from .shift import shifted_oof
from .shift_report import (
    class_mix_record,
    print_class_mix,
    print_radiometric,
    print_shift_done,
    radiometric_record,
)
from .submission import load_submitted


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
            runs = (m for f in member.folds for m in getattr(f, "models", [f]))  # seeds too
            for fold in runs:
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
        print_shift_done(kind, table)
    print_radiometric(table, kinds)
    return radiometric_record(table, kinds)


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
    print_class_mix(result, table_path, args.band_rows)
    return class_mix_record(result, table_path, args.band_rows, settings, weighted)
