"""Write a small synthetic land cover dataset in the official layout (for demos and CPU runs).

python src/make_demo_data.py OUT_DIR [--n-train N] [--n-test N] [--size PX] [--seed S]
"""

from __future__ import annotations

import argparse
import time

from landcover.demo import DEFAULT_N_TEST, DEFAULT_N_TRAIN, DEFAULT_SIZE, make_demo_dataset
from landcover.errors import cli_errors


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", help="directory to create (an existing dataset is replaced)")
    parser.add_argument("--n-train", type=int, default=DEFAULT_N_TRAIN, help="train patches")
    parser.add_argument("--n-test", type=int, default=DEFAULT_N_TEST, help="test patches")
    parser.add_argument(
        "--size", type=int, default=DEFAULT_SIZE, help="patch side in pixels, a multiple of 32"
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")
    return parser.parse_args(argv)


@cli_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    start = time.perf_counter()
    out = make_demo_dataset(
        args.out_dir, n_train=args.n_train, n_test=args.n_test, size=args.size, seed=args.seed
    )
    print(
        f"demo dataset: {out} ({args.n_train} train + {args.n_test} test patches, "
        f"{args.size}x{args.size} px, seed {args.seed}) in {time.perf_counter() - start:.1f} s"
    )


if __name__ == "__main__":
    main()
