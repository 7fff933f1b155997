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

import torch

from landcover.cli import Parser
from landcover.errors import cli_errors, positive_int
from landcover.profiles import load_profile
from landcover.shift import SHIFTS
from landcover.shift_report import run_settings
from landcover.shift_runs import Setup, class_mix, radiometric

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


@cli_errors
def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    torch.set_num_threads(args.threads)
    setup = Setup(args)
    out: dict = {"setting": run_settings(args)}
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
