"""Validate a challenge data folder, build its array cache and write the fold file.

python src/prepare.py --data ../shared/data/landcover-sample
"""

from __future__ import annotations

import argparse

from landcover.cache import prepare_data
from landcover.cli import Parser
from landcover.config import data_settings
from landcover.errors import cli_errors, positive_int
from landcover.fold_plan import plan_for
from landcover.folds import FoldScheme
from landcover.metric import scored_proportions


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = Parser(__doc__)
    parser.add_argument("--data", required=True, help="data folder in the official layout")
    parser.add_argument(
        "--cache-dir", help="where to write the cache (default: cache/<name>-<hash>)"
    )
    parser.add_argument("--x-train", help="explicit x_train CSV (default: found by name)")
    parser.add_argument("--y-train", help="explicit y_train CSV (default: found by name)")
    parser.add_argument("--x-test", help="explicit x_test CSV (default: found by name)")
    parser.add_argument("--profile", help="take fold settings from this profile (default: base)")
    parser.add_set("data.buffer_rows=0 data.n_folds=3")
    parser.add_argument("--workers", type=positive_int, default=4, help="TIFF reading threads")
    parser.add_argument("--force", action="store_true", help="rebuild the cache even if up to date")
    return parser.parse_args(argv)


@cli_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    data = prepare_data(
        args.data,
        cache_dir=args.cache_dir,
        x_train=args.x_train,
        y_train=args.y_train,
        x_test=args.x_test,
        workers=args.workers,
        force=args.force,
    )
    plan = plan_for(data, data_settings(args.profile, args.set))
    m = data.manifest
    print(f"data      {m['data_dir']}")
    height, width = m["size"]
    print(f"train     {m['n_train']} patches, test {m['n_test']} patches, {height}x{width}")
    print(f"cache     {data.cache_dir} (fingerprint {m['data_fingerprint']})")
    if m["labels_disagreeing_with_masks"]:
        bad = m["labels_disagreeing_with_masks"]
        print(
            f"warning   {len(bad)} label rows differ from their mask's pixel fractions: {bad[:5]}"
        )
    print(f"folds     {plan.path}: {FoldScheme(**plan.scheme).describe()}")
    scored = scored_proportions(data.labels)
    for row in plan.summary():
        k = row["fold"]
        mix = " ".join(f"{v:.3f}" for v in scored[plan.val_rows(k)].mean(axis=0))
        print(
            f"fold {k}    {row['val']:>6} val, {row['train']:>6} train, {row['buffer']:>5} "
            f"buffer; scored-class mean of val: {mix}"
        )
    print(f"plan      {plan.path}")


if __name__ == "__main__":
    main()
