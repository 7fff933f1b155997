"""Score a prediction CSV against the truth with the challenge metric.

    python src/score.py TRUTH.csv PRED.csv [--eps 1e-7]
    python src/score.py --check-submission SUB.csv --data DIR

Rows are matched by sample_id; files may have all 10 class columns or only the 8 scored ones
(and a fold column). The last line printed is the score (mean KL, lower is better). The
epsilon is the challenge page's 1e-8 (which rules); --eps 1e-7 reproduces the organisers'
evaluation script.

--check-submission validates a file to hand in instead: the 11 columns in the official order,
exactly the ids of the data folder's x_test once each, rows of non-negative numbers summing
to 1. It prints one line and exits 0, or one error line and exits 2.
"""

from __future__ import annotations

import argparse

from landcover.cli import Parser
from landcover.constants import EPS
from landcover.errors import cli_errors
from landcover.layout import locate
from landcover.metric import kl_divergence
from landcover.submission import check_submission
from landcover.tables import align, read_ids, read_proportions


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


@cli_errors
def main(argv: list[str] | None = None) -> float:
    parser = Parser(__doc__)
    parser.add_argument("truth", nargs="?", help="labels CSV (e.g. train_labels.csv)")
    parser.add_argument("pred", nargs="?", help="prediction CSV in the submission format")
    parser.add_argument("--check-submission", metavar="SUB", help="validate a submission file")
    parser.add_argument("--data", help="data folder whose x_test the submission must cover")
    parser.add_argument(
        "--eps",
        type=positive_float,
        default=EPS,
        help="smoothing epsilon (default 1e-8, the challenge page; 1e-7: the organisers' eval.py)",
    )
    args = parser.parse_args(argv)
    if args.check_submission:
        if args.truth or args.pred or not args.data:
            parser.error("--check-submission SUB.csv takes --data DIR and no TRUTH/PRED")
        expected = read_ids(locate(args.data).x_test, "x_test")
        rows = check_submission(args.check_submission, expected)
        print(f"{args.check_submission}: {rows} rows, the ids of x_test, rows sum to 1")
        return 0.0
    if not (args.truth and args.pred):
        parser.error("give TRUTH.csv and PRED.csv (or --check-submission SUB.csv --data DIR)")
    truth = read_proportions(args.truth, what="truth", require_sum_to_one=True)
    pred = read_proportions(args.pred, what="prediction")
    pred = align(pred, truth.ids, what=f"{args.pred} vs {args.truth}")  # same ids, once each
    score = kl_divergence(truth.values, pred.values, eps=args.eps)
    print(f"{len(truth)} samples")
    print(f"{score:.10f}")
    return score


if __name__ == "__main__":
    main()
