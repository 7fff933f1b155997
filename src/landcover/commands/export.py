"""Export a trained model as one self-contained bundle that predicts on any machine.

    python src/export.py --model submissions/<name>.json --out bundles/<name>.tar
    python src/export.py --model oof/unet_regnety_002 --out bundles/unet_regnety_002
    python src/export.py --model submissions/<name>.json --card-only

MODEL is a submission's sidecar or one experiment directory; OUT a new folder, or a .tar
(.tar.gz) archive. The bundle holds every member weighted at least --min-weight (the others'
weights renormalised; the line before OUT says how much that changes the submission's own
test predictions), each with its fold models' files, resolved config and metadata; the blend;
MODEL_CARD.md; and the SHA-256 of every file (``landcover/bundle.py``). Then

    python src/predict.py --model bundles/<name>.tar --input ... --out ...

from any folder, on a CPU or a GPU, predicts what MODEL does. ``--card-only`` writes the
sidecar's model card beside it instead (``<name>.model_card.md``, with the shift test's
figures when ``<name>.shift.json`` is there). The last line printed is OUT (or the card).
"""

from __future__ import annotations

import argparse

from landcover.blend_tuning import MIN_WEIGHT
from landcover.bundle import export_bundle
from landcover.cli import Parser
from landcover.errors import cli_errors, number_in
from landcover.model_card import write_model_card
from landcover.model_source import source_of, test_change


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = Parser(__doc__)
    parser.add_argument("--model", required=True, help="submissions/<name>.json or oof/<exp>")
    parser.add_argument("--out", help="a new folder, or a .tar archive")
    parser.add_argument(
        "--min-weight",
        type=number_in(0.0, 1.0),
        default=MIN_WEIGHT,
        help="members weighted less are left out",
    )
    parser.add_argument(
        "--card-only", action="store_true", help="write the sidecar's card beside it, no bundle"
    )
    args = parser.parse_args(argv)
    if bool(args.out) == args.card_only:
        parser.error("give --out (a bundle) or --card-only (the sidecar's model card)")
    if args.card_only and not args.model.endswith(".json"):
        parser.error("--card-only writes a submission sidecar's card: --model <name>.json")
    return args


@cli_errors
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.card_only:
        print(write_model_card(args.model))
        return
    out, bundled = export_bundle(args.model, args.out, args.min_weight)
    for m in bundled.members:
        print(f"{m.name}: weight {m.weight:.4f}, T {m.temperature:.3f}, {m.n_folds} folds")
    for m in bundled.left_out:
        print(f"{m.name}: left out (weight {m.weight:.2g})")
    if any(m.weight > 0 for m in bundled.left_out):
        change = test_change(source_of(args.model, every_member=True), bundled)
        if change is not None:
            print(f"leaving them out changes the submission's test predictions by {change:.2g}")
    print(out)


if __name__ == "__main__":
    main()
