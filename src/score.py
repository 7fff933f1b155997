"""Score a prediction CSV against the truth with the challenge metric.

    python src/score.py TRUTH.csv PRED.csv

Rows are matched by sample_id; files may have all 10 class columns or only the 8 scored ones
(and a fold column). The last line printed is the score (mean KL, lower is better).
"""

from __future__ import annotations

import argparse

from landcover.errors import cli_errors
from landcover.metric import kl_divergence
from landcover.tables import align, read_proportions


@cli_errors
def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("truth", help="labels CSV (e.g. train_labels.csv)")
    parser.add_argument("pred", help="prediction CSV in the submission format")
    args = parser.parse_args(argv)
    truth = read_proportions(args.truth, what="truth", require_sum_to_one=True)
    pred = read_proportions(args.pred, what="prediction")
    pred = align(pred, truth.ids, what=f"{args.pred} vs {args.truth}")  # same ids, once each
    score = kl_divergence(truth.values, pred.values)
    print(f"{len(truth)} samples")
    print(f"{score:.10f}")
    return score


if __name__ == "__main__":
    main()
