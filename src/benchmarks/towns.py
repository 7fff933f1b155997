"""How much built-up ground each member finds where there is some: the town patches of the OOF.

    python src/benchmarks/towns.py --labels LABELS.csv TABLE.csv [TABLE.csv ...]
        [--threshold 0.05] [--worst 5] [--json OUT]

Each TABLE is a proportion CSV with a ``sample_id`` column (an experiment's ``oof.csv``, a
blend's ``.oof.csv`` sidecar). Town patches are the labelled rows, among those every table
holds, whose share of ``artificial`` over the 8 scored classes is at least ``--threshold``
(the metric's renormalisation; no_data and clouds dropped). For each table: the mean predicted
artificial share over the towns against the mean true share, the ratio of the two (1 = the
built-up ground found, on average), the KL over the towns against the KL over every row, and
the most built-up patches one by one (true against predicted). The figures the README's
"Built-up ground" section quotes.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from landcover.constants import SCORED_CLASSES
from landcover.errors import DataError
from landcover.metric import kl_per_sample, scored_proportions
from landcover.tables import read_proportions

ARTIFICIAL = SCORED_CLASSES.index("artificial")


def common_ids(labels_ids: np.ndarray, tables: list) -> np.ndarray:
    """The labelled ids every table holds, sorted; an error names a table that shares none."""
    ids = np.asarray(labels_ids)
    for path, table in tables:
        shared = np.intersect1d(ids, table.ids)
        if not len(shared):
            raise DataError(f"{path}: no sample_id in common with the labels (or earlier tables)")
        ids = shared
    return ids


def town_report(truth: np.ndarray, pred: np.ndarray, towns: np.ndarray, worst: np.ndarray) -> dict:
    """One table's figures: ``truth``/``pred`` (n, 10) aligned, ``towns`` a boolean mask over the
    rows, ``worst`` the row indices of the most built-up patches."""
    y = scored_proportions(truth)[:, ARTIFICIAL]
    p = scored_proportions(pred)[:, ARTIFICIAL]
    kl = kl_per_sample(truth, pred)
    return {
        "true_artificial": float(y[towns].mean()),
        "predicted_artificial": float(p[towns].mean()),
        "found": float(p[towns].mean() / y[towns].mean()),
        "kl_towns": float(kl[towns].mean()),
        "kl_all": float(kl.mean()),
        "worst": [float(p[i]) for i in worst],
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tables", nargs="+", help="proportion CSVs (oof.csv, a blend's .oof.csv)")
    parser.add_argument("--labels", required=True, help="the labels CSV (train_labels.csv)")
    parser.add_argument("--threshold", type=float, default=0.05, help="least artificial share")
    parser.add_argument("--worst", type=int, default=5, help="most built-up patches listed")
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args(argv)

    labels = read_proportions(args.labels, what="labels", require_sum_to_one=True)
    tables = [(path, read_proportions(path)) for path in args.tables]
    ids = common_ids(labels.ids, tables)
    truth = labels.select(ids).values
    share = scored_proportions(truth)[:, ARTIFICIAL]
    towns = share >= args.threshold
    if not towns.any():
        raise DataError(f"{args.labels}: no patch with at least {args.threshold} artificial")
    worst = np.argsort(-share, kind="stable")[: args.worst]

    result = {
        "threshold": args.threshold,
        "rows": len(ids),
        "towns": int(towns.sum()),
        "worst_ids": [int(ids[i]) for i in worst],
        "worst_true": [float(share[i]) for i in worst],
        "tables": {
            str(path): town_report(truth, table.select(ids).values, towns, worst)
            for path, table in tables
        },
    }
    print(
        f"{result['towns']} town patches of {result['rows']} (artificial >= {args.threshold}), "
        f"true artificial {share[towns].mean():.3f} on average"
    )
    head = "".join(f" {i:>6}" for i in result["worst_ids"])
    print(f"{'table':<48} {'pred':>6} {'found':>6} {'KL town':>8} {'KL all':>8} |{head}")
    print(f"{'(true)':<48} {share[towns].mean():6.3f} {'':>6} {'':>8} {'':>8} |", end="")
    print("".join(f" {v:6.3f}" for v in result["worst_true"]))
    for path, r in result["tables"].items():
        name = path if len(path) <= 48 else "..." + path[-45:]
        print(
            f"{name:<48} {r['predicted_artificial']:6.3f} {r['found']:6.2f} "
            f"{r['kl_towns']:8.5f} {r['kl_all']:8.5f} |" + "".join(f" {v:6.3f}" for v in r["worst"])
        )
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
