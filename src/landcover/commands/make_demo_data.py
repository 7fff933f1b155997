"""Write a synthetic land cover dataset in the official layout (for demos and CPU runs).

python src/make_demo_data.py OUT_DIR [--n-train N] [--n-test N] [--size PX] [--seed S]
python src/make_demo_data.py OUT_DIR --full-size [--workers N]   # 18,491 + 5,043 of 256 px

The small demo is one coherent scene drawn in memory; --full-size (or --row-width) draws it
one raster row of tiles at a time in parallel processes, ids laid out as the official ones.
"""

from __future__ import annotations

import argparse
import time

from landcover.cli import Parser
from landcover.demo import DEFAULT_N_TEST, DEFAULT_N_TRAIN, DEFAULT_SIZE, make_demo_dataset
from landcover.errors import cli_errors, positive_int


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = Parser(__doc__)
    parser.add_argument("out_dir", help="directory to create (an existing dataset is replaced)")
    parser.add_argument("--n-train", type=int, default=DEFAULT_N_TRAIN, help="train patches")
    parser.add_argument("--n-test", type=int, default=DEFAULT_N_TEST, help="test patches")
    parser.add_argument(
        "--size", type=int, default=DEFAULT_SIZE, help="patch side in pixels, a multiple of 32"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    parser.add_argument(
        "--full-size", action="store_true", help="the real size: 18,491 + 5,043 patches, 256 px"
    )
    parser.add_argument("--row-width", type=positive_int, help="rows of this many tiles (large)")
    parser.add_argument("--workers", type=positive_int, help="processes (default: every core)")
    args = parser.parse_args(argv)
    if args.full_size:
        args.n_train, args.n_test, args.size = 18491, 5043, 256
        args.row_width = args.row_width or 45
    return args


@cli_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    if args.row_width:
        from tqdm import tqdm

        from landcover.demo_large import make_large_dataset

        with tqdm(total=args.n_train, desc="train patches", unit="patch") as bar:
            out = make_large_dataset(
                args.out_dir, args.n_train, args.n_test, args.size, row_width=args.row_width,
                seed=args.seed, workers=args.workers, progress=lambda n: bar.update(n - bar.n),
            )  # fmt: skip
    else:
        out = make_demo_dataset(
            args.out_dir, n_train=args.n_train, n_test=args.n_test, size=args.size, seed=args.seed
        )
    print(
        f"demo dataset: {out} ({args.n_train} train + {args.n_test} test patches, "
        f"{args.size}x{args.size} px, seed {args.seed}) in {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
