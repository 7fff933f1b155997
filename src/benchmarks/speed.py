"""Speed measurements in one command: a subcommand per measurement (``--help`` after one says
what it measures and prints).

    python src/benchmarks/speed.py read --data ../shared/data/landcover-sample
    python src/benchmarks/speed.py loader --data ../shared/data/landcover-sample --crop 0
    python src/benchmarks/speed.py model --device cuda --batch 64 --size 256
    python src/benchmarks/speed.py blend --trials 200 --rows 18491
    python src/benchmarks/speed.py scene --model oof/unet_regnety_002 \\
        --data ../shared/data/landcover-sample --size 4096 --folds 1
    python src/benchmarks/speed.py estimate --data ../shared/data/landcover-sample \\
        --profile full-gpu --flops
    python src/benchmarks/speed.py plan --profile sample-cpu --data ../shared/data/landcover-sample

The logic lives in ``src/landcover/speed/``, one module per subcommand.
"""

from __future__ import annotations

import importlib

from landcover.cli import Parser
from landcover.errors import cli_errors
from landcover.speed import COMMANDS

HELP = {
    "read": "patches/s read from the TIFFs and from the cache",
    "loader": "training fed by the batch builder against a batch already on the device",
    "model": "training and inference images/s per backbone on synthetic tensors",
    "blend": "the blend's study and fit_blend at the challenge's scale",
    "scene": "pixels/s and peak memory of mapping a generated N x N scene",
    "estimate": "a profile's network experiments in minutes (measured rates) or FLOPs",
    "plan": "the resolved experiments, the data's size and their FLOPs (run_all.sh --dry-run)",
}


def build_parser() -> Parser:
    parser = Parser(__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"landcover.speed.{name}")
        sub = commands.add_parser(name, doc=module.__doc__, help=HELP[name])
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


@cli_errors
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    args.run(args)


if __name__ == "__main__":
    main()
